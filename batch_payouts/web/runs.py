"""Runs started from the browser: in a background thread, with progress anyone can ask for.

A run is ``jobs.run_job`` -- the same ledger, lock, guards and exactly-once
rules as ``batch-payouts run`` -- on a thread of the server, so closing the
browser does not stop it and reloading the page finds it again by batch id.
The progress counters live here while the server runs; after a restart the
ledger still tells what was created, and uploading the file again resumes it.  A run
another web instance (or host) started on a shared ledger is followed from the ledger
(``ledger_progress`` with ``lock_probe``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue
from batch_payouts.jobs.load import JobResult, LoadedFile, RunOptions
from batch_payouts.jobs.run import run_job
from batch_payouts.payout.records import LedgerRow
from batch_payouts.payout.row_executor import RowOutcome
from batch_payouts.states import IN_FLIGHT, PENDING, Counts, count_rows
from batch_payouts.web.wording import web_message

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

log = logging.getLogger("batch_payouts.web")


@dataclass
class RunProgress:
    """What the progress bar shows; changed only by the run's own thread, under ``lock``."""

    batch_id: str
    upload_id: str
    user: str | None
    total: int = 0  # valid rows, known once the file is read again
    done: int = 0
    counts: Counter = field(default_factory=Counter)
    state: str = "starting"  # starting | running | finished | stopped | interrupted | error
    message: str | None = None
    exit_code: int | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def running(self) -> bool:
        return self.state in ("starting", "running")

    def as_json(self) -> dict[str, Any]:
        with self.lock:
            counts = count_rows(self.counts)
            return {
                "batch_id": self.batch_id, "state": self.state, "running": self.running,
                "total": self.total, "done": self.done, **_counters(counts, max(0, self.total - self.done)),
                "message": self.message, "exit_code": self.exit_code,
                "started_at": self.started_at, "finished_at": self.finished_at,
            }


def _counters(counts: Counts, pending: int) -> dict[str, int]:
    """The progress counters, by the one rule of ``states``: a row that may exist at Conekta is
    ``unconfirmed``, never ``failed``; ``pending`` is what is still to be sent."""
    return {"created": counts.created, "unconfirmed": counts.unconfirmed, "failed": counts.failed,
            "duplicate": counts.duplicate, "pending": pending}


def ledger_progress(batch_id: str, rows: list[LedgerRow], *, running_elsewhere: bool = False,
                    planned: int = 0) -> dict[str, Any]:
    """The same counters as ``RunProgress.as_json`` for a batch this server is not running, from its
    rows in the ledger: finished (before a restart, or run from the CLI), or ``running_elsewhere`` --
    another web instance or host holds its lock right now (``lock_probe``).  A run writes a row to the
    ledger when it reaches it, so while it runs the total is ``planned`` (the valid rows of its review,
    when known) and a row still pending or in flight is not counted as done: in flight is being sent,
    not unconfirmed."""
    if not running_elsewhere:
        counts = count_rows(row.state for row in rows)
        return {
            "batch_id": batch_id, "state": "idle", "running": False, "total": len(rows),
            "done": len(rows) - counts.pending, **_counters(counts, counts.pending),
            "message": None, "exit_code": None, "started_at": None, "finished_at": None,
        }
    settled = [row.state for row in rows if row.state not in (PENDING, IN_FLIGHT)]
    total = max(planned, len(rows))
    return {
        "batch_id": batch_id, "state": "running", "running": True, "total": total, "done": len(settled),
        **_counters(count_rows(settled), total - len(settled)),
        "message": None, "exit_code": None, "started_at": None, "finished_at": None,
    }


class RunManager:
    """At most one run per batch in this server (the ledger lock cannot tell two threads
    of one process apart); runs of different batches go side by side."""

    def __init__(self, lang: str, data_dir: Path | None = None) -> None:
        self.lang = lang
        self.data_dir = data_dir  # where the server keeps uploads and results: never named on a page
        self._runs: dict[str, RunProgress] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def progress(self, batch_id: str) -> RunProgress | None:
        with self._lock:
            return self._runs.get(batch_id)

    def start(
        self, batch_id: str, upload_id: str, user: str | None, options: RunOptions, environ: dict[str, str],
        on_finish: Callable[[JobResult], None] | None = None, planned: int = 0,
    ) -> RunProgress:
        """Start the run; ``planned`` (the valid rows of its review) is shown as still to send from the
        first moment, so the page never reads 0 of 0 before the run has read the file again."""
        with self._lock:
            current = self._runs.get(batch_id)
            if current is not None and current.running:
                raise BatchError(TEXT.ALREADY_RUNNING, batch_id=batch_id[:12])
            progress = RunProgress(batch_id, upload_id, user, total=planned)
            self._runs[batch_id] = progress
            thread = threading.Thread(
                target=self._run, args=(progress, options, environ, on_finish), name=f"web-run-{batch_id[:12]}",
                daemon=True,
            )
            self._threads[batch_id] = thread
        thread.start()
        return progress

    def wait(self, batch_id: str, timeout: float | None = None) -> None:
        """For tests and shutdown: block until the batch's run ends."""
        with self._lock:
            thread = self._threads.get(batch_id)
        if thread is not None:
            thread.join(timeout)

    def shutdown(self, timeout: float = 120.0) -> None:
        """Ask every run to stop cleanly (rows in flight finish and are recorded, the sheet is
        written) and wait for them: the server's shutdown must not cut a run mid-row."""
        self._stop.set()
        with self._lock:
            threads = list(self._threads.values())
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(
        self, progress: RunProgress, options: RunOptions, environ: dict[str, str],
        on_finish: Callable[[JobResult], None] | None,
    ) -> None:
        def on_start(_loaded: LoadedFile, valid_rows: int) -> None:
            with progress.lock:
                progress.total = valid_rows
                progress.state = "running"

        def on_row(outcome: RowOutcome) -> None:
            with progress.lock:
                progress.done += 1
                progress.counts[outcome.status] += 1

        try:
            result = run_job(options, on_row=on_row, on_start=on_start, environ=environ, stop=self._stop)
        except BatchError as error:
            self._end(progress, "error", self._say(error, options), 2)
            return
        except Exception as error:  # noqa: BLE001 - the page must say it stopped, whatever it was
            log.exception("run of batch %s failed", progress.batch_id[:12])
            self._end(progress, "error", TEXT.CRASHED.format(self.lang, detail=type(error).__name__), 2)
            return
        if on_finish is not None:
            on_finish(result)
        if result.stopped is not None:
            self._end(progress, "stopped", self._say(result.stopped, options), result.exit_code)
        elif result.interrupted:
            self._end(progress, "interrupted", TEXT.INTERRUPTED.format(self.lang), result.exit_code)
        else:
            self._end(progress, "finished", None, result.exit_code)

    def _say(self, error: BatchError, options: RunOptions) -> str:
        """The error as the web words it (``wording``): the files named as the user knows them."""
        if self.data_dir is None:
            return error.message(self.lang)
        shown_as = {Path(options.input_path): options.input_name}
        if options.output_path is not None:
            shown_as[Path(options.output_path)] = f"{Path(options.input_name).stem}.results.xlsx"
        return web_message(error, self.lang, shown_as, self.data_dir)

    @staticmethod
    def _end(progress: RunProgress, state: str, message: str | None, exit_code: int) -> None:
        with progress.lock:
            progress.state = state
            progress.message = message
            progress.exit_code = exit_code
            progress.finished_at = time.time()
