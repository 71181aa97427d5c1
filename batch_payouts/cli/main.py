"""The command line: parse options, call ``jobs``, print, and exit with a documented code.

Exit codes: ``exit_codes`` (0 done; 1 look at the results; 2 could not run; 75
try later, another run holds the batch; 130 interrupted).
"""

from __future__ import annotations

import atexit
import gc
import importlib
import json
import os
import re
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import click

# numpy's OpenBLAS starts a thread per core that spins after its calls; nothing here needs BLAS
# (pandas' table work does not), and those threads cost ~0.1 s of CPU per command (issue 17).
# Set before pandas is first imported; a value the user chose wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from batch_payouts import __version__, clock, exit_codes, ledger_address
from batch_payouts.cli.config import config_option
from batch_payouts.cli.console import Console, Progress, _fail
from batch_payouts.contracts import versioned
from batch_payouts.errors import BatchError
from batch_payouts.i18n import LANGUAGES, catalogue
from batch_payouts.ledger_address import LedgerParam
from batch_payouts.rules.columns import DEFAULT_MAX_AMOUNT_PESOS

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

# ``jobs`` and ``report`` (pandas, pandera) are imported by the commands that need them, so
# `--help`, `template`, `audit verify`, `hash-password`... do not load them, and no command
# loads what only another one needs (the HTTP client, the ledger, the web app, the sandbox).


class PesosType(click.ParamType):
    """An amount in pesos as finance writes it ("250000", "$250,000.00"), converted exactly to cents."""

    name = "pesos"

    def convert(self, value, param, ctx):
        from batch_payouts.totals import cents_of_pesos

        cents = cents_of_pesos(value)
        if cents is None:
            self.fail(f"{value!r}: escribe un monto en pesos, por ejemplo 250000 o 1,500.50", param, ctx)
        return cents


lang_option = click.option(
    "--lang", type=click.Choice(LANGUAGES), default=lambda: os.environ.get("BATCH_PAYOUTS_LANG", "es"),
    show_default="es", help="Language of messages and of the error_message column.",
)


def _use_timezone(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Every time the command shows (sheets, listings, progress) is written in this zone, with its offset."""
    try:
        clock.use(value)
    except BatchError as error:
        lang = ctx.params.get("lang") or os.environ.get("BATCH_PAYOUTS_LANG", "es")
        raise click.BadParameter(error.message(lang if lang in LANGUAGES else "es"), ctx, param) from error
    ctx.call_on_close(lambda: clock.use(None))  # the next command in this process starts from the default
    return value


timezone_option = click.option(
    "--timezone", default=clock.DEFAULT_TIMEZONE, show_default=True, expose_value=False, callback=_use_timezone,
    help="Time zone of every time shown, as an IANA name (e.g. America/Tijuana, UTC); also `timezone` in the "
         "config file. Times always carry their offset (-06:00).",
)
input_options = [
    click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path)),
    click.option("--output", "output_path", type=click.Path(path_type=Path),
                 help="Results sheet path (default: <input>.results.xlsx beside the input, also for CSV input; .csv only if asked, with a warning)."),
    click.option("--sheet", help="XLSX sheet to read (default: the first visible sheet with data)."),
    click.option("--amount-unit", type=click.Choice(["cents", "pesos"]), default="cents", show_default=True,
                 help="How to read the amount column: integer cents (3000 = $30.00) or pesos ($30, 1,500.00). "
                      "Without it the file decides where it tells (a header such as «monto (pesos)», or XLSX "
                      "cells formatted as money), and `run` refuses amounts that look like the other unit."),
    click.option("--allow-duplicate-rows/--no-allow-duplicate-rows",
                 help="Accept rows identical in email, amount, currency, reason and metadata."),
    lang_option,
    timezone_option,
    click.option("--max-amount", type=PesosType(), default=str(DEFAULT_MAX_AMOUNT_PESOS), show_default=True,
                 help="Rows above this many pesos are invalid (amount_over_limit); raise it for larger rows, "
                      "e.g. --max-amount 50000 (or max-amount in the config file)."),
    click.option("--log-json/--no-log-json", help="Write log lines to stderr as JSON (one object per line)."),
]


def with_input_options(command):
    for option in reversed([*input_options, config_option]):
        command = option(command)
    return command


class LazyGroup(click.Group):
    """A group whose commands in ``lazy_commands`` (name -> module) are imported when first asked
    for, by name or by a listing such as ``--help``: each such module registers its commands on
    this group when imported.  So `validate` and `run` do not load the after-run and web commands
    (the click documentation's "lazily loading subcommands" pattern)."""

    def __init__(self, *args, lazy_commands: dict[str, str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, KeyboardInterrupt):
            raise
        except Exception as error:  # a bug: a message and its own exit code, not a traceback
            from batch_payouts.cli.console import report_crash

            ctx.exit(report_crash(error))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            importlib.import_module(self.lazy_commands[cmd_name])
        return super().get_command(ctx, cmd_name)


_LAZY_COMMANDS = {
    **dict.fromkeys(("status", "cancel", "reconcile"), "batch_payouts.cli.ops"),
    **dict.fromkeys(("batches", "show", "report"), "batch_payouts.cli.history"),
    **dict.fromkeys(("web", "hash-password"), "batch_payouts.cli.web"),
    "schemas": "batch_payouts.cli.schemas",
    "sandbox": "batch_payouts.cli.sandbox",
    **dict.fromkeys(("users", "policy", "approvals"), "batch_payouts.cli.team"),
    "ledger": "batch_payouts.cli.ledger",
    **dict.fromkeys(("events", "reissue", "notify"), "batch_payouts.cli.after"),
}


@click.group(cls=LazyGroup, lazy_commands=_LAZY_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batch-payouts")
def main() -> None:
    """Pay a spreadsheet of beneficiaries through Conekta cash withdrawals (OXXO), exactly once.

    The API key is read only from the CONEKTA_API_KEY environment variable.
    """


def parse_window(value: str, lang: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([hms]?)\s*", value or "")
    if not match:
        raise BatchError(TEXT.BAD_WINDOW, value=value)
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"h": 3600, "m": 60, "s": 1}[unit]


def parse_expires_in(value: str) -> float:
    """``--expires-in``: "48h", "2d", or a bare number of hours -> seconds (more than zero)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([hd]?)\s*", value or "", flags=re.IGNORECASE)
    seconds = float(match.group(1)) * (86400 if match.group(2).lower() == "d" else 3600) if match else 0
    if seconds <= 0:
        raise BatchError(TEXT.BAD_EXPIRES_IN, value=value)
    return seconds


def _quick_exit_gc() -> None:
    """Skip the cycle collector's passes over everything already loaded when the interpreter exits.

    Those passes walk every object pandas, pandera and pydantic created (~0.08 s of a 1.7 s
    `validate`); by then the results sheet is written (``os.replace``d) and closed, so nothing is left
    for them to finish.  ``gc.freeze`` at exit (an ``atexit`` hook, so an in-process caller such as
    the test runner is unaffected until its own end) leaves reference counting, atexit hooks and the
    flushing of stdout/stderr exactly as they were.  Registered once however often it is called.
    """
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


@contextmanager
def _heavy_imports():
    """Import pandas, pandera and pydantic (about a million objects) with the cycle collector paused,
    then freeze what they made (``gc.freeze``) until the command ends.

    Otherwise the collector walks the young modules over and over while they load and once more
    after (~0.05 s of a 1.2 s `validate` of 100,000 rows), and a module lives until exit anyway.
    The command's end unfreezes them (``call_on_close``), so an in-process caller such as the test
    runner gets its collector back as it was.  A caller that paused or froze the collector itself
    is left alone.
    """
    if not gc.isenabled() or gc.get_freeze_count():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
        click.get_current_context().call_on_close(gc.unfreeze)


@main.command()
@with_input_options
@click.option("--json/--no-json", "as_json",
              help="Print a machine-readable summary on stdout (the human summary goes to stderr).")
def validate(input_path, output_path, sheet, amount_unit, allow_duplicate_rows, lang, max_amount, log_json,
             as_json) -> None:
    """Check a file without sending anything; writes the sheet with status valid/invalid.

    Example: batch-payouts validate pagos.xlsx
    """
    with _heavy_imports():
        from batch_payouts.jobs.load import RunOptions, validate_job
        from batch_payouts.report import format_summary, result_json

    console = Console(lang, log_json)
    console.csv_output(output_path)
    options = RunOptions(input_path=input_path, output_path=output_path, sheet=sheet, amount_unit=amount_unit,
                         amount_unit_explicit=_given("amount_unit"), lang=lang,
                         allow_duplicate_rows=allow_duplicate_rows, max_amount=max_amount)
    try:
        result = validate_job(options)
    except BatchError as error:
        _print_error_json(error, lang, as_json)
        console.fail(error)
    console.problems(result.loaded.problems)
    click.echo(amount_overview(result.loaded, lang), err=as_json)
    click.echo(format_summary(result.summary, lang=lang, output=result.output_path), err=as_json)
    if as_json:
        click.echo(json.dumps(versioned(result_json(result)), ensure_ascii=False))
    _quick_exit_gc()
    sys.exit(result.exit_code)


@main.command()
@with_input_options
@click.option("--sandbox/--no-sandbox", help="Run against the built-in Conekta emulator (no key needed).")
@click.option("--api-base", help="Conekta API address (also CONEKTA_API_BASE). Default https://api.conekta.io.")
@click.option("--api-version", default="2.0.0", show_default=True, help="Conekta API version for the Accept header.")
@click.option("--ledger", "ledger_path", type=LedgerParam(),
              help="Ledger: a file, or postgresql://user@host:port/db shared by a team "
                   "(also BATCH_PAYOUTS_LEDGER; default: a file in the user data folder).")
@click.option("--wait-lock", type=click.FloatRange(min=0), default=0, metavar="SECONDS",
              help="If another run holds this batch, wait up to this long for it to finish (default: refuse at once, exit 75).")
@click.option("--batch-id", help="Name this batch (default: SHA-256 of the normalised rows and the key).")
@click.option("--retry-failed/--no-retry-failed", help="Send again rows that Conekta refused in an earlier run.")
@click.option("--allow-repeat/--no-allow-repeat",
              help="Pay even if an identical payout was created in another batch within the repeat window.")
@click.option("--repeat-window", default="24h", show_default=True,
              help="How far back an identical payout in another batch counts as a repeat (e.g. 24h, 90m).")
@click.option("--expires-in", default="48h", show_default=True,
              help="How long each payout order can be withdrawn (48, 36h, 2d); the file's expires_at column wins.")
@click.option("--workers", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Rows sent at the same time (output order is always the input order).")
@click.option("--rate-limit", type=click.FloatRange(min=0.1), default=None,
              help="At most this many requests per second, shared by all workers (default: no limit).")
@click.option("--max-total", type=PesosType(), default=None,
              help="Refuse the whole batch, before any request, if its valid rows in any one currency add up to more "
                   "(e.g. 250000; pesos and dollars are never added together).")
@click.option("--live/--no-live", help="Allow a LIVE key (real money); without it a live key stops the run.")
@click.option("--dry-run/--no-dry-run",
              help="Validate, check balance and plan (rows to send, totals) without creating anything.")
@click.option("--skip-balance-check/--no-skip-balance-check", help="Do not stop when the Conekta balance is below the batch total.")
@click.option("--json/--no-json", "as_json",
              help="Print a machine-readable summary on stdout (the human summary goes to stderr).")
@click.option("--notify/--no-notify",
              help="Afterwards, email the summary as `notify` does (SMTP settings: the config file's [notify] table); "
                   "a summary that cannot be sent is said on stderr and does not change the exit code.")
def run(input_path, output_path, sheet, amount_unit, allow_duplicate_rows, lang, max_amount, log_json, sandbox, api_base, api_version,
        ledger_path, wait_lock, batch_id, retry_failed, allow_repeat, repeat_window, expires_in, workers, rate_limit, max_total, live,
        dry_run, skip_balance_check, as_json, notify) -> None:
    """Create a customer and a cash payout order for every valid row, exactly once.

    Example: CONEKTA_API_KEY=key_... batch-payouts run pagos.xlsx
    """
    with _heavy_imports():
        from batch_payouts.jobs.load import RunOptions
        from batch_payouts.jobs.run import run_job
        from batch_payouts.report import format_plan, format_summary, result_json

    console = Console(lang, log_json)
    console.csv_output(output_path)
    try:
        options = RunOptions(
            input_path=input_path, output_path=output_path, sheet=sheet, amount_unit=amount_unit, lang=lang,
            amount_unit_explicit=_given("amount_unit"),
            allow_duplicate_rows=allow_duplicate_rows, sandbox=sandbox, api_base=api_base, api_version=api_version,
            ledger_path=ledger_path, wait_lock=wait_lock, batch_id=batch_id, retry_failed=retry_failed, allow_repeat=allow_repeat,
            repeat_window=parse_window(repeat_window, lang), expires_in=parse_expires_in(expires_in),
            workers=workers, rate_limit=rate_limit,
            live=live, dry_run=dry_run, skip_balance_check=skip_balance_check, max_total=max_total,
            max_amount=max_amount,
        )
        progress = Progress(console)
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            result = run_job(options, on_row=progress.advance, on_start=progress.start)
        finally:
            signal.signal(signal.SIGTERM, previous)
            progress.finish()
    except BatchError as error:
        _print_error_json(error, lang, as_json)
        console.fail(error)
    except KeyboardInterrupt:
        console.log("interrupted", TEXT.INTERRUPTED.format(lang), level="warning")
        sys.exit(exit_codes.INTERRUPTED)
    if result.stopped is not None:
        console.log("batch_stopped", result.stopped.message(lang), level="error")
    if result.interrupted:
        console.log("interrupted", TEXT.INTERRUPTED.format(lang), level="warning")
    summary = format_summary(result.summary, lang=lang, output=result.output_path, batch_id=result.batch_id,
                             ledger=result.ledger_path, livemode=result.livemode, audit=result.audit_path,
                             not_sent_hint=result.stopped.not_sent_hint if result.stopped is not None else None)
    if dry_run:
        console.problems(result.loaded.problems)
        summary = amount_overview(result.loaded, lang) + "\n" + format_plan(result.plan, result.balance, lang) + "\n" + summary
    if console.json_lines:
        console.log("summary", summary, **result_json(result, dry_run=dry_run))
    else:
        click.echo(summary, err=as_json)
    if notify and not dry_run:
        from batch_payouts.cli.after import notify_after

        notify_after(ledger_path, lang)  # the address asked for, never the masked one printed
    if as_json:
        click.echo(json.dumps(versioned(result_json(result, dry_run=dry_run)), ensure_ascii=False))
    _quick_exit_gc()  # the sheet, the ledger and the audit log are closed: nothing left for those passes
    sys.exit(0 if dry_run and result.exit_code == 0 else result.exit_code)


def _given(name: str) -> bool:
    """Was option ``name`` chosen (command line, environment or config file), not left at its default?"""
    source = click.get_current_context().get_parameter_source(name)
    return source is not None and source is not click.core.ParameterSource.DEFAULT


def amount_overview(loaded, lang: str) -> str:
    """Figures per currency and the notes about the amount unit, for validate and run --dry-run."""
    from batch_payouts.rules.amount_unit import overview

    return overview(loaded.unit, loaded.figures(), lang)


def _print_error_json(error: BatchError, lang: str, as_json: bool) -> None:
    """With --json, a batch that cannot run still ends stdout with a document (schemas/run.schema.json)."""
    if as_json:
        click.echo(json.dumps(versioned({"exit_code": error.exit_code, "error": error.message(lang)}), ensure_ascii=False))


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@main.command()
@click.argument("output", type=click.Path(path_type=Path))
@lang_option
def template(output, lang) -> None:
    """Write a blank input sheet with the headers, an example row and instructions.

    Example: batch-payouts template plantilla.xlsx
    """
    from batch_payouts.rules.template import write_template

    try:
        write_template(output, lang=lang)
    except BatchError as error:
        _fail(error, lang)
    click.echo(str(output))


@main.group()
def audit() -> None:
    """The audit log written beside every results sheet (hash-chained JSON lines)."""


@audit.command("verify")
@click.argument("audit_file", type=click.Path(path_type=Path))
@click.option("--ledger", "ledger_path", type=LedgerParam(),
              help="Ledger holding the chain's last hash (also BATCH_PAYOUTS_LEDGER), to detect a cut-off tail.")
@lang_option
def audit_verify(audit_file, ledger_path, lang) -> None:
    """Check that no line of an audit log was edited, removed, inserted or reordered; exit 1 if one was.

    Example: batch-payouts audit verify pagos.results.audit.jsonl
    """
    from batch_payouts.payout.audit_verify import describe, verify
    from batch_payouts.payout.ledger import Ledger, default_ledger_path

    console = Console(lang)
    if not audit_file.is_file():
        console.fail(BatchError(TEXT.AUDIT_MISSING, path=str(audit_file)))
    head: dict = {}
    ledger_file = ledger_path or default_ledger_path()
    try:
        if ledger_address.exists(ledger_file):
            with Ledger(ledger_file) as ledger:
                head = ledger.audit_head(audit_file) or {}
        result = verify(audit_file, expected_head=head.get("last_hash"), expected_lines=head.get("lines"))
    except BatchError as error:
        console.fail(error)
    for line in describe(result, lang):
        click.echo(line)
    sys.exit(0 if result.ok else 1)

