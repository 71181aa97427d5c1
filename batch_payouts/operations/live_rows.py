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
