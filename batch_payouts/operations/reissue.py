"""``reissue --expired``: pay again, exactly once, the references that expired without being cashed.

An expired reference pays nobody; finance used to pay it again by editing the file by hand,
which the repeat guard rightly blocked.  Here each expired, uncashed order of a batch gets a
new payout order, as a new ledger row of the same batch (row key ``r:<the original's>``, same
spreadsheet row number) linked both ways (``reissue_of`` / ``reissued_as``).  The link is
committed before the request and the new row goes through the run's own executor, so its
Idempotency-Key, intent, lookup-before-resend and ``unknown`` rules are the run's: a second
call, or a call after a crash, reissues nothing twice.  Same guards as ``run``: ``--max-total``,
the balance, and a LIVE key only with ``--live``.  Never a cashed or still-open order; a
cancelled one only when asked (``--include-cancelled``): someone cancelled it on purpose.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue, money
from batch_payouts.payout.guards import Plan, available_balance, check_balance
from batch_payouts.payout.identity import idempotency_key
from batch_payouts.payout.row_executor import BatchSettings, LiveRefused, RowExecutor, StopBatch
from batch_payouts.states import CREATED, ORDER_CANCELLED, ORDER_EXPIRED
from batch_payouts.totals import format_totals, totals_by_currency

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

if TYPE_CHECKING:
    from batch_payouts.payout.audit import AuditLog
    from batch_payouts.payout.conekta import ConektaClient
    from batch_payouts.payout.ledger import Ledger
    from batch_payouts.payout.records import BatchRecord, LedgerRow

REISSUE_PREFIX = "r:"


def require_approval(ledger: Ledger, batch: BatchRecord, rows: list[LedgerRow], *, operator: str) -> None:
    """Four eyes (issue 15): paying expired references again moves money like a run, so under the
    ledger's approval policy the reissue plan needs its own approval, exactly as a run's plan does.

    Its pin is the batch, the file's SHA-256, the key's fingerprint and the plan *of the reissue*
    (the expired rows, their amounts and currencies, marked as a reissue so it never equals the
    run's own plan); the policy's thresholds apply to its total.  Unapproved, it is put in the
    approvers' queue (submitted by ``operator``, who cannot approve it) and ``BatchError`` (exit 2)
    says who must approve what; once approved, the same reissue goes through."""
    import hashlib
    import json

    from batch_payouts.team import approvals

    plan = sorted((r.row_key, int(r.amount), str(r.currency)) for r in rows)
    digest = hashlib.sha256(json.dumps(["reissue", plan]).encode()).hexdigest()
    pin = approvals.Pin(batch.batch_id, batch.input_sha256, digest, len(plan),
                        totals_by_currency((r.amount for r in rows), (r.currency for r in rows)), batch.key_fingerprint)
    approvals.require(ledger, pin, input_name=f"{batch.input_name} (reissue)", operator=operator)


@dataclass
class ReissueOutcome:
    original: LedgerRow
    row: LedgerRow | None  # the new row, as the ledger holds it after sending
    status: str  # the new row's result status: created / failed / unknown


def reissue_key(row_key: str) -> str:
    return REISSUE_PREFIX + row_key


def to_reissue(ledger: Ledger, batch_id: str, include_cancelled: bool = False) -> list[LedgerRow]:
    """Rows to pay again: expired (or cancelled, if asked) and never cashed, not reissued yet --
    plus those whose reissue was started but is not settled (a crash, an answer lost)."""
    rows = ledger.rows(batch_id)
    by_key = {r.row_key: r for r in rows}
    wanted = (ORDER_EXPIRED, ORDER_CANCELLED) if include_cancelled else (ORDER_EXPIRED,)
    chosen = []
    for row in rows:
        if row.state != CREATED or row.cashed_at is not None or row.order_status not in wanted:
            continue
        follow = by_key.get(row.reissued_as or "")
        if follow is None or follow.state not in (CREATED, "failed", "duplicate"):
            chosen.append(row)
    return chosen


def _row_for(ledger: Ledger, original: LedgerRow) -> dict[str, Any]:
    """What the new order pays: the original request (stored with its intent) with a new expiry."""
    intent = ledger.intent(idempotency_key(original.batch_id, original.row_key, "payout_order"))
    body = intent.request_body if intent else {}
    metadata = {k: v for k, v in (body.get("metadata") or {}).items() if k not in ("batch_id", "row_key")}
    if len(metadata) < 97:  # Conekta takes 100 keys; batch_id and row_key are added to these
        metadata["reissue_of"] = original.row_key
    customer = (body.get("customer_info") or {}).get("customer_id") or original.customer_id
    return {"email": original.email, "amount": original.amount, "currency": original.currency,
            "reason": body.get("reason") or original.reason, "metadata": metadata, "customer_id": customer,
            "expires_at": None}


def _link(ledger: Ledger, original: LedgerRow, new_key: str) -> None:
    """Commit the new row and the link both ways before anything is sent."""
    now = time.time()
    with ledger._transaction() as conn:
        conn.execute(
            """INSERT INTO rows (batch_id, row_key, row_number, email, amount, currency, reason, payout_fingerprint,
                   state, updated_at, reissue_of)
               SELECT batch_id, ?, row_number, email, amount, currency, reason, payout_fingerprint, 'pending', ?, row_key
               FROM rows WHERE batch_id=? AND row_key=?
               ON CONFLICT (batch_id, row_key) DO NOTHING""",
            (new_key, now, original.batch_id, original.row_key),
        )
        conn.execute("UPDATE rows SET reissued_as=?, updated_at=? WHERE batch_id=? AND row_key=?",
                     (new_key, now, original.batch_id, original.row_key))


def check_guards(client: ConektaClient, batch: BatchRecord, rows: list[LedgerRow], *, live: bool,
                 max_total: int | None, skip_balance_check: bool) -> None:
    """``run``'s guards for the money about to move, before any request that moves it."""
    totals = totals_by_currency((r.amount for r in rows), (r.currency for r in rows))
    if batch.livemode and not live:
        raise LiveRefused()
    if max_total is not None:
        for currency, total in totals.items():
            if total > max_total:
                raise BatchError(TEXT.OVER_MAX_TOTAL, total=format_totals({currency: total}), cap=money(max_total))
    if not skip_balance_check:
        check_balance(Plan(totals=totals), available_balance(client))


def reissue_rows(ledger: Ledger, client: ConektaClient, batch: BatchRecord, rows: list[LedgerRow], *,
                 lang: str = "es", live: bool = False, expires_in: float = 48 * 3600,
                 audit: AuditLog | None = None) -> list[ReissueOutcome]:
    """A new payout order for each row, exactly once (see the module docstring)."""
    settings = BatchSettings(batch_id=batch.batch_id, key_fp=batch.key_fingerprint, lang=lang, allow_repeat=True,
                             live=live, expires_in=expires_in)
    executor = RowExecutor(client, ledger, settings)
    executor.livemode = batch.livemode
    outcomes = []
    for original in rows:
        new_key = original.reissued_as or reissue_key(original.row_key)
        _link(ledger, original, new_key)
        try:
            result = executor.process(original.row_number, _row_for(ledger, original), new_key)
        except StopBatch as stop:
            raise stop.error from stop
        new_row = ledger.row(batch.batch_id, new_key)
        outcomes.append(ReissueOutcome(original, new_row, result.status))
        if audit is not None:
            audit.append({"type": "reissue", "batch_id": batch.batch_id, "row": original.row_number,
                          "row_key": original.row_key, "previous_payout_order_id": original.payout_order_id,
                          "previous_status": original.order_status, "reissue_row_key": new_key,
                          "payout_order_id": new_row.payout_order_id if new_row else None, "status": result.status})
    return outcomes
