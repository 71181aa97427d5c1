"""Which ledger row a spreadsheet row number means now, and the money after the payout.

``reissue --expired`` pays an expired reference again as a new ledger row with the *same*
spreadsheet row number (``reissue_of`` / ``reissued_as`` link them).  So "row 7" can name two
orders; every lookup by row number (``cancel --rows``, the web's cancel link) goes through
``live_by_number``: the live one is the last reissue that exists at Conekta or may (created,
in flight, unknown), else the original.  The commands say when they chose a reissue.
"""

from __future__ import annotations

from collections.abc import Iterable

from batch_payouts import states
from batch_payouts.payout.records import LedgerRow
from batch_payouts.totals import totals_by_currency

NOT_SENT = (states.PENDING, states.FAILED, states.DUPLICATE)  # a reissue in these states never reached Conekta


def reissue_of(row: LedgerRow, by_key: dict[str, LedgerRow]) -> LedgerRow | None:
    """The row that pays ``row`` again, if that one reached (or may have reached) Conekta."""
    follow = by_key.get(row.reissued_as or "")
    return follow if follow is not None and follow.state not in NOT_SENT else None


def live_row(row: LedgerRow, by_key: dict[str, LedgerRow]) -> LedgerRow:
    """The end of ``row``'s reissue chain (``row`` itself when it was never paid again)."""
    seen = {row.row_key}
    while (follow := reissue_of(row, by_key)) is not None and follow.row_key not in seen:
        seen.add(follow.row_key)
        row = follow
    return row


def live_by_number(rows: Iterable[LedgerRow]) -> dict[int, LedgerRow]:
    """Spreadsheet row number -> the ledger row that carries its money now (see the module docstring)."""
    rows = list(rows)
    by_key = {r.row_key: r for r in rows}
    return {r.row_number: live_row(r, by_key) for r in rows if not r.reissue_of}


def money_after(rows: Iterable[LedgerRow]) -> dict[str, dict[str, int]]:
    """Cents per currency cashed, outstanding and never paid (``states.money_stage``), of created rows."""
    buckets: dict[str, list[LedgerRow]] = {key: [] for key in states.MONEY_LABELS}
    for row in rows:
        stage = states.money_stage(row.state, row.order_status)
        if stage is not None:
            buckets[stage].append(row)
    return {key: totals_by_currency((r.amount for r in found), (r.currency for r in found))
            for key, found in buckets.items()}


class RowStage:
    """One created row after the payout, as ``show`` and ``show --json`` say it."""

    __slots__ = ("row", "stage", "reissued_as", "reissue_of")

    def __init__(self, row: LedgerRow, stage: str, reissued_as: LedgerRow | None, reissue_of: LedgerRow | None):
        self.row, self.stage, self.reissued_as, self.reissue_of = row, stage, reissued_as, reissue_of

    def as_json(self, time_text) -> dict:
        row = self.row
        return {"row": row.row_number, "payout_order_id": row.payout_order_id, "reference": row.reference,
                "amount": row.amount, "currency": row.currency, "stage": self.stage,
                "order_status": row.order_status or None, "cashed_at": time_text(row.cashed_at) or None,
                "expired_at": time_text(row.expired_at) or None, "cancelled_at": time_text(row.cancelled_at) or None,
                "reissued_as": self.reissued_as.reference if self.reissued_as else None,
                "reissue_of": self.reissue_of.reference if self.reissue_of else None}


def row_stages(rows: Iterable[LedgerRow]) -> list[RowStage]:
    """Every created row (reissues beside their originals, same row number) and what became of it."""
    rows = list(rows)
    by_key = {r.row_key: r for r in rows}
    found = []
    for row in sorted(rows, key=lambda r: (r.row_number, r.row_key.count(":"), r.row_key)):
        follow = reissue_of(row, by_key)
        stage = states.payout_stage(row.state, row.order_status, reissued=follow is not None)
        if stage is not None:
            found.append(RowStage(row, stage, follow, by_key.get(row.reissue_of or "")))
    return found
