"""run_batch's workers: every row once, in file order for the outcomes, and the ways a batch stops.

The executor here is a stand-in for ``RowExecutor`` (no ledger, no HTTP): these tests are about
the threads that take rows, not about what is done with one."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from batch_payouts.errors import BatchError
from batch_payouts.i18n import Text
from batch_payouts.payout.pipeline import run_batch
from batch_payouts.payout.row_executor import BatchSettings, RowOutcome, StopBatch

REFUSED = Text(es="llave rechazada", en="key refused")


class Executor:
    def __init__(self, workers: int, fail_at: dict[int, BaseException] | None = None, settled: set[int] = frozenset()):
        self.settings = BatchSettings(batch_id="b", key_fp="k", workers=workers)
        self.fail_at, self.already = fail_at or {}, settled
        self.processed: list[int] = []
        self.threads: set[str] = set()
        self.released = False
        self.done_in: list[str] = []  # the threads that wrote their own deferred steps at the end
        self.unwritten: BatchError | None = None  # what ``worker_done`` reports (a full disk)
        self.livemode = False
        self.ledger = self
        self._lock = threading.Lock()

    def preload(self) -> None:
        pass

    def prepare(self, upcoming) -> None:
        self.prepared = [row_key for row_key, _ in upcoming]

    def settled(self, number: int, row_key: str) -> RowOutcome | None:
        return RowOutcome(number, "created", resumed=True) if number in self.already else None

    def process(self, number: int, row: dict, row_key: str) -> RowOutcome:
        with self._lock:
            self.processed.append(number)
            self.threads.add(threading.current_thread().name)
        if number in self.fail_at:
            raise self.fail_at[number]
        assert row["email"] == f"p{number}@x.mx" and row_key == f"k{number}"
        return RowOutcome(number, "created")

    def worker_done(self) -> BatchError | None:
        with self._lock:
            self.done_in.append(threading.current_thread().name)
        return self.unwritten

    def release(self) -> None:
        self.released = True

    def row(self, batch_id: str, row_key: str) -> None:  # the ledger: nothing recorded for unsent rows
        return None


def frame(count: int) -> tuple[pd.DataFrame, pd.Series]:
    numbers = list(range(2, count + 2))
    validated = pd.DataFrame({"email": [f"p{n}@x.mx" for n in numbers], "valid": [n % 7 != 0 for n in numbers]},
                             index=numbers)
    return validated, pd.Series({n: f"k{n}" for n in numbers})


def test_every_valid_row_is_processed_once_by_the_workers_and_settled_rows_by_none():
    validated, keys = frame(200)
    executor = Executor(workers=8, settled={3, 4, 5})
    seen: list[int] = []
    batch = run_batch(validated, keys, executor, on_row=lambda outcome: seen.append(outcome.row_number))
    valid = [n for n in validated.index if validated.loc[n, "valid"]]
    assert sorted(executor.processed) == [n for n in valid if n not in (3, 4, 5)]
    assert sorted(batch.outcomes) == valid and sorted(seen) == valid
    assert batch.outcomes[3].resumed and not batch.stopped and not batch.interrupted and executor.released
    assert 1 <= len(executor.threads) <= 8  # how many got a row is up to the scheduler
    # Each worker wrote its own deferred ledger steps as its last act, in its own thread.
    assert sorted(executor.done_in) == [f"payout_{n}" for n in range(8)]


def test_a_worker_that_cannot_write_its_deferred_steps_stops_the_batch():
    validated, keys = frame(20)
    executor = Executor(workers=2)
    executor.unwritten = BatchError(REFUSED)
    batch = run_batch(validated, keys, executor)
    assert batch.stopped is executor.unwritten and executor.released


def test_a_refused_key_stops_the_batch_and_rows_never_started_are_not_sent():
    validated, keys = frame(50)
    executor = Executor(workers=1, fail_at={10: StopBatch(BatchError(REFUSED))})
    batch = run_batch(validated, keys, executor)
    assert batch.stopped is not None and executor.processed[-1] == 10
    assert all(batch.outcomes[n].error_code == "not_sent" for n in (10, 11, 12, 50))
    assert batch.outcomes[9].status == "created"


def test_a_bug_in_a_worker_is_raised_in_the_calling_thread_after_the_others_stop():
    validated, keys = frame(50)
    executor = Executor(workers=4, fail_at={20: ZeroDivisionError("a bug")})
    with pytest.raises(ZeroDivisionError):
        run_batch(validated, keys, executor)
    assert executor.released


def test_stop_set_before_the_run_starts_no_row_and_says_interrupted():
    validated, keys = frame(20)
    executor, stop = Executor(workers=8), threading.Event()
    stop.set()
    batch = run_batch(validated, keys, executor, stop=stop)
    assert executor.processed == [] and batch.interrupted
    assert {o.error_code for o in batch.outcomes.values()} == {"not_sent"}
