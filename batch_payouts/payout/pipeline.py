"""The batch: from validated rows to payout orders, exactly once.

For each valid row, in file order, the pipeline asks the ledger what is already
known, decides (copy a finished result, refuse a repeat, resolve a row in
doubt, or send), acts through the Conekta client, and records the result
before moving on.  Rows are taken in input order by ``workers`` threads; every
worker shares the ledger (on SQLite one connection behind a lock, on PostgreSQL a pooled one per worker) and the pooled HTTP
connections, and the outcomes are returned by row number whatever the completion order.

One row's decision and its requests are ``row_executor``; the hashes that name a
batch, its rows and its requests are ``identity``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue
from batch_payouts.payout.batch_reads import FIELDS as READ_AHEAD
from batch_payouts.payout.identity import column_values
from batch_payouts.payout.row_executor import RowExecutor, RowOutcome, StopBatch
from batch_payouts.states import FAILED

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


class _Rows:
    """The valid rows of ``validated`` as ``rows_of`` gives them, each dict built on demand: a
    rerun of a large finished batch sends nothing and so builds none (one dict per row of 100k
    rows was ~100 MB held for the whole run)."""

    def __init__(self, validated: pd.DataFrame) -> None:
        self._columns, self._values = column_values(validated)
        numbers = validated.index.tolist()
        self._positions = [i for i, ok in enumerate(validated["valid"].tolist()) if ok]
        self._numbers = [numbers[i] for i in self._positions]

    def valid_numbers(self) -> list[int]:
        return self._numbers

    def fields(self, indexes: list[int], names: tuple[str, ...]) -> Iterator[tuple]:
        """The ``names`` cells of the ``indexes``-th valid rows, a tuple per row (None for a column
        the frame lacks): what ``RowExecutor.prepare`` reads of every row, without a dict per row."""
        columns = [self._values[self._columns.index(name)] if name in self._columns else None for name in names]
        for index in indexes:
            position = self._positions[index]
            yield tuple(None if column is None else column[position] for column in columns)

    def row(self, index: int) -> dict[str, Any]:
        """The ``index``-th valid row as a dict of Python values (what ``rows_of`` yields)."""
        position = self._positions[index]
        return dict(zip(self._columns, (column[position] for column in self._values)))


class _Sender:
    """The worker threads of ``run_batch``: each takes the next row to send (in file order),
    processes it and records its outcome, until none is left or the batch must stop."""

    def __init__(self, executor: RowExecutor, rows: _Rows, pending: list[int], to_send: list[int],
                 key_of: dict, outcomes: dict[int, RowOutcome], on_row: Callable[[RowOutcome], None] | None,
                 stop: threading.Event | None) -> None:
        self._executor, self._rows, self._pending, self._key_of = executor, rows, pending, key_of
        self._positions = iter(to_send)
        self._outcomes, self._on_row, self._stop = outcomes, on_row, stop
        self._lock = threading.Lock()
        self._halted = threading.Event()
        self._threads: list[threading.Thread] = []
        self.stopped: BatchError | None = None
        self.crash: BaseException | None = None  # a bug in a worker: raised again by ``run_batch``
        self.stop_seen = False  # ``stop`` was set while rows were left to start

    def run(self, workers: int) -> None:
        for n in range(workers):
            thread = threading.Thread(target=self._work, name=f"payout_{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        for thread in self._threads:
            thread.join()  # Ctrl-C interrupts the wait (KeyboardInterrupt in this thread)

    def halt_and_join(self) -> None:
        """No row more is started; the rows in flight finish and are recorded."""
        self._halted.set()
        for thread in self._threads:
            thread.join()

    def _next(self) -> int | None:
        if self._stop is not None and self._stop.is_set():
            self.stop_seen = True
            return None
        if self._halted.is_set():
            return None
        with self._lock:
            return next(self._positions, None)

    def _work(self) -> None:
        try:
            self._send_rows()
        finally:  # this worker's deferred ledger steps: written by it (``RowExecutor.worker_done``)
            try:
                unwritten = self._executor.worker_done()
            except BaseException as bug:  # noqa: BLE001 - raised again in the calling thread
                with self._lock:
                    self.crash = self.crash or bug
            else:
                if unwritten is not None:
                    self._halt(unwritten)

    def _send_rows(self) -> None:
        executor, key_of = self._executor, self._key_of
        while (position := self._next()) is not None:
            number = self._pending[position]
            try:
                outcome = executor.process(number, self._rows.row(position), key_of[number])
            except StopBatch as halt:
                self._halt(halt.error)
                continue
            except BatchError as error:  # the ledger or audit log cannot be written (disk full): stop,
                self._halt(error)  # and report what was done; the row's journal says where it is
                continue
            except BaseException as bug:  # noqa: BLE001 - raised again in the calling thread
                with self._lock:
                    self.crash = self.crash or bug
                self._halted.set()
                return
            with self._lock:
                self._outcomes[int(number)] = outcome
                if self._on_row is not None:
                    self._on_row(outcome)

    def _halt(self, error: BatchError) -> None:
        with self._lock:
            self.stopped = self.stopped or error
        self._halted.set()


@dataclass
class BatchRun:
    """The result of ``run_batch``: outcomes in input order, and why it stopped early if it did."""

    outcomes: dict[int, RowOutcome]
    stopped: BatchError | None = None
    interrupted: bool = False
    livemode: bool | None = None


def run_batch(
    validated: pd.DataFrame,
    keys: pd.Series,
    executor: RowExecutor,
    *,
    on_row: Callable[[RowOutcome], None] | None = None,
    stop: threading.Event | None = None,
) -> BatchRun:
    """Send every valid row; stop cleanly on a refused key, Ctrl-C, or ``stop`` being set
    (the web server shutting down: a thread gets no KeyboardInterrupt).

    At most ``workers`` rows are in flight.  On a stop, rows in flight finish
    and are recorded; rows never started are reported as not sent and stay
    ``pending`` in the ledger, so the next run sends them.

    Rows an earlier run finished are answered here from the preloaded journal, without a
    worker; the rest are taken in file order by ``workers`` threads that each fetch their next
    row themselves (``_Sender``): no future per row, and no wake-up of this thread per row (at a
    fast API those hand-offs were a good part of the CPU spent per row, issue 17).
    """
    settings = executor.settings
    outcomes: dict[int, RowOutcome] = {}
    rows = _Rows(validated)
    pending = rows.valid_numbers()
    key_of = keys.to_dict()  # a dict lookup per row, not a Series lookup
    executor.preload()
    to_send: list[int] = []  # positions in ``pending``
    for position, number in enumerate(pending):
        settled = executor.settled(number, key_of[number])
        if settled is None:
            to_send.append(position)
            continue
        outcomes[number] = settled  # finished in an earlier run: no request, no worker
        if on_row is not None:
            on_row(settled)
    if to_send:  # what those rows would each read from the ledger, read once (``batch_reads``)
        executor.prepare(zip((key_of[pending[p]] for p in to_send), rows.fields(to_send, READ_AHEAD)))
    sender = _Sender(executor, rows, pending, to_send, key_of, outcomes, on_row, stop)
    interrupted = False
    try:
        sender.run(max(1, settings.workers))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        sender.halt_and_join()  # the rows in flight finish and are recorded
        # The results sheet is written next: not with the whole journal still held; and the
        # ledger steps the rows deferred are written now (a full disk stops the batch here).
        unwritten = executor.release()
    if sender.crash is not None:
        raise sender.crash
    stopped = sender.stopped or unwritten
    interrupted = interrupted or sender.stop_seen
    if stopped or interrupted:
        why = stopped.message(settings.lang) if stopped else TEXT.INTERRUPTED.format(settings.lang)
        advice = ((stopped and stopped.not_sent_advice) or TEXT.RERUN_SAME).format(settings.lang)
        for number in pending:
            if int(number) not in outcomes:
                entry = executor.ledger.row(settings.batch_id, key_of[number])
                if entry is not None and entry.state not in ("pending",):
                    outcomes[int(number)] = executor.outcome(number, entry, resumed=True)
                else:
                    outcomes[int(number)] = RowOutcome(
                        int(number), FAILED, error_code="not_sent", error_message=TEXT.NOT_SENT.format(settings.lang, why=why, advice=advice)
                    )
    return BatchRun(outcomes=outcomes, stopped=stopped, interrupted=interrupted, livemode=executor.livemode)
