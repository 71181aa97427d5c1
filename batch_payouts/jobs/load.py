"""Read and validate a file: the job behind `batch-payouts validate` and the web's review.

It reaches only files/ (reading and writing sheets) and rules/ (the rules of a row),
so validating never loads the HTTP client, the ledger or the audit log
(tests/test_import_cost.py holds it to that).  ``jobs.run`` builds on it to pay.
It never prints and never exits: it returns a ``JobResult`` or raises ``BatchError``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from batch_payouts import __version__, clock, exit_codes, report, states
from batch_payouts.errors import BatchError, InputFileError
from batch_payouts.files.leftovers import remove_leftovers
from batch_payouts.files.read import in_sheet, read_table
from batch_payouts.i18n import catalogue
from batch_payouts.rules.amount_unit import DEFAULT as UNIT_DEFAULT, AmountFigures, UnitDecision, amount_figures, check_amounts, decide_unit
from batch_payouts.rules.api_version import require_phone
from batch_payouts.rules.columns import DEFAULT_API_VERSION, DEFAULT_EXPIRES_IN, DEFAULT_REPEAT_WINDOW
from batch_payouts.rules.headers import HeaderMap, resolve_headers
from batch_payouts.rules.template import mark_examples
from batch_payouts.rules.validation import Problem, validate
from batch_payouts.storage import naming_full_disk

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

if TYPE_CHECKING:  # what a run adds to its result; annotations only
    from batch_payouts.payout.guards import Plan

OUTPUT_SUFFIXES = (".xlsx", ".csv")


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
        valid = self.validated["valid"].to_numpy(dtype=bool)  # two columns taken, not the whole frame copied
        return amount_figures(self.validated["amount"].to_numpy(dtype="int64", na_value=0)[valid],
                              self.validated["currency"].to_numpy(dtype=object)[valid])


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
    ledger_path: Path | str | None = None  # a SQLite file or a PostgreSQL URL (ledger_address)
    wait_lock: float = 0.0  # seconds to wait for another run of the same batch to finish
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
    operator: str | None = None  # who starts the run (the web's signed-in user); None: the OS user


@dataclass
class JobResult:
    output_path: Path
    frame: pd.DataFrame
    summary: report.Summary
    loaded: LoadedFile
    batch_id: str | None = None
    ledger_path: Path | str | None = None  # a file, or the URL with its password masked
    livemode: bool | None = None
    stopped: BatchError | None = None
    interrupted: bool = False
    plan: Plan | None = None
    balance: dict[str, int] | None = None
    audit_path: Path | None = None
    pin: Any = None  # team.approvals.Pin: what an approval of this batch is pinned to (issue 15)

    @property
    def exit_code(self) -> int:
        """0 all created (or valid); 1 some rows not; 2 the batch stopped; 130 interrupted (``exit_codes``)."""
        if self.interrupted:
            return exit_codes.INTERRUPTED
        if self.stopped is not None:
            return self.stopped.exit_code
        # Whole-column tests: asked twice per run (audit, exit), ~0.15 s each cell by cell at 100k rows.
        if bool((self.frame["error_code"] == "reference_pending").any()):
            return exit_codes.ATTENTION  # created, but the beneficiary has no reference to cash yet
        good = [states.CREATED, states.VALID]
        return exit_codes.OK if bool(self.frame["status"].isin(good).all()) else exit_codes.ATTENTION


def default_output_path(input_path: Path) -> Path:
    """``<stem>.results.xlsx`` beside the input, whatever the input's format: only an
    XLSX cell can be text, and a 16-digit reference or a phone written to CSV comes
    back from Excel rounded to 15 digits or without its leading zero."""
    return input_path.with_name(f"{input_path.stem}.results.xlsx")


def resolve_output(input_path: Path, output_path: Path | None) -> Path:
    """Where the results go, refused up front (exit 2) when it could never be written after payouts were sent."""
    output = Path(output_path) if output_path else default_output_path(input_path)
    if output.resolve() == input_path.resolve():
        raise InputFileError(TEXT.OUTPUT_IS_INPUT, path=str(input_path))
    if output.is_dir() or output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputFileError(TEXT.BAD_OUTPUT, path=str(output))
    return output


def load_file(path: Path, options: RunOptions) -> LoadedFile:
    path = Path(path)
    raw = read_table(path, sheet=options.sheet)
    try:  # a workbook's errors name the sheet they are about
        headers = resolve_headers(list(raw.columns))
        if raw.empty:
            raise InputFileError(TEXT.NO_ROWS, name=options.input_name or path.name)
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
    with open(path, "rb") as source:  # in blocks: the whole file beside its table would double a 1M-row peak
        digest = hashlib.file_digest(source, "sha256").hexdigest()
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


def write_sheet(
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
             "finished_at": clock.now_text(), "tool": f"batch-payouts {__version__}"}
    # A CSV holds one table: the summary and error sheets exist only in XLSX.
    extra = None if output.suffix.lower() == ".csv" else report.extra_sheets(
        frame, loaded.validated, summary, facts, options.lang, loaded.problems
    )
    remove_leftovers(output)  # temp files of an earlier writer that was killed mid-sheet
    with naming_full_disk(output, "results"):
        report.write_results(frame, output, text_columns=text, integer_columns=integers, extra_sheets=extra)
    return summary


def validate_job(options: RunOptions, *, loaded: LoadedFile | None = None) -> JobResult:
    """Read and validate only: no network, no ledger.  ``loaded``: the file already read
    and validated with these options (``load_file``), so it is not done twice."""
    started = clock.now_text()
    output = resolve_output(options.input_path, options.output_path)
    loaded = loaded or load_file(options.input_path, options)
    frame = report.validation_frame(loaded.raw, loaded.validated)
    summary = write_sheet(frame, output, loaded, options, {"started_at": started})
    return JobResult(output, frame, summary, loaded)
