"""After a batch is sent: refresh statuses, cancel references, reconcile with Conekta, report.

The library behind ``status``, ``cancel``, ``reconcile``, ``batches``, ``show``
and ``report``.  Like ``jobs`` it never prints and never exits: it returns
results the CLI formats, and raises ``BatchError`` (exit 2) when the command
cannot run at all (unknown batch, another API key, a refused key).

A batch is queried with the key that created it: Conekta scopes orders by
account and mode, so another key would see none of them and every order would
look "missing".  The ledger keeps the key's one-way fingerprint to check that.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from batch_payouts import report
from batch_payouts.files.read import XLSX_EXTENSIONS, read_table
from batch_payouts.files.write import write_table
from batch_payouts.rules.headers import resolve_headers
from batch_payouts.payout.conekta import DEFAULT_API_VERSION, ClientConfig, ConektaClient, ConektaError
from batch_payouts.payout.audit import AuditLog, audit_path_for, open_audit
from batch_payouts.errors import BatchError
from batch_payouts.jobs import SANDBOX_KEY, resolve_endpoint, sandbox_state_path
from batch_payouts.i18n import Text
from batch_payouts.payout.ledger import Ledger, key_fingerprint, operator_name
from batch_payouts.payout.records import BatchRecord, LedgerRow
from batch_payouts.report import mode_text
from batch_payouts import states
from batch_payouts.states import CREATED, ORDER_FINAL, ORDER_LABELS, ORDER_NOT_CASHED, ORDER_STATUSES, Counts, count_rows
from batch_payouts.totals import totals_by_currency
from batch_payouts.payout.throttle import RateLimiter

# Conekta's order statuses and their words are named in `states`; these names stay for callers.
PENDING_STATUSES = ORDER_NOT_CASHED
ORDER_STATUS_LABELS = ORDER_LABELS
FINAL_STATUSES = ORDER_FINAL
STATUS_ORDER = ORDER_STATUSES
CHANGED = "changed"
CHANGED_FILL = "FFFFEB9C"
STATUS_COLUMNS = ["order_status", "status_checked_at", "status_change"]

UNKNOWN_BATCH = Text(
    es="No se encontró el lote «{ref}» en la bitácora {ledger}. Usa el id del lote (o al menos 6 caracteres "
    "de él), o la ruta de su hoja de resultados; `batch-payouts batches` los lista.",
    en="Batch '{ref}' was not found in the ledger {ledger}. Give the batch id (or 6+ characters of it) or "
    "the path of its results sheet; `batch-payouts batches` lists them.",
)
OTHER_KEY = Text(
    es="El lote {batch_id} se creó con otra llave de API (otra cuenta o modo): con la llave de "
    "CONEKTA_API_KEY no se verían sus órdenes. Define la misma llave con la que se ejecutó el lote.",
    en="Batch {batch_id} was created with a different API key (another account or mode): with the key in "
    "CONEKTA_API_KEY its orders would not be visible. Set the key the batch was run with.",
)
KEY_REFUSED = Text(
    es="Conekta rechazó la llave de API (HTTP {status}: {detail}). No se hizo nada más.",
    en="Conekta refused the API key (HTTP {status}: {detail}). Nothing else was done.",
)
SANDBOX_BATCH_ONLY = Text(
    es="--sandbox solo sirve para lotes ejecutados con --sandbox; el lote {batch_id} se envió a {api_base}.",
    en="--sandbox only works for batches run with --sandbox; batch {batch_id} was sent to {api_base}.",
)
BAD_ROWS = Text(
    es="--rows «{value}» no es válido: usa números de fila de la hoja separados por comas, con rangos "
    "(por ejemplo 4,7-9).",
    en="--rows '{value}' is not valid: use spreadsheet row numbers separated by commas, with ranges "
    "(for example 4,7-9).",
)
ONE_SELECTION = Text(
    es="Indica qué cancelar con exactamente una de --rows, --external-id o --all-pending.",
    en="Say what to cancel with exactly one of --rows, --external-id or --all-pending.",
)
NO_SUCH_ROW = Text(
    es="La fila {row} no tiene una orden de pago creada en el lote {batch_id} ({state}). No se canceló nada: "
    "corrige la selección.",
    en="Row {row} has no created payout order in batch {batch_id} ({state}). Nothing was cancelled: fix the "
    "selection.",
)
NO_SUCH_FOLIO = Text(
    es="El folio «{external_id}» no tiene una orden de pago creada en el lote {batch_id} ({state}). "
    "No se canceló nada: corrige la selección.",
    en="Folio '{external_id}' has no created payout order in batch {batch_id} ({state}). Nothing was "
    "cancelled: fix the selection.",
)
NOT_IN_LEDGER = Text(es="no se envió: inválida o no está en el archivo", en="never sent: invalid or not in the file")
BAD_DATE = Text(
    es="{option} «{value}» no es una fecha válida: usa AAAA-MM-DD (hora de la Ciudad de México).",
    en="{option} '{value}' is not a valid date: use YYYY-MM-DD (Mexico City time).",
)
EMPTY_RANGE = Text(
    es="--until ({until}) debe ser posterior a --since ({since}).",
    en="--until ({until}) must be after --since ({since}).",
)
BAD_OUTPUT = Text(
    es="--output «{path}» no sirve: debe ser un archivo .xlsx o .csv (no una carpeta). No se hizo nada.",
    en="--output '{path}' cannot be used: it must be an .xlsx or .csv file (not a folder). Nothing was done.",
)


def check_output(path: Path | None, allowed: tuple[str, ...] = (".xlsx", ".csv")) -> Path | None:
    """Refuse an output the sheet writer cannot produce before anything is sent or changed."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir() or path.suffix.lower() not in allowed:
        raise BatchError(BAD_OUTPUT, path=str(path))
    return path


# -- opening a batch and its client ------------------------------------------------------------
def find_batch(ledger: Ledger, ref: str) -> BatchRecord:
    found = ledger.find_batch(str(ref))
    if found is None:
        raise BatchError(UNKNOWN_BATCH, ref=ref, ledger=str(ledger.path))
    return found


@dataclass
class Connection:
    """How to reach the account that holds a batch's orders."""

    api_base: str | None = None
    api_version: str | None = None
    sandbox: bool = False
    rate_limit: float | None = None
    workers: int = 8
    lang: str = "es"
    max_retries: int = 4
    initial_backoff: float = 0.5


def open_client(
    stack: ExitStack, batch: BatchRecord, ledger: Ledger, conn: Connection,
    environ: dict[str, str] | None = None, command: str | None = None,
) -> ConektaClient:
    """The client for ``batch``: same key (checked by fingerprint), API base chosen as ``run`` does.

    With ``sandbox`` the built-in emulator is restarted on the state file ``run --sandbox`` kept
    beside the ledger, so a demo batch can be queried afterwards.
    """
    env = os.environ if environ is None else environ
    if conn.sandbox and (
        key_fingerprint(SANDBOX_KEY) != batch.key_fingerprint or not sandbox_state_path(ledger.path).exists()
    ):
        raise BatchError(SANDBOX_BATCH_ONLY, batch_id=batch.batch_id[:12], api_base=batch.api_base)
    api_key, api_base = resolve_endpoint(
        stack, sandbox=conn.sandbox, api_base=conn.api_base, ledger_path=ledger.path, environ=env
    )
    if key_fingerprint(api_key) != batch.key_fingerprint:
        raise BatchError(OTHER_KEY, batch_id=batch.batch_id[:12])
    config = ClientConfig(
        api_key=api_key, api_base=api_base,
        api_version=conn.api_version or batch.api_version or DEFAULT_API_VERSION, lang=conn.lang,
        max_retries=conn.max_retries, pool_size=max(4, conn.workers * 2), initial_backoff=conn.initial_backoff,
    )
    audit = _open_audit(stack, batch, ledger, command)
    on_call = (lambda call: audit.api_call(**call)) if audit is not None else None
    return stack.enter_context(ConektaClient(config, throttle=RateLimiter(conn.rate_limit), on_call=on_call))


def _open_audit(stack: ExitStack, batch: BatchRecord, ledger: Ledger, command: str | None) -> AuditLog | None:
    """Calls made by ``status``/``cancel``/``reconcile`` go to the batch's audit log too,
    so an auditor sees every request about the batch's money, not only the run's."""
    if command is None or not batch.output_path:
        return None
    audit = open_audit(stack, ledger, audit_path_for(Path(batch.output_path)), batch.batch_id)
    audit.append({"type": "command_started", "command": command, "batch_id": batch.batch_id,
                  "operator": operator_name(), "host": socket.gethostname()})
    stack.callback(audit.append, {"type": "command_finished", "command": command})
    return audit


def _key_refused(error: ConektaError) -> BatchError:
    return BatchError(KEY_REFUSED, status=error.http_status, detail=error.message or error.type)


def _now() -> float:
    return datetime.now().timestamp()


def time_text(unix_seconds: float | None) -> str:
    """ISO 8601 in Mexico City time, to the second."""
    if unix_seconds is None or pd.isna(unix_seconds):
        return ""
    return datetime.fromtimestamp(float(unix_seconds), report.MEXICO_CITY).isoformat(timespec="seconds")


# -- status ---------------------------------------------------------------------------------
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
    on_row: Callable[[RowStatus], None] | None = None,
) -> list[RowStatus]:
    """GET every created order of the batch and record its status and the time in the ledger."""
    rows = created_rows(ledger, batch.batch_id)

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
                    if result.reference and not result.row.reference:  # created "reference pending"
                        ledger.set_reference(batch.batch_id, result.row.row_key, result.reference)
                results.append(result)
                if on_row is not None:
                    on_row(result)
    except ConektaError as error:
        raise _key_refused(error) from error
    return results


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
) -> Path | None:
    """Rewrite the results sheet with the latest status of every order; changed rows filled.

    Adds (or refreshes) ``order_status``, ``status_checked_at`` and ``status_change``; every
    other column, and the workbook's other sheets, are kept as they were.  Without a results
    sheet the table is built from the ledger alone (only when ``output`` is given).
    """
    target = output or source
    if target is None:
        return None
    changed = set(changed)
    by_number = {r.row_number: r for r in ledger.rows(batch.batch_id)}
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
              "status": r.state, "payout_order_id": r.payout_order_id or "", "reference": r.reference or "",
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
    _fill_references(frame, numbers, by_number)
    text = [c for c in (*report.TEXT_COLUMNS, *STATUS_COLUMNS) if c in frame.columns]
    integers = ["row"]
    try:
        headers = resolve_headers([c for c in frame.columns if c not in report.RESULT_COLUMNS])
        text += [headers.canonical[c] for c in ("phone", "customer_id", "external_id") if c in headers.canonical]
        if "amount" in headers.canonical:
            integers.append(headers.canonical["amount"])
    except BatchError:  # a sheet without the input's columns: keep what it has
        pass
    write_table(frame, target, text_columns=text, integer_columns=integers,
                       row_fills={CHANGED: CHANGED_FILL}, fill_column="status_change", extra_sheets=extra)
    return target


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


# -- cancel ---------------------------------------------------------------------------------
def parse_rows(value: str) -> set[int]:
    numbers: set[int] = set()
    for part in (value or "").split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise BatchError(BAD_ROWS, value=value)
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last < first or last - first > 1_000_000:
            raise BatchError(BAD_ROWS, value=value)
        numbers.update(range(first, last + 1))
    return numbers


def select_rows(
    ledger: Ledger, batch: BatchRecord, *, rows: str | None = None, external_ids: Iterable[str] = (),
    all_pending: bool = False, lang: str = "es",
) -> list[LedgerRow]:
    """The created orders to cancel; a row or folio without one refuses the whole selection."""
    external_ids = list(external_ids)
    if sum([bool(rows), bool(external_ids), all_pending]) != 1:
        raise BatchError(ONE_SELECTION)
    batch_id = batch.batch_id
    every = ledger.rows(batch_id)
    if all_pending:
        return [r for r in every if r.state == CREATED and r.payout_order_id
                and (r.order_status or ORDER_NOT_CASHED[0]) in ORDER_NOT_CASHED]
    chosen: list[LedgerRow] = []
    if rows:
        by_number = {r.row_number: r for r in every}
        for number in sorted(parse_rows(rows)):
            row = by_number.get(number)
            if row is None or row.state != CREATED or not row.payout_order_id:
                state = states.label(row.state, lang) if row is not None else NOT_IN_LEDGER.format(lang)
                raise BatchError(NO_SUCH_ROW, row=number, batch_id=batch_id[:12], state=state)
            chosen.append(row)
    for external_id in external_ids:
        row = next((r for r in every if r.row_key == f"x:{external_id}"), None)
        if row is None or row.state != CREATED or not row.payout_order_id:
            state = states.label(row.state, lang) if row is not None else NOT_IN_LEDGER.format(lang)
            raise BatchError(NO_SUCH_FOLIO, external_id=external_id, batch_id=batch_id[:12], state=state)
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
                raise _key_refused(error) from error
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
            raise _key_refused(lookup) from lookup
        return CancelOutcome(row, "failed", row.order_status, str(error))
    status = str(order.get("status") or "")
    ledger.update_order_status(batch_id, row.row_key, status)
    if status in FINAL_STATUSES:
        return CancelOutcome(row, "already", status)
    return CancelOutcome(row, "failed", status, str(error))


# -- reconcile --------------------------------------------------------------------------------
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
            raise _key_refused(error) from error
        raise BatchError(RECONCILE_FAILED, detail=str(error)) from error
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


RECONCILE_FAILED = Text(
    es="No se pudo consultar Conekta para conciliar ({detail}). No se concluyó nada; vuelve a intentar.",
    en="Could not query Conekta to reconcile ({detail}). Nothing was concluded; try again.",
)


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


# -- batches, show ---------------------------------------------------------------------------
def batch_totals(ledger: Ledger, batch_id: str) -> dict[str, int]:
    """Cents created per currency."""
    rows = created_rows(ledger, batch_id)
    return totals_by_currency((row.amount for row in rows), (row.currency for row in rows))


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
        raise BatchError(BAD_DATE, option=option, value=value) from exc


def day_start(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=report.MEXICO_CITY).timestamp()


REPORT_COLUMNS = [
    "batch_id", "input_name", "row", "email", "amount", "currency", "reason", "reference", "payout_order_id",
    "created_at", "order_status", "status_checked_at", "cancelled_at", "mode",
]


def payouts_report(ledger: Ledger, since: date, until: date | None, output: Path | None, cwd: Path | None = None) -> tuple[Path, pd.DataFrame]:
    """One XLSX with every payout created in [since, until) across batches, latest status included."""
    start = day_start(since)
    end = day_start(until) if until is not None else _now()
    until_label = until.isoformat() if until is not None else datetime.now(report.MEXICO_CITY).date().isoformat()
    if end <= start:
        raise BatchError(EMPTY_RANGE, since=since.isoformat(), until=until_label)
    found = ledger.payouts_between(start, end)
    frame = pd.DataFrame.from_records(
        [{
            "batch_id": p["batch_id"], "input_name": p["input_name"], "row": p["row_number"], "email": p["email"],
            "amount": p["amount"], "currency": p["currency"], "reason": p["reason"], "reference": p["reference"] or "",
            "payout_order_id": p["payout_order_id"] or "", "created_at": time_text(p["created_at"]),
            "order_status": p["order_status"] or "", "status_checked_at": time_text(p["status_checked_at"]),
            "cancelled_at": time_text(p["cancelled_at"]), "mode": mode_text(p["livemode"]),
        } for p in found],
        columns=REPORT_COLUMNS,
    )
    target = check_output(output) or (cwd or Path.cwd()) / f"payouts-{since.isoformat()}-{until_label}.xlsx"
    totals = frame.groupby(["currency", "order_status"], dropna=False)["amount"].agg(["count", "sum"]).reset_index() \
        if len(frame) else pd.DataFrame(columns=["currency", "order_status", "count", "sum"])
    totals = totals.rename(columns={"count": "payouts", "sum": "amount"})
    write_table(
        frame, target, sheet_name="Pagos",
        text_columns=("batch_id", "reference", "payout_order_id", "created_at", "status_checked_at", "cancelled_at",
                      "email", "reason", "input_name"),
        integer_columns=("row", "amount"), extra_sheets={"Totales": totals},
    )
    return target, frame
