"""``status``: fetch each created order's current status, record it, refresh the results sheet."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from batch_payouts import __version__, report
from batch_payouts.files.amounts import money_number, pesos
from batch_payouts.errors import BatchError
from batch_payouts.files.read import XLSX_EXTENSIONS, read_table
from batch_payouts.files.write import write_table
from batch_payouts.operations.access import key_refused, now, time_text
from batch_payouts.payout.conekta import ConektaClient, ConektaError
from batch_payouts.payout.ledger import Ledger
from batch_payouts.payout.order_events import record_polled_status
from batch_payouts.payout.records import BatchRecord, LedgerRow
from batch_payouts.rules.headers import resolve_headers
from batch_payouts.states import (
    CREATED, ORDER_FINAL, ORDER_LABELS, ORDER_NOT_CASHED, ORDER_STATUSES, STATUS_OF_STATE, label,
)

# Conekta's order statuses and their words are named in `states`; these names stay for callers.
PENDING_STATUSES = ORDER_NOT_CASHED
ORDER_STATUS_LABELS = ORDER_LABELS
FINAL_STATUSES = ORDER_FINAL
STATUS_ORDER = ORDER_STATUSES
CHANGED = "changed"
CHANGED_FILL = "FFFFEB9C"
STATUS_COLUMNS = ["order_status", "status_checked_at", "status_change"]
# After issue 16: when the reference was cashed, and the new reference of an expired one paid again.
AFTER_COLUMNS = ["cashed_at", "reissued_reference", "reissued_order_status"]


@dataclass
class RowStatus:
    """One payout order's status as last known, and what Conekta says now."""

    row: LedgerRow
    previous: str | None
    current: str | None = None
    error: str | None = None
    reference: str | None = None  # Conekta's, for an order created before its reference was assigned

    @property
    def changed(self) -> bool:
        return self.error is None and self.current != self.previous


def created_rows(ledger: Ledger, batch_id: str) -> list[LedgerRow]:
    return [r for r in ledger.rows(batch_id) if r.state == CREATED and r.payout_order_id]


def refresh_status(
    ledger: Ledger, client: ConektaClient, batch: BatchRecord, *, workers: int = 8,
    on_row: Callable[[RowStatus], None] | None = None, rows: list[LedgerRow] | None = None,
) -> list[RowStatus]:
    """GET every created order of the batch (or ``rows``) and record its status and the time in the ledger."""
    rows = created_rows(ledger, batch.batch_id) if rows is None else rows

    def fetch(row: LedgerRow) -> RowStatus:
        result = RowStatus(row, row.order_status)
        try:
            order = client.get_payout_order(row.payout_order_id)
        except ConektaError as error:
            if error.stops_batch:
                raise
            result.error = str(error)
            return result
        result.current = str(order.get("status") or "")
        result.reference = order.get("reference") or None
        return result

    results: list[RowStatus] = []
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for result in pool.map(fetch, rows):
                if result.error is None:
                    ledger.update_order_status(batch.batch_id, result.row.row_key, result.current,
                                               cancelled=result.current == "cancelled" and result.changed)
                    record_polled_status(ledger, batch.batch_id, result.row.row_key, result.current)
                    if result.reference and not result.row.reference:  # created "reference pending"
                        ledger.set_reference(batch.batch_id, result.row.row_key, result.reference)
                results.append(result)
                if on_row is not None:
                    on_row(result)
    except ConektaError as error:
        raise key_refused(error) from error
    return results


def open_rows_by_batch(ledger: Ledger) -> list[tuple[BatchRecord, list[LedgerRow]]]:
    """Every created order not known to be cashed, expired or cancelled, per batch; the least recently
    checked first, so a nightly run stopped half-way (or rate-limited) starts the next one where it stopped."""
    found = ledger._query(
        f"""SELECT batch_id, row_key FROM rows WHERE state='created' AND payout_order_id IS NOT NULL
              AND COALESCE(order_status, '') NOT IN ('{"','".join(FINAL_STATUSES)}')
            ORDER BY COALESCE(status_checked_at, 0), batch_id, row_number"""
    )
    keys: dict[str, set[str]] = {}
    for r in found:
        keys.setdefault(r["batch_id"], set()).add(r["row_key"])
    result = []
    for batch_id, wanted in keys.items():
        batch = ledger.batch(batch_id)
        if batch is not None:
            result.append((batch, sorted((r for r in ledger.rows(batch_id) if r.row_key in wanted),
                                        key=lambda r: r.status_checked_at or 0)))
    return result


def status_counts(ledger: Ledger, batch_id: str) -> dict[str, dict[str, list[int]]]:
    """status -> currency -> [count, cents], from the ledger's latest known statuses."""
    counts: dict[str, dict[str, list[int]]] = {}
    for row in created_rows(ledger, batch_id):
        entry = counts.setdefault(row.order_status or "unknown", {}).setdefault(row.currency, [0, 0])
        entry[0] += 1
        entry[1] += row.amount
    ordered = {s: counts.pop(s) for s in STATUS_ORDER if s in counts}
    ordered.update(sorted(counts.items()))
    return ordered


# -- the refreshed results sheet ----------------------------------------------------------------
def sheet_source(batch: BatchRecord, ref: str) -> Path | None:
    """The results sheet to refresh: the file the user named, else the one the ledger remembers."""
    given = Path(ref)
    if given.is_file():
        return given
    if batch.output_path and Path(batch.output_path).is_file():
        return Path(batch.output_path)
    return None


def write_status_sheet(
    ledger: Ledger, batch: BatchRecord, source: Path | None, output: Path | None, changed: Iterable[str],
    lang: str = "es",
) -> Path | None:
    """Rewrite the results sheet with the latest status of every order; changed rows filled.

    Adds (or refreshes) ``order_status``, ``status_checked_at`` and ``status_change``; every
    other column is kept as it was.  In XLSX the "Resumen" is rebuilt from the ledger (numbers,
    in ``lang``: cashed, cancelled, expired and still-pending orders, and what is paid), so after
    ``status`` or ``cancel`` it never tells the money of the run day; the other sheets are kept.
    Without a results sheet the table is built from the ledger alone (only when ``output`` is given).
    """
    target = output or source
    if target is None:
        return None
    changed = set(changed)
    every = ledger.rows(batch.batch_id)
    by_number = {r.row_number: r for r in every if not r.reissue_of}  # a reissue shares its original's number
    by_key = {r.row_key: r for r in every}
    extra: dict[str, pd.DataFrame] = {}
    if source is not None:
        frame = read_table(source).astype(object)
        if source.suffix.lower() in XLSX_EXTENSIONS and target.suffix.lower() == ".xlsx":
            extra = _other_sheets(source)
        numbers = [_int(v) for v in frame["row"]] if "row" in frame.columns else [int(i) for i in frame.index]
    else:
        rows = sorted(by_number.values(), key=lambda r: r.row_number)
        frame = pd.DataFrame.from_records(
            [{"row": r.row_number, "email": r.email, "amount": r.amount, "currency": r.currency, "reason": r.reason,
              "status": STATUS_OF_STATE[r.state], "status_label": label(STATUS_OF_STATE[r.state], lang),
              "amount_pesos": pesos(r.amount), "amount_currency": r.currency,
              "payout_order_id": r.payout_order_id or "", "reference": r.reference or "",
              "expires_at": report.expires_at_text(r.expires_at)} for r in rows]
        ).astype(object)
        numbers = [r.row_number for r in rows]
    statuses, checked, marks = [], [], []
    for number in numbers:
        row = by_number.get(number)
        known = row is not None and row.state == CREATED and row.payout_order_id
        statuses.append((row.order_status or "") if known else "")
        checked.append(time_text(row.status_checked_at) if known else "")
        marks.append(CHANGED if known and row.row_key in changed else "")
    frame["order_status"], frame["status_checked_at"], frame["status_change"] = statuses, checked, marks
    frame["cashed_at"] = [time_text(r.cashed_at) if r is not None and r.cashed_at else "" for r in map(by_number.get, numbers)]
    reissues = [by_key.get(r.reissued_as or "") if r is not None else None for r in map(by_number.get, numbers)]
    if any(reissues) or "reissued_reference" in frame.columns:
        frame["reissued_reference"] = [(r.reference or "") if r is not None else "" for r in reissues]
        frame["reissued_order_status"] = [(r.order_status or STATUS_OF_STATE[r.state]) if r is not None else ""
                                          for r in reissues]
    _fill_references(frame, numbers, by_number)
    text = [c for c in (*report.TEXT_COLUMNS, *STATUS_COLUMNS, *AFTER_COLUMNS) if c in frame.columns]
    integers = ["row"]
    try:
        headers = resolve_headers([c for c in frame.columns if c not in report.RESULT_COLUMNS])
        text += [headers.canonical[c] for c in ("phone", "customer_id", "external_id") if c in headers.canonical]
        if "amount" in headers.canonical:
            integers.append(headers.canonical["amount"])
    except BatchError:  # a sheet without the input's columns: keep what it has
        pass
    if target.suffix.lower() == ".xlsx":
        extra = {report.TEXT.SHEET_NAMES["summary"].format(lang): _summary(ledger, batch, frame, numbers, by_number, lang),
                 **{name: sheet for name, sheet in extra.items() if name not in report.summary_sheet_names()}}
    write_table(frame, target, text_columns=text, integer_columns=integers,
                       row_fills={CHANGED: CHANGED_FILL}, fill_column="status_change", extra_sheets=extra,
                       money_columns=[c for c in report.MONEY_COLUMNS if c in frame.columns])
    return target


def _summary(ledger: Ledger, batch: BatchRecord, frame: pd.DataFrame, numbers: list,
             by_number: dict[int, LedgerRow], lang: str):
    """The "Resumen" as of now: the sheet's rows per status, the ledger's money and order statuses."""
    def column(name: str) -> list:
        return frame[name].tolist() if name in frame.columns else [None] * len(numbers)

    cents, currencies = [], []
    for number, shown, currency in zip(numbers, column("amount_pesos"), column("amount_currency")):
        row = by_number.get(number)
        if row is None:  # never sent (invalid): the amount as the run's sheet read it
            number_shown = money_number(shown)
            cents.append(None if number_shown is None else round(number_shown * 100))
            currencies.append(currency if number_shown is not None else None)
        else:
            cents.append(row.amount)
            currencies.append(row.currency)
    summary = report.summary_of(column("status"), cents, currencies, column("error_code"))
    facts = {"batch_id": batch.batch_id, "mode": report.mode_text(batch.livemode), "input_name": batch.input_name,
             "input_sha256": batch.input_sha256, "started_at": time_text(batch.first_run_at),
             "status_checked_at": time_text(now()), "tool": f"batch-payouts {__version__}"}
    return report.summary_sheet(summary, facts, lang, orders=status_counts(ledger, batch.batch_id))


def _fill_references(frame: pd.DataFrame, numbers: list, by_number: dict[int, LedgerRow]) -> None:
    """Rows the run left "created, reference pending" get the reference Conekta has since assigned
    (and lose the note that it was missing)."""
    if "reference" not in frame.columns:
        return
    references = frame["reference"].tolist()
    codes = frame["error_code"].tolist() if "error_code" in frame.columns else [""] * len(references)
    messages = frame["error_message"].tolist() if "error_message" in frame.columns else [""] * len(references)
    for position, number in enumerate(numbers):
        row = by_number.get(number)
        if row is None or row.state != CREATED or not row.reference or references[position]:
            continue
        references[position] = row.reference
        if codes[position] == "reference_pending":
            codes[position], messages[position] = "", ""
    frame["reference"] = references
    if "error_code" in frame.columns:
        frame["error_code"], frame["error_message"] = codes, messages


def _other_sheets(path: Path) -> dict[str, pd.DataFrame]:
    """The workbook's sheets after the first ("Resumen", "Errores"), kept as they are."""
    from python_calamine import CalamineWorkbook

    try:
        names = CalamineWorkbook.from_path(str(path)).sheet_names[1:]
    except Exception:  # noqa: BLE001 - the first sheet was readable; losing extras is not fatal
        return {}
    kept = {}
    for name in names:
        try:
            kept[name] = read_table(path, sheet=name)
        except BatchError:
            continue
    return kept


def _int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None
