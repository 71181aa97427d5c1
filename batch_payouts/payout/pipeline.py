"""The batch: from validated rows to payout orders, exactly once.

For each valid row, in file order, the pipeline asks the ledger what is already
known, decides (copy a finished result, refuse a repeat, resolve a row in
doubt, or send), acts through the Conekta client, and records the result
before moving on.  Rows run on a small thread pool; every worker shares the
ledger (one connection behind a lock) and the pooled HTTP session, and the
outcomes are returned in input order whatever the completion order.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from batch_payouts.payout.conekta import ConektaError
from batch_payouts.errors import BatchError
from batch_payouts.i18n import Text

if TYPE_CHECKING:  # annotations only: `validate` (via report) must not load the ledger's sqlite code
    from batch_payouts.payout.conekta import ConektaClient
    from batch_payouts.payout.ledger import EarlierPayout, Ledger, LedgerRow

DEFAULT_REPEAT_WINDOW = 24 * 3600.0

# Output statuses of a run (validation adds "valid"/"invalid").
CREATED, INVALID, FAILED, DUPLICATE, UNKNOWN = "created", "invalid", "failed", "duplicate", "unknown"

REPEAT_MESSAGE = Text(
    es="No se pagó otra vez: un pago idéntico (mismo correo, monto, moneda y motivo) ya se creó "
    "en el lote {batch} (fila {row}, referencia {reference}) el {when}. Si de verdad es un segundo "
    "pago, vuelve a ejecutar con --allow-repeat.",
    en="Not paid again: an identical payout (same email, amount, currency and reason) was already "
    "created in batch {batch} (row {row}, reference {reference}) on {when}. If it really is a second "
    "payout, run again with --allow-repeat.",
)
NOT_SENT = Text(
    es="No se envió porque el lote se detuvo ({why}). Vuelve a ejecutar el mismo archivo para enviarla.",
    en="Not sent because the batch stopped ({why}). Run the same file again to send it.",
)
TRANSIENT = Text(
    es="Conekta no respondió a tiempo ({detail}); no se creó nada. Se volverá a intentar al ejecutar "
    "de nuevo el mismo archivo.",
    en="Conekta did not answer in time ({detail}); nothing was created. It will be tried again when "
    "you run the same file again.",
)
IN_DOUBT = Text(
    es="Se envió pero no llegó respuesta ({detail}): no se sabe si se creó. Vuelve a ejecutar el mismo "
    "archivo: se buscará la orden en Conekta y solo se reenviará (con la misma llave de idempotencia) "
    "si no existe.",
    en="Sent but no answer arrived ({detail}): it is unknown whether it was created. Run the same file "
    "again: the order is looked up at Conekta and resent (with the same Idempotency-Key) only if missing.",
)
REFUSED = Text(
    es="Conekta rechazó {what}: {detail}",
    en="Conekta refused {what}: {detail}",
)
WHAT = {"customer": Text(es="el cliente", en="the customer"), "payout_order": Text(es="la orden de pago", en="the payout order")}
STOPPED = Text(
    es="Conekta rechazó la llave de API (HTTP {status}: {detail}). El lote se detuvo sin enviar más filas; "
    "las filas no enviadas quedan pendientes y se enviarán al volver a ejecutar con una llave válida.",
    en="Conekta refused the API key (HTTP {status}: {detail}). The batch stopped without sending more rows; "
    "unsent rows stay pending and are sent when you run again with a valid key.",
)
INTERRUPTED = Text(es="interrumpido por el usuario", en="interrupted by the user")
LIVE_REFUSED = Text(
    es="La llave de API es de modo LIVE (dinero real) y no se indicó --live: el lote se detuvo antes de "
    "crear cualquier orden de pago. Si de verdad quieres pagar, vuelve a ejecutar con --live.",
    en="The API key is a LIVE key (real money) and --live was not given: the batch stopped before "
    "creating any payout order. If you really mean to pay, run again with --live.",
)
KEY_MISMATCH = Text(
    es="El lote {batch_id} ya se ejecutó con otra llave de API (otra cuenta o modo). Usa otro --batch-id.",
    en="Batch {batch_id} already ran with a different API key (another account or mode). Use another --batch-id.",
)


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


@dataclass
class BatchRun:
    """The result of ``run_batch``: outcomes in input order, and why it stopped early if it did."""

    outcomes: dict[int, RowOutcome]
    stopped: BatchError | None = None
    interrupted: bool = False
    livemode: bool | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)


class StopBatch(Exception):
    """Raised inside a worker when no further row can succeed (401/403)."""

    def __init__(self, error: BatchError) -> None:
        super().__init__(str(error))
        self.error = error


# -- identities -------------------------------------------------------------
IDENTITY_COLUMNS = ("name", "email", "phone", "amount", "currency", "reason", "customer_id", "expires_at", "metadata")


def _canonical_row(row: Mapping[str, Any]) -> list[Any]:
    values: list[Any] = []
    for column in IDENTITY_COLUMNS:
        value = row.get(column)
        if column == "email" and isinstance(value, str):
            value = value.lower()
        if column == "metadata":
            value = sorted((value or {}).items())
        elif isinstance(value, (str, int)):  # the usual cell (bool too): kept as it is, without pd.isna's dispatch
            pass
        elif value is None or (not isinstance(value, (list, dict)) and pd.isna(value)):
            value = None
        elif hasattr(value, "item"):
            value = value.item()
        values.append(value)
    return values


def rows_of(validated: pd.DataFrame) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, row as a dict of Python values): built from whole columns (``tolist`` gives
    Python ints, bools, str and ``pd.NA``), not a Series per row (iterrows is ~10x slower) nor
    ``to_dict("records")``, which boxes every cell one by one."""
    columns = [str(column) for column in validated.columns]
    values = [_python_values(validated[column]) for column in validated.columns]
    return zip(validated.index.tolist(), (dict(zip(columns, row)) for row in zip(*values)))


def _python_values(column: pd.Series) -> list[Any]:
    """A column's cells as ``to_dict`` gives them: an extension column's missing values as None."""
    if isinstance(column.dtype, pd.api.extensions.ExtensionDtype) and column.hasnans:
        return column.to_numpy(dtype=object, na_value=None).tolist()
    return column.tolist()


def batch_identity(validated: pd.DataFrame, key_fp: str) -> str:
    """SHA-256 of the normalised rows and the key's fingerprint.

    The same file gives the same batch, so a rerun resumes it; the key's
    fingerprint keeps a test run and a live run of one file apart.
    """
    digest = hashlib.sha256(key_fp.encode())
    for number, row in rows_of(validated):
        digest.update(json.dumps([int(number), *_canonical_row(row)], ensure_ascii=False, default=str).encode())
    return digest.hexdigest()


def row_keys(validated: pd.DataFrame) -> pd.Series:
    """Each row's identity: ``x:<external_id>``, else a content hash plus its occurrence number."""
    keys: dict[Any, str] = {}
    seen: dict[str, int] = {}
    for number, row in rows_of(validated):
        external = (row.get("external_id") or "").strip() if isinstance(row.get("external_id"), str) else ""
        if external:
            keys[number] = f"x:{external}"
            continue
        content = hashlib.sha256(json.dumps(_canonical_row(row), ensure_ascii=False, default=str).encode()).hexdigest()[:20]
        seen[content] = seen.get(content, 0) + 1
        keys[number] = f"h:{content}.{seen[content]}"
    return pd.Series(keys, dtype=object)


def payout_fingerprint(email: str, amount: int, currency: str, reason: str) -> str:
    """What makes two payouts 'the same payment' for the repeat guard."""
    text = json.dumps([email.strip().lower(), int(amount), currency.upper(), reason.strip()], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def idempotency_key(batch_id: str, row_key: str, operation: str) -> str:
    """Deterministic, so every retry and every rerun sends the same key."""
    return "bp-" + hashlib.sha256(f"{batch_id}\0{row_key}\0{operation}".encode()).hexdigest()[:40]


def payout_order_body(row: Mapping[str, Any], customer_id: str, batch_id: str, row_key: str) -> dict[str, Any]:
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
    return body


def customer_body(row: Mapping[str, Any]) -> dict[str, Any]:
    body = {"name": row["name"], "email": row["email"]}
    if row.get("phone"):
        body["phone"] = row["phone"]
    return body


# -- the executor -------------------------------------------------------------
class RowExecutor:
    """Takes one valid row to a final outcome, consulting the ledger first."""

    def __init__(self, client: ConektaClient, ledger: Ledger, settings: BatchSettings) -> None:
        self.client = client
        self.ledger = ledger
        self.settings = settings
        self._email_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._known: dict[str, LedgerRow] = {}
        self.livemode: bool | None = None

    def preload(self) -> None:
        """Read the batch's journal once, so a rerun answers finished rows without a transaction each."""
        self._known = {entry.row_key: entry for entry in self.ledger.rows(self.settings.batch_id)}

    def settled(self, number: int, row_key: str) -> RowOutcome | None:
        """The outcome of a row an earlier run finished (created, or refused and not retried), else None."""
        entry = self._known.get(row_key)
        if entry is None:
            return None
        if entry.state == "created" or (entry.state == "failed" and not self.settings.retry_failed):
            return self._outcome(number, entry, resumed=True)
        return None

    def _email_lock(self, email: str) -> threading.Lock:
        with self._locks_guard:
            return self._email_locks.setdefault(email.lower(), threading.Lock())

    def _t(self, text: Text, **params: object) -> str:
        return text.format(self.settings.lang, **params)

    def process(self, number: int, row: Mapping[str, Any], row_key: str) -> RowOutcome:
        s = self.settings
        entry = self.ledger.ensure_row(
            batch_id=s.batch_id,
            row_key=row_key,
            row_number=int(number),
            email=row["email"],
            amount=int(row["amount"]),
            currency=row["currency"],
            reason=row["reason"],
            payout_fingerprint=payout_fingerprint(row["email"], row["amount"], row["currency"], row["reason"]),
        )
        if entry.state == "created":
            return self._outcome(number, entry, resumed=True)
        if entry.state == "failed" and not s.retry_failed:
            return self._outcome(number, entry, resumed=True)
        if entry.state in ("in_flight", "unknown"):
            try:
                found = self._look_up(row_key)
            except ConektaError as error:
                if error.stops_batch:  # the row stays as it was: unknown until a lookup can answer
                    raise StopBatch(self._stop_error(error)) from error
                return self._failure(number, row_key, error, looking_up=True)
            if found is not None:
                self.ledger.record_created(batch_id=s.batch_id, row_key=row_key, idempotency_key=None, order=found)
                return self._outcome(number, self.ledger.row(s.batch_id, row_key))
        elif not s.allow_repeat:
            earlier = self.ledger.earlier_payout(
                payout_fingerprint=payout_fingerprint(row["email"], row["amount"], row["currency"], row["reason"]),
                row_key=row_key,
                key_fp=s.key_fp,
                since=time.time() - s.repeat_window,
                exclude_batch=s.batch_id,
            )
            if earlier is not None:
                return self._duplicate(number, row_key, earlier)
        try:
            customer_id = self._customer(row, row_key, entry)
            self._send_order(row, row_key, customer_id)
        except ConektaError as error:
            return self._failure(number, row_key, error)
        return self._outcome(number, self.ledger.row(s.batch_id, row_key))

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
        with self._email_lock(row["email"]):
            customer_id = self.ledger.customer_for(s.key_fp, row["email"])
            if customer_id is None:
                # Keyed by the email, not the row: if this request is left in doubt, the next
                # row (or rerun) for the same person replays it instead of creating a second customer.
                key = idempotency_key(s.batch_id, "email:" + row["email"].lower(), "customer")
                intent = self.ledger.begin_intent(
                    batch_id=s.batch_id, row_key=row_key, operation="customer", idempotency_key=key, body=customer_body(row)
                )
                try:
                    customer = self.client.create_customer(intent.request_body, key)
                except ConektaError as error:
                    error.operation = "customer"  # type: ignore[attr-defined]
                    raise
                self._note_livemode(customer)
                customer_id = customer["id"]
                self.ledger.record_customer(idempotency_key=key, key_fp=s.key_fp, email=row["email"], customer_id=customer_id)
        self.ledger.set_row_customer(s.batch_id, row_key, customer_id)
        return customer_id

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
            raise StopBatch(BatchError(LIVE_REFUSED))

    def _send_order(self, row: Mapping[str, Any], row_key: str, customer_id: str) -> dict[str, Any]:
        s = self.settings
        self._check_mode(customer_id)
        key = idempotency_key(s.batch_id, row_key, "payout_order")
        intent = self.ledger.begin_intent(
            batch_id=s.batch_id,
            row_key=row_key,
            operation="payout_order",
            idempotency_key=key,
            body=payout_order_body(row, customer_id, s.batch_id, row_key),
        )
        try:
            order = self.client.create_payout_order(intent.request_body, key)
        except ConektaError as error:
            error.operation = "payout_order"  # type: ignore[attr-defined]
            error.idempotency_key = key  # type: ignore[attr-defined]
            raise
        self._note_livemode(order)
        self.ledger.record_created(batch_id=s.batch_id, row_key=row_key, idempotency_key=key, order=order)
        return order

    def _note_livemode(self, obj: dict[str, Any]) -> None:
        if self.livemode is None and "livemode" in obj:
            self.livemode = bool(obj["livemode"])
            self.ledger.set_livemode(self.settings.batch_id, self.livemode)

    def _stop_error(self, error: ConektaError) -> BatchError:
        return BatchError(STOPPED, status=error.http_status, detail=error.message or error.type)

    def _failure(self, number: int, row_key: str, error: ConektaError, looking_up: bool = False) -> RowOutcome:
        s = self.settings
        key = getattr(error, "idempotency_key", None)
        if looking_up:
            error.in_doubt = True  # still unknown: the lookup could not say either way
        what = WHAT.get(getattr(error, "operation", "payout_order"), WHAT["payout_order"])
        if error.stops_batch:
            # Refused before anything happened -- unless an earlier attempt of this
            # very request may have gone through, in which case the row is unknown.
            self.ledger.record_failure(
                batch_id=s.batch_id, row_key=row_key, idempotency_key=key,
                state="unknown" if error.in_doubt else "pending",
                error_code="authentication_error", error_message=str(error),
                http_status=error.http_status, log_id=error.log_id,
            )
            raise StopBatch(self._stop_error(error))
        if error.in_doubt:
            state, code, message = "unknown", "outcome_unknown", self._t(IN_DOUBT, detail=str(error))
        elif error.http_status is None or error.http_status == 429 or error.http_status >= 500:
            state, code, message = "pending", "api_unavailable", self._t(TRANSIENT, detail=str(error))
        else:
            state = "failed"
            code = error.code or error.type
            message = self._t(REFUSED, what=what.format(s.lang), detail=str(error))
        self.ledger.record_failure(
            batch_id=s.batch_id, row_key=row_key, idempotency_key=key, state=state,
            error_code=code, error_message=message, http_status=error.http_status, log_id=error.log_id,
        )
        return self._outcome(number, self.ledger.row(s.batch_id, row_key))

    def _duplicate(self, number: int, row_key: str, earlier: EarlierPayout) -> RowOutcome:
        message = self._t(
            REPEAT_MESSAGE,
            batch=earlier.batch_id[:12],
            row=earlier.row_number,
            reference=earlier.reference,
            when=time.strftime("%Y-%m-%d %H:%M", time.localtime(earlier.created_at)),
        )
        self.ledger.record_duplicate(batch_id=self.settings.batch_id, row_key=row_key, message=message)
        return RowOutcome(
            number, DUPLICATE, payout_order_id=earlier.payout_order_id, reference=earlier.reference,
            error_code="repeat_payout", error_message=message,
        )

    def _outcome(self, number: int, entry: LedgerRow | None, resumed: bool = False) -> RowOutcome:
        assert entry is not None
        status = {
            "created": CREATED, "failed": FAILED, "unknown": UNKNOWN, "in_flight": UNKNOWN,
            "duplicate": DUPLICATE, "pending": FAILED,
        }[entry.state]
        return RowOutcome(
            row_number=int(number),
            status=status,
            customer_id=entry.customer_id,
            payout_order_id=entry.payout_order_id,
            reference=entry.reference,
            expires_at=entry.expires_at,
            error_code=entry.error_code,
            error_message=entry.error_message,
            resumed=resumed,
        )


def run_batch(
    validated: pd.DataFrame,
    keys: pd.Series,
    executor: RowExecutor,
    *,
    on_row: Callable[[RowOutcome], None] | None = None,
    stop: threading.Event | None = None,
) -> BatchRun:
    """Send every valid row; stop cleanly on a refused key, Ctrl-C, or ``stop`` being set
    (the web server shutting down: a thread gets no KeyboardInterrupt).

    At most ``workers`` rows are in flight.  On a stop, rows in flight finish
    and are recorded; rows never started are reported as not sent and stay
    ``pending`` in the ledger, so the next run sends them.
    """
    settings = executor.settings
    outcomes: dict[int, RowOutcome] = {}
    pending = [(number, row) for number, row in rows_of(validated) if row["valid"]]
    key_of = keys.to_dict()  # a dict lookup per row, not a Series lookup
    executor.preload()
    stopped: BatchError | None = None
    interrupted = False
    in_flight: dict[Future, int] = {}
    position = 0
    pool = ThreadPoolExecutor(max_workers=max(1, settings.workers), thread_name_prefix="payout")
    try:
        while position < len(pending) or in_flight:
            interrupted = interrupted or (stop is not None and stop.is_set())
            while not (stopped or interrupted) and position < len(pending) and len(in_flight) < settings.workers:
                number, row = pending[position]
                position += 1
                settled = executor.settled(number, key_of[number])
                if settled is not None:  # finished in an earlier run: no request, no worker
                    outcomes[number] = settled
                    if on_row is not None:
                        on_row(settled)
                    continue
                in_flight[pool.submit(executor.process, number, row, key_of[number])] = int(number)
            if not in_flight:
                break
            try:
                done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                interrupted = True
                continue
            for future in done:
                number = in_flight.pop(future)
                try:
                    outcome = future.result()
                except StopBatch as halt:
                    stopped = stopped or halt.error
                    continue
                outcomes[number] = outcome
                if on_row is not None:
                    on_row(outcome)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        pool.shutdown(wait=True)
    if stopped or interrupted:
        why = stopped.message(settings.lang) if stopped else INTERRUPTED.format(settings.lang)
        for number, _row in pending:
            if int(number) not in outcomes:
                entry = executor.ledger.row(settings.batch_id, key_of[number])
                if entry is not None and entry.state not in ("pending",):
                    outcomes[int(number)] = executor._outcome(number, entry, resumed=True)
                else:
                    outcomes[int(number)] = RowOutcome(
                        int(number), FAILED, error_code="not_sent", error_message=NOT_SENT.format(settings.lang, why=why)
                    )
    return BatchRun(outcomes=outcomes, stopped=stopped, interrupted=interrupted, livemode=executor.livemode)
