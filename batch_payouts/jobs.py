"""The two jobs a user asks for, end to end: validate a file, and run it.

This is the library behind the CLI (and, later, the web app): it reads and
validates the file, opens the ledger and the client, runs the batch and writes
the results sheet.  It returns a ``JobResult``; it never prints and never exits.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from batch_payouts import __version__, clock, exit_codes, report, states
from batch_payouts.files.read import in_sheet, read_table
from batch_payouts.rules.template import mark_examples
from batch_payouts.rules.headers import HeaderMap, resolve_headers
from batch_payouts.files.leftovers import remove_leftovers
from batch_payouts.rules.api_version import require_phone
from batch_payouts.storage import DiskFull, naming_full_disk
from batch_payouts.rules.validation import Problem, validate
from batch_payouts.rules.amount_unit import DEFAULT as UNIT_DEFAULT, AmountFigures, UnitDecision, amount_figures, check_amounts, decide_unit
from batch_payouts.payout.conekta import (
    API_BASE_ENV,
    DEFAULT_API_BASE,
    DEFAULT_API_VERSION,
    ClientConfig,
    ConektaClient,
    ConektaError,
    api_key_from_env,
    check_api_base,
)
from batch_payouts.errors import BatchError, InputFileError
from batch_payouts.payout.guards import Plan, account_mode, available_balance, check_balance, plan_batch, set_aside_unfunded
from batch_payouts.i18n import Text, money
from batch_payouts.payout.identity import batch_identity, row_keys
from batch_payouts.payout.pipeline import KEY_MISMATCH, run_batch
from batch_payouts.payout.row_executor import (
    DEFAULT_EXPIRES_IN,
    DEFAULT_REPEAT_WINDOW,
    STOPPED,
    BatchSettings,
    RowExecutor,
    RowOutcome,
)
from batch_payouts.payout.throttle import RateLimiter
from batch_payouts.totals import format_totals, totals_by_currency

if TYPE_CHECKING:
    from batch_payouts.payout.audit import AuditLog

# The ledger (sqlite3) and the audit log are imported by ``run_job`` only: ``validate_job``
# touches neither, and `batch-payouts validate` should not pay for loading them.

SANDBOX_KEY = "key_test_sandbox_local"

OVER_MAX_TOTAL = Text(
    es="El lote suma {total} y el máximo permitido (--max-total) es {cap}: no se envió nada. "
    "Divide el archivo o sube el límite si el monto es correcto.",
    en="The batch adds up to {total} and the allowed maximum (--max-total) is {cap}: nothing was sent. "
    "Split the file, or raise the cap if the amount is right.",
)
NO_ROWS = Text(
    es="El archivo «{name}» no tiene filas de beneficiarios (solo encabezados o filas vacías): no hay nada que pagar.",
    en="The file '{name}' has no beneficiary rows (only headers or blank rows): there is nothing to pay.",
)
OUTPUT_SUFFIXES = (".xlsx", ".csv")
BAD_OUTPUT = Text(
    es="La hoja de resultados «{path}» debe ser un archivo .xlsx o .csv: elige otra ruta con --output.",
    en="The results sheet '{path}' must be an .xlsx or .csv file: choose another path with --output.",
)
OUTPUT_IS_INPUT = Text(
    es="La hoja de resultados no puede ser el mismo archivo de entrada «{path}»: elige otra ruta con --output.",
    en="The results sheet cannot be the input file '{path}' itself: choose another path with --output.",
)


@dataclass
class LoadedFile:
    """A read and validated input file."""

    path: Path
    sha256: str
    raw: pd.DataFrame
    headers: HeaderMap
    validated: pd.DataFrame
    name: str = ""  # what the user called the file (an upload is stored under a random name)
    problems: list[Problem] = field(default_factory=list)  # the failure table, rendered by whoever shows it
    unit: UnitDecision = field(default_factory=lambda: UnitDecision("cents", UNIT_DEFAULT))  # how amounts were read

    def __post_init__(self) -> None:
        self.name = self.name or self.path.name

    @property
    def amount_unit(self) -> str:
        return self.unit.unit

    def figures(self) -> list[AmountFigures]:
        """Rows, total, largest and median amount per currency of the valid rows: what makes a
        wrong unit (pesos read as cents, or the reverse) plain to see before anything is paid."""
        valid = self.validated.loc[self.validated["valid"]]
        return amount_figures(valid["amount"].tolist(), valid["currency"].tolist())


@dataclass
class RunOptions:
    input_path: Path
    output_path: Path | None = None
    input_name: str | None = None  # the name the ledger and audit record; default: the file's own
    sheet: str | None = None
    amount_unit: str = "cents"
    # False: --amount-unit was not given, so the file may decide the unit (rules/amount_unit.py) and a
    # run whose amounts look like the other unit is refused.  Callers that ask the person (the web) say True.
    amount_unit_explicit: bool = True
    lang: str = "es"
    allow_duplicate_rows: bool = False
    sandbox: bool = False
    api_base: str | None = None
    api_version: str = DEFAULT_API_VERSION
    ledger_path: Path | None = None
    batch_id: str | None = None
    retry_failed: bool = False
    allow_repeat: bool = False
    repeat_window: float = DEFAULT_REPEAT_WINDOW
    expires_in: float = DEFAULT_EXPIRES_IN  # seconds; a row's own expires_at wins
    workers: int = 8
    rate_limit: float | None = None
    live: bool = False
    max_total: int | None = None  # cents: the whole batch is refused above it
    # cents: rows above it are invalid; None: no cap.  The CLI and the web pass their default
    # (rules.columns.DEFAULT_MAX_AMOUNT_CENTS, $10,000.00) unless told otherwise.
    max_amount: int | None = None
    dry_run: bool = False
    skip_balance_check: bool = False
    read_timeout: float = 30.0
    max_retries: int = 4
    initial_backoff: float = 0.5


@dataclass
class JobResult:
    output_path: Path
    frame: pd.DataFrame
    summary: report.Summary
    loaded: LoadedFile
    batch_id: str | None = None
    ledger_path: Path | None = None
    livemode: bool | None = None
    stopped: BatchError | None = None
    interrupted: bool = False
    calls: list[dict] = field(default_factory=list)
    plan: Plan | None = None
    balance: dict[str, int] | None = None
    audit_path: Path | None = None

    @property
    def exit_code(self) -> int:
        """0 all created (or valid); 1 some rows not; 2 the batch stopped; 130 interrupted (``exit_codes``)."""
        if self.interrupted:
            return exit_codes.INTERRUPTED
        if self.stopped is not None:
            return self.stopped.exit_code
        good = {states.CREATED, states.VALID}
        if any(code == "reference_pending" for code in self.frame["error_code"]):
            return exit_codes.ATTENTION  # created, but the beneficiary has no reference to cash yet
        return exit_codes.OK if all(status in good for status in self.frame["status"]) else exit_codes.ATTENTION


def sandbox_state_path(ledger_path: Path) -> Path:
    """Where ``--sandbox`` keeps the emulator's customers and orders: beside the ledger that refers to them."""
    return ledger_path.with_name(ledger_path.stem + ".sandbox-state.sqlite")


def resolve_endpoint(
    stack: ExitStack, *, sandbox: bool, api_base: str | None, ledger_path: Path, environ: Mapping[str, str]
) -> tuple[str, str]:
    """(API key, API base) for a command: the built-in sandbox, or the key from the
    environment and ``--api-base`` / CONEKTA_API_BASE / the default, checked for https."""
    if sandbox:
        from batch_payouts.sandbox import Sandbox

        state = sandbox_state_path(ledger_path)
        state.parent.mkdir(parents=True, exist_ok=True)
        return SANDBOX_KEY, check_api_base(stack.enter_context(Sandbox(state_path=state)).url)
    api_key = api_key_from_env(environ)
    return api_key, check_api_base(api_base or environ.get(API_BASE_ENV) or DEFAULT_API_BASE)


def default_output_path(input_path: Path) -> Path:
    """``<stem>.results.xlsx`` beside the input, whatever the input's format: only an
    XLSX cell can be text, and a 16-digit reference or a phone written to CSV comes
    back from Excel rounded to 15 digits or without its leading zero."""
    return input_path.with_name(f"{input_path.stem}.results.xlsx")


def resolve_output(input_path: Path, output_path: Path | None) -> Path:
    """Where the results go, refused up front (exit 2) when it could never be written after payouts were sent."""
    output = Path(output_path) if output_path else default_output_path(input_path)
    if output.resolve() == input_path.resolve():
        raise InputFileError(OUTPUT_IS_INPUT, path=str(input_path))
    if output.is_dir() or output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputFileError(BAD_OUTPUT, path=str(output))
    return output


def load_file(path: Path, options: RunOptions) -> LoadedFile:
    path = Path(path)
    raw = read_table(path, sheet=options.sheet)
    try:  # a workbook's errors name the sheet they are about
        headers = resolve_headers(list(raw.columns))
        if raw.empty:
            raise InputFileError(NO_ROWS, name=options.input_name or path.name)
        unit = _decide_unit(path, raw, headers, options)
        validation = validate(
            raw, amount_unit=unit.unit, lang=options.lang, allow_duplicate_rows=options.allow_duplicate_rows,
            max_amount=options.max_amount,
        )
    except InputFileError as error:
        if "sheet" not in raw.attrs:  # a CSV: one table, nothing to name
            raise
        raise in_sheet(error, raw.attrs) from error
    validation = mark_examples(raw, validation, options.lang)  # the template's example row is never paid
    # The only rule that depends on how the batch is sent: a phone for API versions that require one.
    require_phone(validation, headers.header("phone"), options.api_version, options.lang, unit.unit)
    # Every amount that could be read, valid or not: a unit mix-up makes rows invalid (over --max-amount)
    check_amounts(unit, validation.frame["amount"].dropna().tolist())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return LoadedFile(
        path, digest, raw, headers, validation.frame, name=options.input_name or path.name,
        problems=validation.problems, unit=unit,
    )


def _decide_unit(path: Path, raw: pd.DataFrame, headers: HeaderMap, options: RunOptions) -> UnitDecision:
    """Pesos or cents for this file: --amount-unit when given, else what the file tells (the amount
    header, or a workbook's cell formats), else the default.  See rules/amount_unit.py."""
    header = headers.header("amount")
    formats = (0, 0)
    letter = raw.attrs.get("letters", {}).get(header)
    if "sheet" in raw.attrs and letter is not None:  # a workbook: its cells have number formats
        from batch_payouts.files.formats import column_formats

        found = column_formats(path, raw.attrs["sheet"], letter, int(raw.attrs.get("header_row", 1)) + 1)
        formats = (found.money, found.plain)
    return decide_unit(options.amount_unit, options.amount_unit_explicit, header, headers.amount_unit, formats)


def _write(
    frame: pd.DataFrame, output: Path, loaded: LoadedFile, options: RunOptions, facts: dict[str, str]
) -> report.Summary:
    """Write the results sheet (plus "Resumen" and "Errores" in XLSX) and return its summary.

    Phones and ids as the user named them stay text; amounts in cents become numbers.
    """
    canonical = loaded.headers.canonical
    text = tuple(canonical[c] for c in ("phone", "customer_id", "external_id") if c in canonical)
    integers = (canonical["amount"],) if loaded.amount_unit == "cents" and "amount" in canonical else ()
    summary = report.summarize(frame, loaded.validated)
    facts = {"input_name": loaded.name, "input_sha256": loaded.sha256, **facts,
             "finished_at": _now_text(), "tool": f"batch-payouts {__version__}"}
    # A CSV holds one table: the summary and error sheets exist only in XLSX.
    extra = None if output.suffix.lower() == ".csv" else report.extra_sheets(
        frame, loaded.validated, summary, facts, options.lang, loaded.problems
    )
    remove_leftovers(output)  # temp files of an earlier writer that was killed mid-sheet
    with naming_full_disk(output, "results"):
        report.write_results(frame, output, text_columns=text, integer_columns=integers, extra_sheets=extra)
    return summary


def _now_text() -> str:
    return clock.now_text()


def validate_job(options: RunOptions, *, loaded: LoadedFile | None = None) -> JobResult:
    """Read and validate only: no network, no ledger.  ``loaded``: the file already read
    and validated with these options (``load_file``), so it is not done twice."""
    started = _now_text()
    output = resolve_output(options.input_path, options.output_path)
    loaded = loaded or load_file(options.input_path, options)
    frame = report.validation_frame(loaded.raw, loaded.validated)
    summary = _write(frame, output, loaded, options, {"started_at": started})
    return JobResult(output, frame, summary, loaded)


def check_max_total(validated: pd.DataFrame, cap: int | None) -> None:
    """A batch over the cap is refused as a whole, before any request. The cap applies to each
    currency's total: pesos and dollars are never added together."""
    if cap is None:
        return
    valid = validated.loc[validated["valid"]]
    for currency, total in totals_by_currency(valid["amount"].tolist(), valid["currency"].tolist()).items():
        if total > cap:
            raise BatchError(OVER_MAX_TOTAL, total=format_totals({currency: total}), cap=money(cap))


def run_job(
    options: RunOptions,
    *,
    on_row: Callable[[RowOutcome], None] | None = None,
    on_start: Callable[[LoadedFile, int], None] | None = None,
    environ: dict[str, str] | None = None,
    stop: threading.Event | None = None,
    loaded: LoadedFile | None = None,
) -> JobResult:
    """Validate, then pay every valid row exactly once and write the results sheet.
    ``loaded``: the file already read and validated with these options (``load_file``)."""
    from batch_payouts.payout.audit import audit_path_for, open_audit
    from batch_payouts.payout.ledger import Ledger, default_ledger_path, key_fingerprint

    started = _now_text()
    env = os.environ if environ is None else environ
    output = resolve_output(options.input_path, options.output_path)
    loaded = loaded or load_file(options.input_path, options)
    if loaded.unit.refuses_run and not options.dry_run and loaded.validated["valid"].any():
        raise loaded.unit.refusal()  # with no valid row nothing would be sent anyway: the rows say why
    check_max_total(loaded.validated, options.max_total)
    ledger_path = Path(options.ledger_path) if options.ledger_path else default_ledger_path()
    finished: list[JobResult] = []
    with ExitStack() as stack:
        stack.push(_full_disk_after(finished))  # first in, so last out: sees the closing steps' errors
        api_key, api_base = resolve_endpoint(
            stack, sandbox=options.sandbox, api_base=options.api_base, ledger_path=ledger_path, environ=env
        )
        ledger = stack.enter_context(Ledger(ledger_path))
        key_fp = key_fingerprint(api_key)
        batch_id = options.batch_id or batch_identity(loaded.validated, key_fp)
        known = ledger.batch(batch_id)
        if known is not None and known.key_fingerprint != key_fp:
            raise BatchError(KEY_MISMATCH, batch_id=batch_id)
        if not options.dry_run:
            ledger.acquire_lock(batch_id)
        calls: list[dict] = []
        audit: AuditLog | None = None
        audit_path = audit_path_for(output)
        if not options.dry_run:
            with naming_full_disk(audit_path, "audit"):
                audit = open_audit(stack, ledger, audit_path, batch_id)
                audit.run_started(
                    input_name=loaded.name, input_sha256=loaded.sha256, batch_id=batch_id, api_base=api_base,
                    api_version=options.api_version, options=_audited_options(options),
                )

        def record_call(call: dict) -> None:
            calls.append(call)
            if audit is not None:
                with naming_full_disk(audit_path, "audit"):  # stops the batch (run_batch) with that message
                    audit.api_call(**call)

        client = stack.enter_context(
            ConektaClient(
                ClientConfig(
                    api_key=api_key, api_base=api_base, api_version=options.api_version, lang=options.lang,
                    read_timeout=options.read_timeout, max_retries=options.max_retries,
                    pool_size=max(4, options.workers * 2), initial_backoff=options.initial_backoff,
                ),
                throttle=RateLimiter(options.rate_limit),
                on_call=record_call,
            )
        )
        known_mode = ledger.known_mode(key_fp)
        keys = row_keys(loaded.validated)
        plan = plan_batch(loaded.validated, keys, ledger, batch_id, retry_failed=options.retry_failed)
        balance = None
        try:
            if plan.to_send and not options.skip_balance_check:
                balance = available_balance(client)
            if options.dry_run and known_mode is None and plan.to_send:
                known_mode = account_mode(client)
        except ConektaError as error:  # 401/403: the key itself was refused
            raise BatchError(STOPPED, status=error.http_status, detail=error.message or error.type) from error
        if balance is not None:
            if any(balance.get(currency, 0) <= 0 for currency in plan.totals):  # e.g. USD rows, no USD balance
                recorded, key_of = ledger.row_states(batch_id), keys.to_dict()
                plan = set_aside_unfunded(
                    loaded.validated, loaded.problems, plan, balance, header=loaded.headers.header("currency"),
                    fresh={n for n in plan.to_send if key_of[n] not in recorded}, lang=options.lang,
                )
            check_balance(plan, balance)
        if options.dry_run:
            frame = report.validation_frame(loaded.raw, loaded.validated)
            mode = report.mode_text(known_mode)
            summary = _write(frame, output, loaded, options, {"batch_id": batch_id, "mode": mode, "started_at": started})
            return JobResult(
                output, frame, summary, loaded, batch_id=batch_id, livemode=known_mode,
                ledger_path=ledger_path, calls=calls, plan=plan, balance=balance,
            )
        ledger.record_batch_start(
            batch_id=batch_id, input_name=loaded.name, input_sha256=loaded.sha256, key_fp=key_fp,
            api_base=api_base, rows_total=len(loaded.raw),
        )
        settings = BatchSettings(
            batch_id=batch_id, key_fp=key_fp, lang=options.lang, retry_failed=options.retry_failed,
            allow_repeat=options.allow_repeat, repeat_window=options.repeat_window, workers=options.workers,
            live=options.live, expires_in=options.expires_in,
        )
        executor = RowExecutor(client, ledger, settings)
        executor.livemode = known_mode  # learnt by an earlier run with this key, if any
        if on_start is not None:
            on_start(loaded, int(loaded.validated["valid"].sum()))
        batch = run_batch(loaded.validated, keys, executor, on_row=on_row, stop=stop)
        stopped = batch.stopped
        livemode = batch.livemode
        if livemode is None:  # nothing was sent this time: what an earlier run learned
            livemode = executor.livemode
        if livemode is not None:  # the ledger states the mode the results sheet states, for `batches`/`show`
            stopped = stopped or _full_disk_of(lambda: ledger.set_livemode(batch_id, livemode))
        frame = report.results_frame(loaded.raw, loaded.validated, batch.outcomes, options.lang)
        mode = report.mode_text(livemode)
        summary = _write(frame, output, loaded, options, {"batch_id": batch_id, "mode": mode, "started_at": started})
        stopped = stopped or _full_disk_of(lambda: ledger.set_output(batch_id, output, options.api_version))
        result = JobResult(
            output, frame, summary, loaded, batch_id=batch_id, ledger_path=ledger_path,
            livemode=livemode, stopped=stopped, interrupted=batch.interrupted, calls=calls,
            plan=plan, balance=balance, audit_path=audit_path,
        )
        result.stopped = result.stopped or _full_disk_of(lambda: _finish_audit(audit, audit_path, result, mode))
        finished.append(result)
    return result


def _full_disk_after(finished: list[JobResult]) -> Callable[..., bool]:
    """An exit handler: once the results are out, a full disk while closing (the audit head or the
    run lock written to the ledger) ends the run with that message instead of hiding the result."""

    def handle(kind, error, traceback) -> bool:
        if finished and isinstance(error, DiskFull):
            finished[0].stopped = finished[0].stopped or error
            return True
        return False

    return handle


def _full_disk_of(step: Callable[[], object]) -> DiskFull | None:
    """Run a bookkeeping step that follows the batch; a full disk is returned, not raised, so the
    results sheet and the summary still come out and the run ends with the message (exit 2)."""
    try:
        step()
    except DiskFull as full:
        return full
    return None


def _finish_audit(audit: AuditLog, path: Path, result: JobResult, mode: str) -> None:
    with naming_full_disk(path, "audit"):
        audit.run_finished(
            mode=mode or None, counts=result.summary.counts, totals=result.summary.amounts,
            exit_code=result.exit_code, results_path=str(result.output_path),
        )


def _audited_options(options: RunOptions) -> dict:
    """The choices that shaped the run, for the audit record (paths as text; no key is ever among them)."""
    chosen = {name: getattr(options, name) for name in options.__dataclass_fields__}
    return {name: str(value) if isinstance(value, Path) else value for name, value in chosen.items()}
