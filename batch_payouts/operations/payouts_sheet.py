"""How the month-end report reads: finance's words, pesos, batch order, totals that never call
a cancelled payout paid.

Why apart from ``history`` (which asks the ledger which payouts were created in the period):
this part answers what the finance users asked for in issue 13 -- headers in their language,
amounts in pesos with the currency (never bare centavos), the beneficiary's name, the rows in
the order of each batch's file, a total per currency, and cancelled or expired payouts left out
of what was paid -- and changes when they ask again.

The ledger keeps no names (it keeps what Conekta needs), so a name comes from the batch's
results sheet, which repeats every column of the input; a sheet moved or deleted since leaves
the name empty, never the report unwritten.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from batch_payouts import report
from batch_payouts.errors import BatchError
from batch_payouts.files.amounts import pesos
from batch_payouts.files.read import read_table
from batch_payouts.files.write import TypedSheet, write_table
from batch_payouts.i18n import Text, catalogue
from batch_payouts.payout.ledger import Ledger
from batch_payouts.rules.headers import resolve_headers
from batch_payouts.states import ORDER_NEVER_PAID, ORDER_STATUSES, report_order_label
from batch_payouts.states import TEXT as STATES_TEXT
from batch_payouts.totals import totals_by_currency
from batch_payouts.words import column_words
from batch_payouts.words import TEXT as WORDS_TEXT

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

# The report's columns (keys of the frame ``history.payouts_report`` returns) and their headers.
HEADERS = {
    **column_words("batch_id", "input_name", "row", "name", "email", "amount", "currency"),
    "reason": Text(es="Motivo", en="Reason"),
    "reference": Text(es="Referencia", en="Reference"),
    "payout_order_id": Text(es="Orden de pago", en="Payout order"),
    "created_at": Text(es="Creada", en="Created"),
    "order_status": WORDS_TEXT.COLUMN_WORDS["status"],
    "status_checked_at": Text(es="Estado consultado", en="Status checked"),
    "cancelled_at": Text(es="Cancelada", en="Cancelled"),
    "mode": WORDS_TEXT.COLUMN_WORDS["mode"],
}
TEXT_KEYS = ("batch_id", "input_name", "name", "email", "reason", "reference", "payout_order_id", "created_at",
             "status_checked_at", "cancelled_at")
TOTALS_HEADERS = (WORDS_TEXT.COLUMN_WORDS["currency"], WORDS_TEXT.COLUMN_WORDS["item"], Text(es="Pagos", en="Payouts"), WORDS_TEXT.COLUMN_WORDS["amount"])


def in_batch_order(found: list[dict]) -> list[dict]:
    """Batch by batch (the batch first paid first), each in its file's row order.

    Workers send rows in parallel, so creation time scrambles a batch's rows; finance checks
    the report against the file it sent, line by line."""
    first_seen: dict[str, float] = {}
    for payout in found:
        at = payout.get("created_at") or 0.0
        first_seen[payout["batch_id"]] = min(at, first_seen.get(payout["batch_id"], at))
    return sorted(found, key=lambda p: (first_seen[p["batch_id"]], p["batch_id"], p["row_number"]))


def beneficiary_names(ledger: Ledger, batch_ids: Iterable[str]) -> dict[tuple[str, int], str]:
    """(batch, row) -> the name the input gave, read from each batch's results sheet."""
    names: dict[tuple[str, int], str] = {}
    for batch_id in dict.fromkeys(batch_ids):
        batch = ledger.find_batch(batch_id)
        path = Path(batch.output_path) if batch is not None and batch.output_path else None
        if path is None or not path.is_file():
            continue
        try:
            sheet = read_table(path)
            headers = resolve_headers([c for c in sheet.columns if c not in report.RESULT_COLUMNS])
        except BatchError:  # not readable any more, or not a results sheet: the names stay empty
            continue
        if "row" not in sheet.columns or "name" not in headers.canonical:
            continue
        for number, name in zip(sheet["row"].tolist(), sheet[headers.canonical["name"]].tolist()):
            try:
                names[(batch_id, int(str(number).strip()))] = "" if pd.isna(name) else str(name)
            except ValueError:
                continue
    return names


@dataclass(frozen=True)
class ReportTotals:
    """Cents per currency: every payout created, those paid or still to be cashed, and those that never will."""

    created: dict[str, int]
    paid: dict[str, int]
    never_paid: dict[str, int]
    paid_count: int
    never_paid_count: int


def report_totals(frame: pd.DataFrame) -> ReportTotals:
    """The period's totals; a cancelled or expired payout is created but never paid."""
    void = frame["order_status"].isin(ORDER_NEVER_PAID).to_numpy(dtype=bool)
    amounts, currencies = frame["amount"].tolist(), frame["currency"].tolist()

    def pick(keep: bool) -> tuple[list, list]:
        chosen = [i for i, is_void in enumerate(void) if bool(is_void) != keep]
        return [amounts[i] for i in chosen], [currencies[i] for i in chosen]

    return ReportTotals(
        created=totals_by_currency(amounts, currencies), paid=totals_by_currency(*pick(True)),
        never_paid=totals_by_currency(*pick(False)), paid_count=int((~void).sum()), never_paid_count=int(void.sum()),
    )


def payouts_sheet(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The frame as finance reads it: headers and statuses in ``lang``, amounts in pesos."""
    shown = frame.astype(object).copy()
    shown["amount"] = [pesos(cents) for cents in frame["amount"].tolist()]
    shown["order_status"] = [report_order_label(status, lang) for status in frame["order_status"].tolist()]
    return shown.rename(columns={key: text.format(lang) for key, text in HEADERS.items()})


def totals_sheet(frame: pd.DataFrame, lang: str) -> TypedSheet:
    """Per currency: payouts and pesos per order status, then paid, never paid and created in total."""
    currency, item, payouts, amount = (h.format(lang) for h in TOTALS_HEADERS)
    records = []
    for code in dict.fromkeys(frame["currency"].tolist()):
        mine = frame[frame["currency"] == code]
        known = [s for s in ORDER_STATUSES if s in set(mine["order_status"])]
        others = sorted(set(mine["order_status"]) - set(known))  # "" (never checked), or a status Conekta added
        for status in [*known, *others]:
            cents = mine.loc[mine["order_status"] == status, "amount"].tolist()
            records.append({currency: code, item: report_order_label(status, lang, len(cents)),
                            payouts: len(cents), amount: pesos(sum(cents))})
        void = mine["order_status"].isin(ORDER_NEVER_PAID)
        for key, rows in (("paid", mine[~void]), ("never_paid", mine[void]), ("created", mine)):
            if key == "never_paid" and not len(rows):
                continue
            records.append({currency: code, item: STATES_TEXT.TOTAL_LABELS[key].format(lang), payouts: len(rows),
                            amount: pesos(sum(rows["amount"].tolist()))})
    table = pd.DataFrame.from_records(records, columns=[currency, item, payouts, amount])
    return TypedSheet(table, integer_columns=(payouts,), money_columns=(amount,))


def write_report(frame: pd.DataFrame, target: Path, lang: str) -> None:
    """The XLSX (or CSV: the payouts only): pesos as summable numbers, ids and references as text."""
    headers: Mapping[str, str] = {key: text.format(lang) for key, text in HEADERS.items()}
    write_table(
        payouts_sheet(frame, lang), target, sheet_name=TEXT.SHEET_NAMES["payouts"].format(lang),
        text_columns=[headers[key] for key in TEXT_KEYS], integer_columns=(headers["row"],),
        money_columns=(headers["amount"],), extra_sheets={TEXT.SHEET_NAMES["totals"].format(lang): totals_sheet(frame, lang)},
    )
