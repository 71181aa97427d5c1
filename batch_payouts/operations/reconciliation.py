"""``reconcile``: compare the orders Conekta holds for a batch with the ledger's created rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue
from batch_payouts.operations.access import key_refused
from batch_payouts.payout.conekta import ConektaClient, ConektaError
from batch_payouts.payout.ledger import Ledger
from batch_payouts.payout.records import BatchRecord, LedgerRow
from batch_payouts.states import CREATED

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


@dataclass
class Mismatch:
    row: LedgerRow
    order_id: str
    field: str
    ledger_value: object
    conekta_value: object


@dataclass
class ReconcileResult:
    batch: BatchRecord
    at_conekta: int = 0
    in_ledger: int = 0
    agreed: int = 0
    orphans: list[tuple[dict[str, Any], LedgerRow | None]] = field(default_factory=list)
    missing: list[LedgerRow] = field(default_factory=list)
    mismatched: list[Mismatch] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if (self.orphans or self.missing or self.mismatched) else 0


def reconcile(ledger: Ledger, client: ConektaClient, batch: BatchRecord) -> ReconcileResult:
    """Compare the orders Conekta holds for the batch (metadata ``batch_id``) with the ledger."""
    batch_id = batch.batch_id
    try:
        orders = [o for o in client.list_payout_orders(search=batch_id)
                  if str((o.get("metadata") or {}).get("batch_id")) == batch_id]
        rows = ledger.rows(batch_id)
        created = [r for r in rows if r.state == CREATED and r.payout_order_id]
        by_order = {r.payout_order_id: r for r in created}
        by_key = {r.row_key: r for r in rows}
        result = ReconcileResult(batch, at_conekta=len(orders), in_ledger=len(created))
        seen: set[str] = set()
        for order in orders:
            row = by_order.get(order.get("id"))
            if row is None:
                result.orphans.append((order, by_key.get(str((order.get("metadata") or {}).get("row_key")))))
                continue
            seen.add(row.payout_order_id)
            _compare(result, row, order)
        for row in created:
            if row.payout_order_id in seen:
                continue
            # Not found by search: read it directly before calling it missing.
            order = _read_order(client, row.payout_order_id)
            if order is None:
                result.missing.append(row)
                continue
            meta = str((order.get("metadata") or {}).get("batch_id"))
            result.mismatched.append(Mismatch(row, row.payout_order_id, "metadata.batch_id", batch_id, meta))
            _compare(result, row, order, count=False)
    except ConektaError as error:
        if error.stops_batch:
            raise key_refused(error) from error
        raise BatchError(TEXT.RECONCILE_FAILED, detail=str(error)) from error
    return result


def _read_order(client: ConektaClient, order_id: str) -> dict[str, Any] | None:
    """The order, or None when Conekta says it does not exist.

    A 404 says so.  Some API versions (and public mocks) answer a GET of an unknown id with 402
    ``processing_error`` instead: that alone proves nothing, so the list search by the id decides
    (API.md).  Any other error is raised: nothing is concluded from it.
    """
    try:
        return client.get_payout_order(order_id)
    except ConektaError as error:
        if error.stops_batch or error.http_status not in (402, 404):
            raise
        if error.http_status == 402 and error.type != "processing_error":
            raise
        if error.http_status == 404:
            return None
    return next((o for o in client.list_payout_orders(search=order_id) if o.get("id") == order_id), None)


def _compare(result: ReconcileResult, row: LedgerRow, order: dict[str, Any], count: bool = True) -> None:
    differences = [
        (name, mine, theirs)
        for name, mine, theirs in (
            ("amount", row.amount, order.get("amount")),
            ("currency", row.currency, order.get("currency")),
            ("reference", row.reference, order.get("reference")),
        )
        if str(mine) != str(theirs)
    ]
    for name, mine, theirs in differences:
        result.mismatched.append(Mismatch(row, row.payout_order_id, name, mine, theirs))
    if count and not differences:
        result.agreed += 1
