"""Where the CLI's human messages go, and the progress of a run.

Split from ``main`` because every command writes through it (``_fail`` is how each
one ends with a message and an exit code instead of a traceback) while the
commands themselves are only options and calls.  Plain text on stderr, or JSON
lines with ``--log-json`` for cron and log shippers; plain progress lines carry
the time, as a JSON line carries ``ts``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import click

from batch_payouts import clock
from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

if TYPE_CHECKING:
    from batch_payouts.payout.row_executor import RowOutcome
    from batch_payouts.rules.validation import Problem

PROBLEMS_SHOWN = 20


class Console:
    """Where human messages go: stderr as text, or as JSON lines with --log-json (for cron and log shippers)."""

    def __init__(self, lang: str = "es", json_lines: bool = False) -> None:
        self.lang = lang
        self.json_lines = json_lines

    def log(self, event: str, message: str, level: str = "info", stamped: bool = False, **fields: object) -> None:
        """``stamped``: a plain line starts with the time (its zone's offset included), as a JSON line
        always carries ``ts`` -- a cron log of progress lines must say when each was written."""
        if self.json_lines:
            record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "level": level,
                      "event": event, "message": message, **fields}
            click.echo(json.dumps(record, ensure_ascii=False, default=str), err=True)
        else:
            click.echo(f"{clock.now_text()} {message}" if stamped else message, err=True)

    def problems(self, problems: list[Problem]) -> None:
        """One line per problem of the file ("Fila 7, columna «correo»: …"), rendered here from the failure table."""
        shown = problems if self.json_lines else problems[:PROBLEMS_SHOWN]
        for problem in shown:
            self.log("invalid_row", problem.line(self.lang), level="warning",
                     row=problem.row, column=problem.column, code=problem.code)
        if len(problems) > len(shown):
            self.log("invalid_rows_more", TEXT.MORE_PROBLEMS.format(self.lang, count=len(problems) - len(shown)))

    def csv_output(self, output_path: Path | None) -> None:
        """Warn before the work starts when the results sheet was asked for as CSV (it keeps no text cells)."""
        if output_path is not None and Path(output_path).suffix.lower() == ".csv":
            self.log("csv_output", TEXT.CSV_OUTPUT.format(self.lang, path=output_path), level="warning")

    def fail(self, error: BatchError) -> None:
        self.log("batch_error", error.message(self.lang), level="error", exit_code=error.exit_code)
        sys.exit(error.exit_code)


def _fail(error: BatchError, lang: str) -> None:
    Console(lang).fail(error)


class Progress:
    """A bar on a terminal, a plain line every 10% otherwise (cron logs stay readable)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.lang = console.lang
        self.total = 0
        self.done = 0
        self.bar = None
        self.tty = sys.stderr.isatty() and not console.json_lines

    def start(self, loaded, total: int) -> None:
        """Show the file's problems first: they are known before anything is sent."""
        self.console.problems(loaded.problems)
        self.total = total
        if self.tty and total:
            self.bar = click.progressbar(length=total, label=TEXT.PROGRESS.format(self.lang, count=total), file=sys.stderr)
            self.bar.__enter__()

    def advance(self, outcome: RowOutcome) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.total and (self.done == self.total or self.done % max(1, self.total // 10) == 0):
            self.console.log("progress", TEXT.PROGRESS_LINE.format(self.lang, done=self.done, count=self.total),
                             stamped=True, done=self.done, total=self.total)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def report_crash(error: BaseException) -> int:
    """A bug ends with a plain message, never a traceback on the screen: the traceback goes to a
    file whose path the message names (for a bug report), and the exit code is its own
    (``exit_codes.CRASHED``), so `make demo` and a cron alert never mistake it for "some rows
    need a look" (1).  The API key is never in a traceback: no frame's locals are written."""
    from batch_payouts import exit_codes

    handle, name = tempfile.mkstemp(prefix="batch-payouts-crash-", suffix=".txt")
    with os.fdopen(handle, "w", encoding="utf-8") as details:
        details.write("".join(traceback.format_exception(type(error), error, error.__traceback__)))
    lang = os.environ.get("BATCH_PAYOUTS_LANG", "es")
    click.echo(TEXT.CRASHED.format(lang if lang in ("es", "en") else "es", kind=type(error).__name__, details=name), err=True)
    return exit_codes.CRASHED
