"""One row, from the ledger's journal to a final outcome: decide, act, record.

The heart of "exactly once".  For a row the executor asks the ledger what is
already known and decides: copy a finished result, refuse a repeat of a payout
made in another batch, look up a row left in doubt (``in_flight``/``unknown``)
before anything is resent, or send.  Every request is committed to the ledger as
an intent before it goes out and settled after, and a failure is recorded by
what it proves: in doubt (``unknown``), certainly not done (back to ``pending``)
or refused (``failed``).  Kept apart from ``pipeline`` (the pool, ordering and
stopping) so the per-row money-safety rules read in one place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from batch_payouts import clock
from batch_payouts.rules.columns import DEFAULT_EXPIRES_IN, DEFAULT_REPEAT_WINDOW
from batch_payouts.errors import BatchError
from batch_payouts.i18n import Plural, Text, catalogue
from batch_payouts.payout.conekta import ConektaError, OutcomeUnknown, Refused, describe
from batch_payouts.payout.batch_reads import STALE, BatchReads, customer_key
from batch_payouts.payout.identity import idempotency_key, payout_fingerprint
from batch_payouts.states import DUPLICATE, STATUS_OF_STATE

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

if TYPE_CHECKING:  # annotations only: `validate` (via report) must not load the ledger's sqlite code
    from batch_payouts.payout.conekta import ConektaClient
    from batch_payouts.payout.ledger import Ledger
    from batch_payouts.payout.records import EarlierPayout, LedgerRow


# A failure stored as its parameters: the message each error code is rendered with, in any language.
FAILURE_TEXTS = {"outcome_unknown": TEXT.IN_DOUBT, "api_unavailable": TEXT.TRANSIENT, "refused": TEXT.REFUSED}


class LiveRefused(BatchError):
    """A LIVE key without --live.  Running the same file again stops the same way, so the rows
    left unsent, and the summary's count of them, say to run again with --live."""

    not_sent_advice = Text(es="Vuelve a ejecutar con --live para enviarla.", en="Run again with --live to send it.")
    not_sent_hint = Plural(
        one=Text(es="sin enviar (vuelve a ejecutar con --live para enviarla)",
                 en="not sent (run again with --live to send it)"),
        other=Text(es="sin enviar (vuelve a ejecutar con --live para enviarlas)",
                   en="not sent (run again with --live to send them)"),
    )

    def __init__(self) -> None:
        super().__init__(TEXT.LIVE_REFUSED)


@dataclass(slots=True)
class RowOutcome:
    """What happened to one spreadsheet row, ready for the results sheet."""

    row_number: int
    status: str
    customer_id: str | None = None
    payout_order_id: str | None = None
    reference: str | None = None
    expires_at: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    resumed: bool = False


@dataclass
class BatchSettings:
    """Per-run choices that change what the executor does with a row."""

    batch_id: str
    key_fp: str
    lang: str = "es"
    retry_failed: bool = False
    allow_repeat: bool = False
    repeat_window: float = DEFAULT_REPEAT_WINDOW
    workers: int = 1
    live: bool = False
    expires_in: float = DEFAULT_EXPIRES_IN  # seconds from sending to the order's expiry, unless the row has expires_at


class StopBatch(Exception):
    """Raised inside a worker when no further row can succeed (401/403)."""

    def __init__(self, error: BatchError) -> None:
        super().__init__(str(error))
        self.error = error


def payout_order_body(
    row: Mapping[str, Any], customer_id: str, batch_id: str, row_key: str, expires_in: float = DEFAULT_EXPIRES_IN
) -> dict[str, Any]:
    """The order's request body.  ``expires_at`` is always sent (required by the newest API): the
    row's own date, else ``expires_in`` seconds from now.  A resend reuses the body stored with the
    first intent, so the expiry chosen the first time is the one Conekta sees on every retry."""
    body: dict[str, Any] = {
        "currency": row["currency"],
        "amount": int(row["amount"]),
        "customer_info": {"customer_id": customer_id},
        "allowed_payout_methods": ["cashout"],
        "payout": {"payout_method": {"type": "cashout"}},
        "reason": row["reason"],
        "metadata": {**(row.get("metadata") or {}), "batch_id": batch_id, "row_key": row_key},
    }
    expires_at = row.get("expires_at")
    if expires_at is not None and not pd.isna(expires_at):
        body["expires_at"] = int(expires_at)
    else:
        body["expires_at"] = int(time.time() + expires_in)
    return body


def customer_body(row: Mapping[str, Any]) -> dict[str, Any]:
    body = {"name": row["name"], "email": row["email"]}
    if row.get("phone"):
        body["phone"] = row["phone"]
    return body


class RowExecutor:
    """Takes one valid row to a final outcome, consulting the ledger first."""

    def __init__(self, client: ConektaClient, ledger: Ledger, settings: BatchSettings) -> None:
        self.client = client
        self.ledger = ledger
        self.settings = settings
        self._email_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._known: dict[str, LedgerRow] = {}
        # While a batch runs (``preload`` .. ``release``), settling steps ride in the ledger's next
        # transaction (``Ledger.flush``), and the customers this run created are remembered here,
        # as the ledger may not have them written yet.
        self._batching = False
        self._customers: dict[str, str] = {}
        self._reads: BatchReads | None = None  # the batch's ledger reads, made once (``prepare``)
        # The account's mode: may be preset from an earlier batch of the same key (no extra GET before
        # the first order), but this batch's own record is written from the first answer it gets.
        self.livemode: bool | None = None
        self._mode_recorded = False

    def preload(self) -> None:
        """Read the batch's journal once, so a rerun answers finished rows without a transaction each."""
        self._known = self.ledger.outcome_rows(self.settings.batch_id)
        self._batching = True
        self.ledger.gather_intents = self.settings.workers > 1  # other workers' intents join a commit

    def prepare(self, upcoming: Iterable[tuple[str, tuple]]) -> None:
        """Read once what the rows about to be sent -- (row_key, the row's ``batch_reads.FIELDS``),
        in sending order -- would each ask the ledger, and commit their customers' intents ahead in
        chunks (``batch_reads``, which says why each answer is as safe as the read it replaces).
        Optional, after ``preload``: without it every row reads the ledger itself."""
        self._reads = BatchReads(self.ledger, self.settings, upcoming, self._known, customer_body)

    def release(self) -> BatchError | None:
        """Let go of what ``preload`` read, once the batch has run (100k rows: ~100 MB), and write
        the deferred steps left (see ``worker_done``)."""
        self._known = {}
        self._customers = {}
        self._batching = False
        self.ledger.gather_intents = False
        reads, self._reads = self._reads, None
        if reads is not None:
            reads.finish()  # intents committed ahead and never sent: settled by the flush below
        return self.worker_done()

    def worker_done(self) -> BatchError | None:
        """Write the ledger steps this thread deferred (``Ledger.flush``): a worker's last act, as on
        PostgreSQL they are its own and no other thread may write them while workers run.  If they
        cannot be written (a full disk) they are dropped and the error returned: their rows stay
        ``in_flight``, which the next run looks up at Conekta."""
        try:
            self.ledger.flush()
        except BatchError as error:
            self.ledger.drop_deferred()
            return error
        return None

    def settled(self, number: int, row_key: str) -> RowOutcome | None:
        """The outcome of a row an earlier run finished (created, or refused and not retried), else None."""
        entry = self._known.get(row_key)
        if entry is None:
            return None
        if entry.state == "created" and not entry.reference and entry.payout_order_id:
            return None  # created without a reference: a worker asks Conekta for it again
        if entry.state == "created" or (entry.state == "failed" and not self.settings.retry_failed):
            return self.outcome(number, entry, resumed=True)
        return None

    def _email_lock(self, email: str) -> threading.Lock:
        with self._locks_guard:
            return self._email_locks.setdefault(email.lower(), threading.Lock())

    def _t(self, text: Text, **params: object) -> str:
        return text.format(self.settings.lang, **params)

    def process(self, number: int, row: Mapping[str, Any], row_key: str) -> RowOutcome:
        s = self.settings
        fingerprint = payout_fingerprint(row["email"], row["amount"], row["currency"], row["reason"])
        entry = self.ledger.ensure_row(
            later=self._batching and row_key not in self._known,  # new to the ledger: insert it with the next step
            batch_id=s.batch_id,
            row_key=row_key,
            row_number=int(number),
            email=row["email"],
            amount=int(row["amount"]),
            currency=row["currency"],
            reason=row["reason"],
            payout_fingerprint=fingerprint,
        )
        if entry.state == "created":
            if not entry.reference and entry.payout_order_id:
                self._settle_reference(row_key, {"id": entry.payout_order_id, "reference": None})
                entry = self.ledger.row(s.batch_id, row_key)
            return self.outcome(number, entry, resumed=True)
        if entry.state == "failed" and not s.retry_failed:
            return self.outcome(number, entry, resumed=True)
        if entry.state in ("in_flight", "unknown"):
            try:
                found = self._look_up(row_key)
            except ConektaError as error:
                if error.stops_batch:  # the row stays as it was: unknown until a lookup can answer
                    raise StopBatch(self._stop_error(error)) from error
                return self._failure(number, row_key, error, looking_up=True)
            if found is not None:
                self.ledger.record_created(batch_id=s.batch_id, row_key=row_key, idempotency_key=None, order=found)
                self._settle_reference(row_key, found)
                return self.outcome(number, self.ledger.row(s.batch_id, row_key))
        elif not s.allow_repeat:
            since = time.time() - s.repeat_window
            earlier = self._reads.earlier(fingerprint, row_key, since) if self._reads is not None else STALE
            if earlier is STALE:
                earlier = self.ledger.earlier_payout(
                    payout_fingerprint=fingerprint, row_key=row_key, key_fp=s.key_fp, since=since,
                    exclude_batch=s.batch_id,
                )
            if earlier is not None:
                return self._duplicate(number, row_key, earlier)
        customer_id = None
        try:
            customer_id = self._customer(row, row_key, entry)
            order = self._send_order(row, row_key, customer_id)
        except ConektaError as error:
            self._remember_customer(row_key, entry, customer_id)
            return self._failure(number, row_key, error)
        except StopBatch:
            self._remember_customer(row_key, entry, customer_id)
            raise
        if self._batching and order.get("reference"):  # what the ledger row now says, without reading it
            return self.outcome(number, created_row(entry, order))
        return self.outcome(number, self.ledger.row(s.batch_id, row_key))

    def _remember_customer(self, row_key: str, entry: LedgerRow, customer_id: str | None) -> None:
        """The row's customer, when the order's intent (which records it) was not reached."""
        if customer_id and customer_id != entry.customer_id:
            self.ledger.set_row_customer(self.settings.batch_id, row_key, customer_id)

    def _look_up(self, row_key: str) -> dict[str, Any] | None:
        """Before resending a row in doubt, ask Conekta whether it already exists.

        If the lookup itself fails the row stays ``unknown``: resending on the
        Idempotency-Key alone is not safe on accounts that ignore it.
        """
        return self.client.find_payout_order({"batch_id": self.settings.batch_id, "row_key": row_key})

    def _customer(self, row: Mapping[str, Any], row_key: str, entry: LedgerRow) -> str:
        if row.get("customer_id"):
            return row["customer_id"]
        if entry.customer_id:
            return entry.customer_id
        s = self.settings
        reads = self._reads
        with self._email_lock(row["email"]):
            customer_id = self._customers.get(row["email"].lower())
            if customer_id is None:
                customer_id = reads.customer(row["email"]) if reads is not None else self.ledger.customer_for(
                    s.key_fp, row["email"], settled=not self._batching)  # a deferred one is in ``_customers``
            if customer_id is None:
                key = customer_key(s.batch_id, row["email"])
                intent = reads.take(key) if reads is not None else None  # committed ahead: new, nothing to look up
                if intent is not None:
                    found = self.client.create_customer(intent.request_body, key, intent.request_text)
                else:
                    earlier = self.ledger.intent(key, settled=not self._batching)  # settled ones: in ``_customers``
                    # An earlier attempt may have created it (its answer was lost): look before sending
                    # again, as an account that ignores the Idempotency-Key would create a second one.
                    found = self.client.find_customer(row["email"]) if earlier and earlier.state != "failed" else None
                    if found is None:
                        intent = self.ledger.begin_intent(
                            batch_id=s.batch_id, row_key=row_key, operation="customer", idempotency_key=key,
                            body=customer_body(row),
                        )
                        found = self.client.create_customer(intent.request_body, key, intent.request_text)
                customer = found
                self._note_livemode(customer)
                customer_id = customer["id"]
                self.ledger.record_customer(idempotency_key=key, key_fp=s.key_fp, email=row["email"],
                                            customer_id=customer_id, later=self._batching)
                if self._batching:
                    self._customers[row["email"].lower()] = customer_id
        return customer_id  # written to the row with the order's intent (one step fewer per row)

    def _check_mode(self, customer_id: str) -> None:
        """Know the account's mode before the first payout order, and refuse LIVE without --live."""
        if self.livemode is None:
            try:
                self._note_livemode(self.client.get_customer(customer_id))
            except ConektaError as error:
                if error.stops_batch:
                    raise StopBatch(self._stop_error(error)) from error
                raise
        if self.livemode and not self.settings.live:
            raise StopBatch(LiveRefused())

    def _send_order(self, row: Mapping[str, Any], row_key: str, customer_id: str) -> dict[str, Any]:
        s = self.settings
        self._check_mode(customer_id)
        key = idempotency_key(s.batch_id, row_key, "payout_order")
        intent = self.ledger.begin_intent(
            batch_id=s.batch_id,
            row_key=row_key,
            operation="payout_order",
            idempotency_key=key,
            body=payout_order_body(row, customer_id, s.batch_id, row_key, s.expires_in),
            customer_id=customer_id,
        )
        order = self.client.create_payout_order(intent.request_body, key, intent.request_text)
        self._note_livemode(order)
        self.ledger.record_created(batch_id=s.batch_id, row_key=row_key, idempotency_key=key, order=order,
                                   later=self._batching)
        self._settle_reference(row_key, order)
        return order

    def _settle_reference(self, row_key: str, order: dict[str, Any]) -> None:
        """A created order answered without its reference: read it again a few times (Conekta
        assigns it a moment later).  The row is already ``created`` whatever happens here; without
        a reference it says so, and ``status`` fills it in later."""
        if order.get("reference"):
            return
        try:
            order = self.client.await_reference(order)
        except ConektaError as error:  # only a refused key gets here: the row stays created
            raise StopBatch(self._stop_error(error)) from error
        if order.get("reference"):
            self.ledger.set_reference(self.settings.batch_id, row_key, order["reference"], order.get("expires_at"))

    def _note_livemode(self, obj: dict[str, Any]) -> None:
        """Record the mode Conekta states for this batch, once: a mode preset from the key's earlier
        batches must not stop this batch from recording its own (else `batches`/`show` say "—")."""
        if not self._mode_recorded and "livemode" in obj:
            self.livemode = bool(obj["livemode"])
            self.ledger.set_livemode(self.settings.batch_id, self.livemode)
            self._mode_recorded = True

    def _stop_error(self, error: ConektaError) -> BatchError:
        return BatchError(TEXT.STOPPED, status=error.http_status, detail=error.message or error.type)

    def _failure(self, number: int, row_key: str, error: ConektaError, looking_up: bool = False) -> RowOutcome:
        """Record a failed call by what its type says: in doubt (``unknown``), known not done
        (back to ``pending``), refused (``failed``).  The message is stored with its parameters,
        so a rerun in another language shows it in that language."""
        s = self.settings
        in_doubt = looking_up or isinstance(error, OutcomeUnknown)  # a failed lookup cannot say either way
        if error.stops_batch:
            # Refused before anything happened -- unless an earlier attempt of this
            # very request may have gone through, in which case the row is unknown.
            self.ledger.record_failure(
                batch_id=s.batch_id, row_key=row_key, idempotency_key=error.idempotency_key,
                state="unknown" if in_doubt else "pending",
                error_code="authentication_error", error_message=str(error),
                http_status=error.http_status, log_id=error.log_id,
            )
            raise StopBatch(self._stop_error(error))
        if in_doubt:
            state, code, text = "unknown", "outcome_unknown", "outcome_unknown"
        elif isinstance(error, Refused):
            state, code, text = "failed", error.code or error.type, "refused"
        else:  # Unavailable: known not carried out
            state, code, text = "pending", "api_unavailable", "api_unavailable"
        params = {
            "text": text, "what": error.operation or "payout_order", "http_status": error.http_status,
            "type": error.type, "code": error.code, "param": error.param, "message": error.message,
            "log_id": error.log_id,
        }
        self.ledger.record_failure(
            batch_id=s.batch_id, row_key=row_key, idempotency_key=error.idempotency_key, state=state,
            error_code=code, error_message=failure_message(params, s.lang), error_params=params,
            http_status=error.http_status, log_id=error.log_id,
        )
        return self.outcome(number, self.ledger.row(s.batch_id, row_key))

    def _duplicate(self, number: int, row_key: str, earlier: EarlierPayout) -> RowOutcome:
        message = self._t(
            TEXT.REPEAT_MESSAGE,
            batch=earlier.batch_id[:12],
            row=earlier.row_number,
            reference=earlier.reference,
            when=clock.time_text(earlier.created_at, "minutes"),
        )
        self.ledger.record_duplicate(batch_id=self.settings.batch_id, row_key=row_key, message=message)
        return RowOutcome(
            number, DUPLICATE, payout_order_id=earlier.payout_order_id, reference=earlier.reference,
            error_code="repeat_payout", error_message=message,
        )

    def outcome(self, number: int, entry: LedgerRow | None, resumed: bool = False) -> RowOutcome:
        assert entry is not None
        status = STATUS_OF_STATE[entry.state]
        code, message = entry.error_code, entry.error_message
        if entry.error_params and entry.error_params.get("text") in FAILURE_TEXTS:
            message = failure_message(entry.error_params, self.settings.lang)  # in this run's language
        if entry.state == "created" and not entry.reference:
            code = REFERENCE_PENDING_CODE
            message = self._t(TEXT.REFERENCE_PENDING, order=entry.payout_order_id or "")
        return RowOutcome(
            row_number=int(number),
            status=status,
            customer_id=entry.customer_id,
            payout_order_id=entry.payout_order_id,
            reference=entry.reference,
            expires_at=entry.expires_at,
            error_code=code,
            error_message=message,
            resumed=resumed,
        )


REFERENCE_PENDING_CODE = "reference_pending"


def created_row(entry: LedgerRow, order: Mapping[str, Any]) -> LedgerRow:
    """``entry`` as ``Ledger.record_created`` leaves it for ``order``: what the outcome shows."""
    from batch_payouts.payout.records import LedgerRow

    return LedgerRow(
        entry.batch_id, entry.row_key, entry.row_number, "created", entry.email, entry.amount, entry.currency,
        entry.reason, customer_id=(order.get("customer_info") or {}).get("id"), payout_order_id=order.get("id"),
        reference=order.get("reference"), expires_at=order.get("expires_at"), order_status=order.get("status"),
    )


def failure_message(params: Mapping[str, Any], lang: str) -> str:
    """A stored failure (``RowExecutor._failure``'s parameters) in ``lang``; Conekta's own
    message is data and stays as Conekta wrote it."""
    detail = describe(params.get("http_status"), params.get("type"), params.get("code"), params.get("message"),
                      params.get("log_id"), no_answer=TEXT.NO_ANSWER.format(lang))
    what = TEXT.WHAT.get(str(params.get("what")), TEXT.WHAT["payout_order"]).format(lang)
    return FAILURE_TEXTS[str(params["text"])].format(lang, detail=detail, what=what)

