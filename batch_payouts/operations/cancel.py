"""``cancel``: choose created orders by row, folio or "all pending" and cancel them at Conekta.

A row number names the row's live order: after ``reissue``, the new one (``live_rows``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from batch_payouts import states
from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue
from batch_payouts.operations.access import key_refused
from batch_payouts.operations.live_rows import live_by_number
from batch_payouts.operations.status import FINAL_STATUSES
from batch_payouts.payout.conekta import ConektaClient, ConektaError
from batch_payouts.payout.ledger import Ledger
from batch_payouts.payout.records import BatchRecord, LedgerRow
from batch_payouts.states import CREATED, ORDER_NOT_CASHED

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


def parse_rows(value: str) -> set[int]:
    numbers: set[int] = set()
    for part in (value or "").split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise BatchError(TEXT.BAD_ROWS, value=value)
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last < first or last - first > 1_000_000:
            raise BatchError(TEXT.BAD_ROWS, value=value)
        numbers.update(range(first, last + 1))
    return numbers


def select_rows(
    ledger: Ledger, batch: BatchRecord, *, rows: str | None = None, external_ids: Iterable[str] = (),
    all_pending: bool = False, lang: str = "es",
) -> list[LedgerRow]:
    """The created orders to cancel; a row or folio without one refuses the whole selection."""
    external_ids = list(external_ids)
    if sum([bool(rows), bool(external_ids), all_pending]) != 1:
        raise BatchError(TEXT.ONE_SELECTION)
    batch_id = batch.batch_id
    every = ledger.rows(batch_id)
    if all_pending:
        return [r for r in every if r.state == CREATED and r.payout_order_id
                and (r.order_status or ORDER_NOT_CASHED[0]) in ORDER_NOT_CASHED]
    chosen: list[LedgerRow] = []
    if rows:
        by_number = live_by_number(every)  # a reissued row's number means its reissue, the live order
        for number in sorted(parse_rows(rows)):
            row = by_number.get(number)
            if row is None or row.state != CREATED or not row.payout_order_id:
                state = states.label(row.state, lang) if row is not None else TEXT.NOT_IN_LEDGER.format(lang)
                raise BatchError(TEXT.NO_SUCH_ROW, row=number, batch_id=batch_id[:12], state=state)
            chosen.append(row)
    for external_id in external_ids:
        row = next((r for r in every if r.row_key == f"x:{external_id}"), None)
        if row is None or row.state != CREATED or not row.payout_order_id:
            state = states.label(row.state, lang) if row is not None else TEXT.NOT_IN_LEDGER.format(lang)
            raise BatchError(TEXT.NO_SUCH_FOLIO, external_id=external_id, batch_id=batch_id[:12], state=state)
        if row not in chosen:
            chosen.append(row)
    return sorted(chosen, key=lambda r: r.row_number)


@dataclass
class CancelOutcome:
    row: LedgerRow
    result: str  # "cancelled" | "already" (cancelled, cashed or expired: nothing to do) | "failed"
    status: str | None = None
    error: str | None = None


def cancel_rows(ledger: Ledger, client: ConektaClient, batch: BatchRecord, rows: list[LedgerRow]) -> list[CancelOutcome]:
    """PUT /payout_orders/{id}/cancel for each row; each result recorded in the ledger at once.

    Rows the ledger already knows as cancelled, cashed or expired are not sent.  When Conekta
    refuses (428: state does not allow it), the order is read to tell "already cashed" from a
    real failure.
    """
    batch_id = batch.batch_id
    outcomes: list[CancelOutcome] = []
    for row in rows:
        if row.order_status in FINAL_STATUSES:
            outcomes.append(CancelOutcome(row, "already", row.order_status))
            continue
        try:
            order = client.cancel_payout_order(row.payout_order_id)
        except ConektaError as error:
            if error.stops_batch:
                raise key_refused(error) from error
            outcomes.append(_after_refusal(ledger, client, batch_id, row, error))
            continue
        status = str(order.get("status") or "cancelled")
        ledger.update_order_status(batch_id, row.row_key, status, cancelled=status == "cancelled")
        outcomes.append(CancelOutcome(row, "cancelled", status))
    return outcomes


def _after_refusal(ledger: Ledger, client: ConektaClient, batch_id: str, row: LedgerRow, error: ConektaError) -> CancelOutcome:
    try:
        order = client.get_payout_order(row.payout_order_id)
    except ConektaError as lookup:
        if lookup.stops_batch:
            raise key_refused(lookup) from lookup
        return CancelOutcome(row, "failed", row.order_status, str(error))
    status = str(order.get("status") or "")
    ledger.update_order_status(batch_id, row.row_key, status)
    if status in FINAL_STATUSES:
        return CancelOutcome(row, "already", status)
    return CancelOutcome(row, "failed", status, str(error))
