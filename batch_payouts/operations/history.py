"""``batches``, ``show`` and ``report``: what the ledger knows about past batches and payouts."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pandas as pd

from batch_payouts import clock
from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue
from batch_payouts.operations.access import check_output, now, time_text
from batch_payouts.operations.status import created_rows
from batch_payouts.operations import payouts_sheet
from batch_payouts.payout.ledger import Ledger
from batch_payouts.report import mode_text
from batch_payouts.states import CREATED, MONEY_LABELS, Counts, count_rows, money_stage
from batch_payouts.totals import totals_by_currency

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


def batch_totals(ledger: Ledger, batch_id: str) -> dict[str, int]:
    """Cents created per currency."""
    rows = created_rows(ledger, batch_id)
    return totals_by_currency((row.amount for row in rows), (row.currency for row in rows))


def money_after_by_batch(ledger: Ledger) -> dict[str, dict[str, dict[str, int]]]:
    """batch_id -> cashed / outstanding / never_paid -> cents per currency (``states.money_stage``),
    for ``batches``: one read of the created rows of every batch."""
    found = ledger._query("SELECT batch_id, state, order_status, amount, currency FROM rows WHERE state = ?",
                          (CREATED,))
    grouped: dict[str, dict[str, tuple[list[int], list[str]]]] = {}
    for r in found:
        stage = money_stage(r["state"], r["order_status"])
        amounts, currencies = grouped.setdefault(r["batch_id"], {}).setdefault(stage, ([], []))
        amounts.append(r["amount"])
        currencies.append(r["currency"])
    return {batch_id: {stage: totals_by_currency(*per.get(stage, ([], []))) for stage in MONEY_LABELS}
            for batch_id, per in grouped.items()}


def state_counts(ledger: Ledger, batch_id: str) -> dict[str, int]:
    """Rows per ledger state, as stored (``show --json`` prints it under ``states``)."""
    counts: dict[str, int] = {}
    for row in ledger.rows(batch_id):
        counts[row.state] = counts.get(row.state, 0) + 1
    return counts


def batch_counts(ledger: Ledger, batch_id: str) -> Counts:
    """Rows per group (created, unconfirmed, failed, ...), by the one rule of ``states``."""
    return count_rows(row.state for row in ledger.rows(batch_id))


# -- the month-end report ----------------------------------------------------------------------
def parse_day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise BatchError(TEXT.BAD_DATE, option=option, value=value) from exc


def day_start(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=clock.zone()).timestamp()


REPORT_COLUMNS = list(payouts_sheet.HEADERS)  # amount in cents, order_status as Conekta's code


def payouts_report(
    ledger: Ledger, since: date, until: date | None, output: Path | None, cwd: Path | None = None, lang: str = "es",
) -> tuple[Path, pd.DataFrame]:
    """One XLSX with every payout created in [since, until) across batches, latest status included.

    Returns the path and the payouts as ``REPORT_COLUMNS`` (cents, status codes: for totals and
    ``--json``); the file shows them as ``payouts_sheet`` says, in ``lang``."""
    start = day_start(since)
    end = day_start(until) if until is not None else now()
    until_label = until.isoformat() if until is not None else datetime.now(clock.zone()).date().isoformat()
    if end <= start:
        raise BatchError(TEXT.EMPTY_RANGE, since=since.isoformat(), until=until_label)
    found = payouts_sheet.in_batch_order(ledger.payouts_between(start, end))
    names = payouts_sheet.beneficiary_names(ledger, (p["batch_id"] for p in found))
    frame = pd.DataFrame.from_records(
        [{
            "batch_id": p["batch_id"], "input_name": p["input_name"], "row": p["row_number"],
            "name": names.get((p["batch_id"], p["row_number"]), ""), "email": p["email"],
            "amount": p["amount"], "currency": p["currency"], "reason": p["reason"], "reference": p["reference"] or "",
            "payout_order_id": p["payout_order_id"] or "", "created_at": time_text(p["created_at"]),
            "order_status": p["order_status"] or "", "status_checked_at": time_text(p["status_checked_at"]),
            "cancelled_at": time_text(p["cancelled_at"]), "mode": mode_text(p["livemode"]),
        } for p in found],
        columns=REPORT_COLUMNS,
    )
    target = check_output(output) or (cwd or Path.cwd()) / f"payouts-{since.isoformat()}-{until_label}.xlsx"
    payouts_sheet.write_report(frame, target, lang)
    return target, frame
