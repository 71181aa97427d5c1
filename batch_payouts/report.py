"""The results sheet and the end-of-run summary.

The results sheet is the input as the user wrote it (every column, in its
order) followed by what happened to each row.  It is what finance forwards to
beneficiaries and what an auditor checks against the ledger, so ids and
references are always text, every status code has its word beside it
(``status_label``), and the amount is repeated in pesos as a number
(``amount_pesos``, whatever unit the input used) so Excel can sum it.  The
"Resumen" sheet holds numbers too: counts and pesos per status and currency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from batch_payouts import clock
from batch_payouts.files.amounts import pesos
from batch_payouts.files.write import TypedSheet, write_table
from batch_payouts.i18n import Plural, Text, catalogue, money
from batch_payouts.states import CREATED, DUPLICATE, FAILED, GROUP_HINTS, INVALID, ORDER_NEVER_PAID, PENDING, ORDER_STATUSES, RESULT_STATUSES, UNKNOWN, VALID, count_rows, hint, label, report_order_label
from batch_payouts.states import TEXT as STATES_TEXT
from batch_payouts.totals import format_totals
from batch_payouts.words import column_words
from batch_payouts.words import TEXT as WORDS_TEXT

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

if TYPE_CHECKING:  # annotations only: `validate` loads no part of payout/
    from batch_payouts.payout.row_executor import RowOutcome
    from batch_payouts.rules.validation import Problem

MEXICO_CITY = ZoneInfo("America/Mexico_City")
RESULT_COLUMNS = [
    "row", "status", "status_label", "amount_pesos", "amount_currency", "customer_id", "payout_order_id", "reference",
    "expires_at", "error_code", "error_message",
]
MONEY_COLUMNS = ("amount_pesos",)  # pesos as numbers with a currency format (files.amounts)
TEXT_COLUMNS = ("customer_id", "payout_order_id", "reference", "expires_at", "error_code", "error_message")
ROW_FILLS = {INVALID: "FFF8CBAD", FAILED: "FFFFC7CE", UNKNOWN: "FFFFEB9C", DUPLICATE: "FFDDEBF7"}
STATUS_ORDER = RESULT_STATUSES  # the order summaries list statuses in
NOT_SENT_CODE = "not_sent"  # a valid row the stopped batch never sent (payout.pipeline)


def expires_at_text(unix_seconds: int | None) -> str:
    """Expiry as ISO 8601 with the offset, in the zone of ``--timezone`` (default Mexico City, where
    the cash is withdrawn)."""
    if unix_seconds is None or pd.isna(unix_seconds):
        return ""
    return datetime.fromtimestamp(int(unix_seconds), clock.zone()).isoformat()


def _input_part(raw: pd.DataFrame, reserved: list[str]) -> pd.DataFrame:
    """The user's columns (as plain objects, a new frame), minus any left by a previous results sheet fed back in."""
    return raw[[c for c in raw.columns if c not in reserved]].astype(object)


def _column(validated: pd.DataFrame, name: str) -> dict:
    """One column of ``validated`` by row number (a dict lookup per row, not ``.at``: 100k rows)."""
    if name not in validated.columns:
        return {}
    return dict(zip(validated.index.tolist(), validated[name].tolist()))


def _missing(value: object) -> bool:
    return value is None or bool(pd.isna(value))


def results_frame(
    raw: pd.DataFrame, validated: pd.DataFrame, outcomes: dict[int, RowOutcome], lang: str = "es",
) -> pd.DataFrame:
    """Input columns, then row, status (code and word in ``lang``), amount in pesos, ids, reference,
    expiry and errors, one line per input row.  The amount is the row's in pesos and its currency,
    as validation read them (blank when unreadable)."""
    frame = _input_part(raw, RESULT_COLUMNS)
    words = {status: label(status, lang) for status in RESULT_STATUSES}
    cents_of, currency_of = _column(validated, "amount"), _column(validated, "currency")
    code_of, message_of = _column(validated, "error_code"), _column(validated, "error_message")
    expiry: dict[object, str] = {}  # most rows of a run share a few expiry instants
    records = []
    for number in raw.index.tolist():
        cents = cents_of.get(number)
        amount = None if _missing(cents) else pesos(cents)
        currency = currency_of.get(number) if amount is not None else ""
        amount_cells = (amount, "" if _missing(currency) else str(currency))
        outcome = outcomes.get(int(number))
        if outcome is None:  # invalid rows never reach the executor
            records.append((int(number), INVALID, words[INVALID], *amount_cells, "", "", "", "",
                            code_of.get(number), message_of.get(number)))
            continue
        expires = expiry.get(outcome.expires_at)
        if expires is None:
            expires = expiry[outcome.expires_at] = expires_at_text(outcome.expires_at)
        records.append((
            int(number), outcome.status, words.get(outcome.status) or label(outcome.status, lang), *amount_cells,
            outcome.customer_id or "", outcome.payout_order_id or "", outcome.reference or "", expires,
            outcome.error_code or "", outcome.error_message or "",
        ))
    result = pd.DataFrame.from_records(records, index=raw.index, columns=RESULT_COLUMNS)
    return pd.concat([frame, result], axis=1)


def validation_frame(raw: pd.DataFrame, validated: pd.DataFrame) -> pd.DataFrame:
    """Input columns, then row, valid/invalid and the errors: the `validate` sheet."""
    frame = _input_part(raw, RESULT_COLUMNS)
    frame["row"] = raw.index.to_numpy(dtype="int64")
    status = np.where(validated["valid"].to_numpy(dtype=bool), VALID, INVALID).astype(object)
    frame["status"] = pd.Series(status, index=frame.index, dtype=object)
    frame["error_code"] = validated["error_code"].astype(object)
    frame["error_message"] = validated["error_message"].astype(object)
    return frame


def write_results(
    frame: pd.DataFrame,
    path: Path,
    *,
    text_columns: tuple[str, ...] = (),
    integer_columns: tuple[str, ...] = (),
    extra_sheets: dict[str, pd.DataFrame] | None = None,
) -> None:
    """Write atomically; ids, references and phones stay text, row numbers integers.

    ``text_columns`` adds input columns that must stay text too (the phone and
    id columns as the user named them); ``integer_columns`` the amount column
    when amounts are cents, so Excel can sum it.
    """
    text = [c for c in (*TEXT_COLUMNS, *text_columns) if c in frame.columns]
    integers = ["row", *(c for c in integer_columns if c in frame.columns)]
    write_table(
        frame, path, text_columns=text, integer_columns=integers, row_fills=ROW_FILLS, fill_column="status",
        extra_sheets=extra_sheets, money_columns=[c for c in MONEY_COLUMNS if c in frame.columns],
    )


def mode_text(livemode: object) -> str:
    """"LIVE", "TEST", or "" while no answer from Conekta has told the account's mode."""
    return "" if livemode is None else ("LIVE" if livemode else "TEST")


@dataclass
class Summary:
    """Counts per status and the money created, for the console and --json."""

    counts: dict[str, int]
    amount_created: int
    currency_totals: dict[str, int] = field(default_factory=dict)
    amounts: dict[str, int] = field(default_factory=dict)  # per status, rows whose amount could be read
    # The same per status and currency: what people are shown (the Resumen sheet), never pesos plus dollars.
    amounts_by_currency: dict[str, dict[str, int]] = field(default_factory=dict)
    counts_by_currency: dict[str, dict[str, int]] = field(default_factory=dict)  # those rows, counted
    # Of ``counts["failed"]``, the rows never sent because the batch stopped (error_code not_sent):
    # nothing was refused, so the summary calls them "not sent", never "failed".
    not_sent: int = 0

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


def summarize(frame: pd.DataFrame, validated: pd.DataFrame) -> Summary:
    """Rows per status, and the cents per status and per currency created.

    Grouped with numpy over the whole batch; each sum is of Python ints, so exact however large."""
    if not validated.index.equals(frame.index):
        validated = validated.reindex(frame.index)
    codes, statuses = pd.factorize(frame["status"].to_numpy(dtype=object))
    amount = validated["amount"]
    known = amount.notna().to_numpy(dtype=bool)
    cents = amount.to_numpy(dtype="int64", na_value=0)
    counts = dict(zip(statuses.tolist(), np.bincount(codes, minlength=len(statuses)).tolist()))
    groups = []  # (first row, status, its rows with a readable amount)
    for code, status in enumerate(statuses.tolist()):
        rows = known & (codes == code)
        if rows.any():
            groups.append((int(np.argmax(rows)), status, rows))
    groups.sort(key=lambda group: group[0])  # statuses in the order the rows first show them
    amounts = {status: sum(cents[rows].tolist()) for _, status, rows in groups}
    currencies = validated["currency"].to_numpy(dtype=object, na_value="")
    by_currency, rows_by_currency = {}, {}
    for _, status, rows in groups:
        by_currency[status], rows_by_currency[status] = _per_currency(cents[rows], currencies[rows])
    totals = by_currency.get(CREATED, {})
    return Summary(
        counts={status: counts[status] for status in STATUS_ORDER if counts.get(status)},
        amount_created=sum(totals.values()),
        currency_totals=totals,
        amounts=amounts,
        amounts_by_currency=by_currency,
        counts_by_currency=rows_by_currency,
        not_sent=int((frame["error_code"] == NOT_SENT_CODE).sum()) if "error_code" in frame.columns else 0,
    )


def _per_currency(cents: np.ndarray, currencies: np.ndarray) -> tuple[dict[str, int], dict[str, int]]:
    """``totals_by_currency`` of the amounts and of the rows, grouped with numpy (a million rows
    one by one took seconds); each total still a sum of Python ints, exact however large."""
    codes, uniques = pd.factorize(currencies, use_na_sentinel=False)  # in order of first appearance
    totals: dict[str, int] = {}
    counts: dict[str, int] = {}
    for code, currency in enumerate(uniques.tolist()):
        mine = codes == code
        key = str(currency)
        totals[key] = totals.get(key, 0) + sum(cents[mine].tolist())
        counts[key] = counts.get(key, 0) + int(mine.sum())
    return totals, counts


def summary_of(
    statuses: Sequence[object], cents: Sequence[int | None], currencies: Sequence[object],
    error_codes: Sequence[object] | None = None,
) -> Summary:
    """``summarize`` for a sheet read back (``status``, ``cancel``): one status, amount, currency
    (and error code, which tells the rows never sent) per row."""
    frame = pd.DataFrame({"status": pd.Series([s if isinstance(s, str) else "" for s in statuses], dtype=object)})
    if error_codes is not None:
        frame["error_code"] = pd.Series(list(error_codes), dtype=object)
    validated = pd.DataFrame({"amount": pd.array(list(cents), dtype="Int64"),
                              "currency": pd.Series(list(currencies), dtype=object)})
    return summarize(frame, validated)


def format_summary(
    summary: Summary,
    *,
    lang: str,
    output: Path,
    batch_id: str | None = None,
    ledger: Path | None = None,
    livemode: bool | None = None,
    audit: Path | None = None,
    not_sent_hint: Plural | None = None,
) -> str:
    """The console summary.  ``not_sent_hint`` labels the rows the stop left unsent when a plain
    rerun would not send them (a LIVE key without --live: "run again with --live")."""
    lines = []
    if batch_id:  # a run (not validate): always say which money this is
        lines.append(TEXT.SUMMARY_TITLE.format(lang, batch=batch_id[:12]))
        lines.append(TEXT.MODE_LINE.format(lang, mode=mode_text(livemode) or TEXT.MODE_UNKNOWN.format(lang)))
    for status, count in summary.counts.items():
        if status == FAILED and summary.not_sent:
            if count > summary.not_sent:
                lines.append(f"  {count - summary.not_sent:>6}  {hint(status, lang, count - summary.not_sent)}")
            words = (not_sent_hint or GROUP_HINTS[PENDING]).format(lang, count=summary.not_sent)
            lines.append(f"  {summary.not_sent:>6}  {words}")
            continue
        lines.append(f"  {count:>6}  {hint(status, lang, count)}")
    if summary.counts.get(UNKNOWN):
        lines.append(STATES_TEXT.UNCONFIRMED_EXPLAINED.format(lang))
    for currency, cents in summary.currency_totals.items():
        lines.append(TEXT.TOTAL_LINE.format(lang, amount=money(cents), currency=currency))
    lines.append(TEXT.OUTPUT_LINE.format(lang, path=output))
    if audit is not None:
        lines.append(TEXT.AUDIT_LINE.format(lang, path=audit))
    if ledger is not None:
        lines.append(TEXT.LEDGER_LINE.format(lang, path=ledger))
    return "\n".join(lines)


def format_plan(plan, balance: dict[str, int] | None, lang: str) -> str:
    """What a dry run found: rows and money that a real run would send."""
    send = TEXT.PLAN_SEND.format(lang, count=len(plan.to_send), totals=format_totals(plan.totals))
    lines = [TEXT.PLAN_LINE.format(lang, send=send, done=TEXT.PLAN_DONE.format(lang, count=plan.already_done))]
    if balance is not None:
        lines.append(TEXT.BALANCE_LINE.format(lang, amounts=format_totals(balance)))
    return "\n".join(lines)


def result_json(result, *, dry_run: bool = False) -> dict:
    """The --json summary: stable keys for cron jobs and scripts."""
    summary = result.summary
    data = {
        "batch_id": result.batch_id,
        "exit_code": 0 if dry_run and result.exit_code == 0 else result.exit_code,
        "mode": mode_text(result.livemode) or None,
        "counts": summary.counts,
        "unconfirmed": count_rows(summary.counts).unconfirmed,  # may exist at Conekta: never part of a failure count
        "not_sent": summary.not_sent,  # of counts.failed: never sent (the batch stopped), nothing refused
        "amount_created": summary.amount_created,
        "totals_created": summary.currency_totals,
        "output": str(result.output_path),
        "audit": str(result.audit_path) if result.audit_path else None,
        "ledger": str(result.ledger_path) if result.ledger_path else None,
        "input": {"name": result.loaded.name, "sha256": result.loaded.sha256},
        "dry_run": dry_run,
    }
    if result.plan is not None:
        data["plan"] = {"rows_to_send": len(result.plan.to_send), "already_done": result.plan.already_done,
                        "totals": result.plan.totals}
    if result.balance is not None:
        data["balance_available"] = result.balance
    return data


FACT_LABELS = {  # looked up by key: the facts' own order is the sheet's
    **column_words("batch_id", "mode", "input_sha256"),
    "input_name": Text(es="Archivo de entrada", en="Input file"),  # the results sheet names its input
    "started_at": Text(es="Inicio", en="Started"),
    "finished_at": Text(es="Fin", en="Finished"),
    "tool": Text(es="Generado por", en="Generated by"),
    "status_checked_at": Text(es="Estados consultados en Conekta", en="Statuses checked at Conekta"),
}
SUMMARY_HEADERS = (
    WORDS_TEXT.COLUMN_WORDS["item"], Text(es="Detalle", en="Detail"), Text(es="Filas", en="Rows"), WORDS_TEXT.COLUMN_WORDS["amount"],
    WORDS_TEXT.COLUMN_WORDS["currency"],
)
ERROR_HEADERS = {
    **column_words("row", "name", "email", "status"),
    "column": Text(es="Columna", en="Column"),
    "error_code": Text(es="Código", en="Code"),
    "error_message": Text(es="Qué corregir", en="What to fix"),
}
TOTAL_CREATED = STATES_TEXT.TOTAL_LABELS["created"]
OrderCounts = dict[str, dict[str, list[int]]]  # order status -> currency -> [orders, cents] (operations.status_counts)


def summary_sheet(
    summary: Summary, facts: dict[str, str], lang: str, orders: OrderCounts | None = None,
) -> TypedSheet:
    """The "Resumen" sheet: the batch's identity (text in "Detalle"), then rows and pesos per status
    and currency as numbers, so Excel sums "Filas" and "Monto"; never pesos plus dollars on one line.

    ``orders`` (after ``status`` or ``cancel``) adds a line per order status at Conekta (cashed,
    cancelled, expired, still to be cashed) and what is paid or to be cashed: cancelled and expired
    orders are never counted in it.
    """
    item, detail, rows, amount, currency = (h.format(lang) for h in SUMMARY_HEADERS)
    records = [{item: FACT_LABELS[k].format(lang), detail: value} for k, value in facts.items() if value]

    def add(concept: str, count: int, cents: int | None, code: str) -> None:
        records.append({item: concept, rows: count, amount: pesos(cents), currency: code})

    for status, count in summary.counts.items():
        concept = f"{hint(status, lang, count)} ({status})"
        per_currency = summary.counts_by_currency.get(status, {})
        for code, n in per_currency.items():
            add(concept, n, summary.amounts_by_currency.get(status, {}).get(code), code)
        if count > sum(per_currency.values()):  # rows whose amount could not be read: counted, no money
            add(concept, count - sum(per_currency.values()), None, "")
    for code, cents in summary.currency_totals.items():
        add(f"{TOTAL_CREATED.format(lang)} ({code})", summary.counts_by_currency.get(CREATED, {}).get(code, 0), cents, code)
    paid: dict[str, list[int]] = {}
    for status, per_currency in (orders or {}).items():
        status = status if status in ORDER_STATUSES else ""  # never checked yet
        for code, (n, cents) in per_currency.items():
            add(f"{TEXT.ORDERS_HEADING.format(lang)}: {report_order_label(status, lang, n)} ({status or '-'})", n, cents, code)
            if status not in ORDER_NEVER_PAID:
                entry = paid.setdefault(code, [0, 0])
                entry[0], entry[1] = entry[0] + n, entry[1] + cents
    for code, (n, cents) in paid.items():
        add(f"{STATES_TEXT.TOTAL_LABELS['paid'].format(lang)} ({code})", n, cents, code)
    frame = pd.DataFrame.from_records(records, columns=[item, detail, rows, amount, currency])
    return TypedSheet(frame, integer_columns=(rows,), money_columns=(amount,))


def errors_sheet(frame: pd.DataFrame, validated: pd.DataFrame, lang: str, problems: Sequence[Problem] = ()) -> pd.DataFrame:
    """The "Errores" sheet: only the rows someone must act on, with the fix in plain words.

    An invalid row gets one line per problem, rendered here in ``lang`` from the failure
    table (``problems``), each naming its column as the file writes it, so a filter on
    the column or the code finds every cell to fix; a failed or unconfirmed row, one line.
    """
    by_row: dict[int, list[Problem]] = {}
    for problem in problems:
        by_row.setdefault(problem.row, []).append(problem)
    to_fix = frame[frame["status"].isin([INVALID, FAILED, UNKNOWN])]
    names, emails = validated["name"], validated["email"]
    records = []
    for index, number, status, code, message in zip(
        to_fix.index, to_fix["row"].tolist(), to_fix["status"].tolist(), to_fix["error_code"].tolist(),
        to_fix["error_message"].tolist(),
    ):
        row = {"row": number, "name": names.at[index], "email": emails.at[index], "status": status}
        found = by_row.get(int(number), []) if status == INVALID else []
        for problem in found:
            records.append({**row, "column": problem.column, "error_code": problem.code,
                            "error_message": problem.text(lang)})
        if not found:
            records.append({**row, "column": "", "error_code": code, "error_message": message})
    table = pd.DataFrame.from_records(records, columns=list(ERROR_HEADERS))
    return table.rename(columns={k: v.format(lang) for k, v in ERROR_HEADERS.items()})


def summary_sheet_names() -> tuple[str, ...]:
    """The summary sheet's name in every language: a refresh replaces it whichever wrote it."""
    return (TEXT.SHEET_NAMES["summary"].es, TEXT.SHEET_NAMES["summary"].en)


def extra_sheets(
    frame: pd.DataFrame, validated: pd.DataFrame, summary: Summary, facts: dict[str, str], lang: str,
    problems: Sequence[Problem] = (),
):
    return {
        TEXT.SHEET_NAMES["summary"].format(lang): summary_sheet(summary, facts, lang),
        TEXT.SHEET_NAMES["errors"].format(lang): errors_sheet(frame, validated, lang, problems),
    }
