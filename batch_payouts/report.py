"""The results sheet and the end-of-run summary.

The results sheet is the input as the user wrote it (every column, in its
order) followed by what happened to each row.  It is what finance forwards to
beneficiaries and what an auditor checks against the ledger, so ids and
references are always text and every status has a plain explanation.
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

from batch_payouts.files.write import write_table
from batch_payouts.i18n import Plural, Text, money
from batch_payouts.payout.row_executor import RowOutcome
from batch_payouts.states import CREATED, DUPLICATE, FAILED, INVALID, RESULT_STATUSES, UNKNOWN, VALID, UNCONFIRMED_EXPLAINED, count_rows, hint
from batch_payouts.totals import format_totals, totals_by_currency

if TYPE_CHECKING:
    from batch_payouts.rules.validation import Problem

MEXICO_CITY = ZoneInfo("America/Mexico_City")
RESULT_COLUMNS = ["row", "status", "customer_id", "payout_order_id", "reference", "expires_at", "error_code", "error_message"]
TEXT_COLUMNS = ("customer_id", "payout_order_id", "reference", "expires_at", "error_code", "error_message")
ROW_FILLS = {INVALID: "FFF8CBAD", FAILED: "FFFFC7CE", UNKNOWN: "FFFFEB9C", DUPLICATE: "FFDDEBF7"}
STATUS_ORDER = RESULT_STATUSES  # the order summaries list statuses in


def expires_at_text(unix_seconds: int | None) -> str:
    """Expiry as ISO 8601 with the offset, in Mexico City time (where the cash is withdrawn)."""
    if unix_seconds is None or pd.isna(unix_seconds):
        return ""
    return datetime.fromtimestamp(int(unix_seconds), MEXICO_CITY).isoformat()


def _input_part(raw: pd.DataFrame, reserved: list[str]) -> pd.DataFrame:
    """The user's columns (as plain objects, a new frame), minus any left by a previous results sheet fed back in."""
    return raw[[c for c in raw.columns if c not in reserved]].astype(object)


def results_frame(
    raw: pd.DataFrame, validated: pd.DataFrame, outcomes: dict[int, RowOutcome]
) -> pd.DataFrame:
    """Input columns, then row, status, ids, reference, expiry and errors, one line per input row."""
    frame = _input_part(raw, RESULT_COLUMNS)
    records = []
    for number in raw.index:
        outcome = outcomes.get(int(number))
        if outcome is None:  # invalid rows never reach the executor
            records.append(
                {
                    "row": int(number), "status": INVALID, "customer_id": "", "payout_order_id": "", "reference": "",
                    "expires_at": "", "error_code": validated.at[number, "error_code"],
                    "error_message": validated.at[number, "error_message"],
                }
            )
            continue
        records.append(
            {
                "row": int(number),
                "status": outcome.status,
                "customer_id": outcome.customer_id or "",
                "payout_order_id": outcome.payout_order_id or "",
                "reference": outcome.reference or "",
                "expires_at": expires_at_text(outcome.expires_at),
                "error_code": outcome.error_code or "",
                "error_message": outcome.error_message or "",
            }
        )
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
        extra_sheets=extra_sheets,
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
    by_currency = {status: totals_by_currency(cents[rows].tolist(), currencies[rows].tolist()) for _, status, rows in groups}
    totals = by_currency.get(CREATED, {})
    return Summary(
        counts={status: counts[status] for status in STATUS_ORDER if counts.get(status)},
        amount_created=sum(totals.values()),
        currency_totals=totals,
        amounts=amounts,
        amounts_by_currency=by_currency,
    )


SUMMARY_TITLE = Text(es="Resumen del lote {batch}", en="Batch {batch} summary")
TOTAL_LINE = Text(es="Total creado: {amount} ({currency})", en="Total created: {amount} ({currency})")
OUTPUT_LINE = Text(es="Hoja de resultados: {path}", en="Results sheet: {path}")
AUDIT_LINE = Text(es="Registro de auditoría: {path}", en="Audit log: {path}")
LEDGER_LINE = Text(es="Bitácora: {path}", en="Ledger: {path}")
MODE_LINE = Text(es="Modo: {mode}", en="Mode: {mode}")
MODE_UNKNOWN = Text(
    es="sin confirmar (Conekta aún no ha respondido a esta llave; se sabrá con la primera respuesta)",
    en="not confirmed yet (Conekta has not answered this key yet; the first answer will tell)",
)


def format_summary(
    summary: Summary,
    *,
    lang: str,
    output: Path,
    batch_id: str | None = None,
    ledger: Path | None = None,
    livemode: bool | None = None,
    audit: Path | None = None,
) -> str:
    lines = []
    if batch_id:  # a run (not validate): always say which money this is
        lines.append(SUMMARY_TITLE.format(lang, batch=batch_id[:12]))
        lines.append(MODE_LINE.format(lang, mode=mode_text(livemode) or MODE_UNKNOWN.format(lang)))
    for status, count in summary.counts.items():
        lines.append(f"  {count:>6}  {hint(status, lang, count)}")
    if summary.counts.get(UNKNOWN):
        lines.append(UNCONFIRMED_EXPLAINED.format(lang))
    for currency, cents in summary.currency_totals.items():
        lines.append(TOTAL_LINE.format(lang, amount=money(cents), currency=currency))
    lines.append(OUTPUT_LINE.format(lang, path=output))
    if audit is not None:
        lines.append(AUDIT_LINE.format(lang, path=audit))
    if ledger is not None:
        lines.append(LEDGER_LINE.format(lang, path=ledger))
    return "\n".join(lines)


PLAN_LINE = Text(
    es="Simulación (--dry-run): {send}; {done}. No se envió nada.",
    en="Dry run (--dry-run): {send}; {done}. Nothing was sent.",
)
PLAN_SEND = Plural(
    one=Text(es="se enviaría {count} fila por {totals}", en="{count} row would be sent for {totals}"),
    other=Text(es="se enviarían {count} filas por {totals}", en="{count} rows would be sent for {totals}"),
)
PLAN_DONE = Plural(
    one=Text(es="{count} ya estaba resuelta en una ejecución anterior", en="{count} was already settled by an earlier run"),
    other=Text(es="{count} ya estaban resueltas en una ejecución anterior", en="{count} were already settled by an earlier run"),
)
BALANCE_LINE = Text(es="Saldo disponible: {amounts}", en="Available balance: {amounts}")


def format_plan(plan, balance: dict[str, int] | None, lang: str) -> str:
    """What a dry run found: rows and money that a real run would send."""
    send = PLAN_SEND.format(lang, count=len(plan.to_send), totals=format_totals(plan.totals))
    lines = [PLAN_LINE.format(lang, send=send, done=PLAN_DONE.format(lang, count=plan.already_done))]
    if balance is not None:
        lines.append(BALANCE_LINE.format(lang, amounts=format_totals(balance)))
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


SHEET_NAMES = {"summary": Text(es="Resumen", en="Summary"), "errors": Text(es="Errores", en="Errors")}
FACT_LABELS = {
    "batch_id": Text(es="Lote", en="Batch"),
    "mode": Text(es="Modo", en="Mode"),
    "input_name": Text(es="Archivo de entrada", en="Input file"),
    "input_sha256": Text(es="SHA-256 del archivo", en="File SHA-256"),
    "started_at": Text(es="Inicio", en="Started"),
    "finished_at": Text(es="Fin", en="Finished"),
    "tool": Text(es="Generado por", en="Generated by"),
}
SUMMARY_HEADERS = (Text(es="Concepto", en="Item"), Text(es="Valor", en="Value"), Text(es="Monto", en="Amount"))
ERROR_HEADERS = {
    "row": Text(es="Fila", en="Row"),
    "name": Text(es="Nombre", en="Name"),
    "email": Text(es="Correo", en="Email"),
    "status": Text(es="Estado", en="Status"),
    "column": Text(es="Columna", en="Column"),
    "error_code": Text(es="Código", en="Code"),
    "error_message": Text(es="Qué corregir", en="What to fix"),
}
TOTAL_CREATED = Text(es="Total creado", en="Total created")


def summary_sheet(summary: Summary, facts: dict[str, str], lang: str) -> pd.DataFrame:
    """The "Resumen" sheet: the batch's identity, then rows and money per status."""
    item, rows, amount = (h.format(lang) for h in SUMMARY_HEADERS)
    records = [{item: FACT_LABELS[k].format(lang), rows: value, amount: ""} for k, value in facts.items() if value]
    for status, count in summary.counts.items():
        records.append({item: f"{hint(status, lang, count)} ({status})", rows: count,
                        amount: format_totals(summary.amounts_by_currency.get(status, {}))})
    for currency, cents in summary.currency_totals.items():
        records.append({item: f"{TOTAL_CREATED.format(lang)} ({currency})", rows: summary.counts.get(CREATED, 0),
                        amount: money(cents)})
    return pd.DataFrame.from_records(records, columns=[item, rows, amount])


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
    for label, number, status, code, message in zip(
        to_fix.index, to_fix["row"].tolist(), to_fix["status"].tolist(), to_fix["error_code"].tolist(),
        to_fix["error_message"].tolist(),
    ):
        row = {"row": number, "name": names.at[label], "email": emails.at[label], "status": status}
        found = by_row.get(int(number), []) if status == INVALID else []
        for problem in found:
            records.append({**row, "column": problem.column, "error_code": problem.code,
                            "error_message": problem.text(lang)})
        if not found:
            records.append({**row, "column": "", "error_code": code, "error_message": message})
    table = pd.DataFrame.from_records(records, columns=list(ERROR_HEADERS))
    return table.rename(columns={k: v.format(lang) for k, v in ERROR_HEADERS.items()})


def extra_sheets(
    frame: pd.DataFrame, validated: pd.DataFrame, summary: Summary, facts: dict[str, str], lang: str,
    problems: Sequence[Problem] = (),
):
    return {
        SHEET_NAMES["summary"].format(lang): summary_sheet(summary, facts, lang),
        SHEET_NAMES["errors"].format(lang): errors_sheet(frame, validated, lang, problems),
    }
