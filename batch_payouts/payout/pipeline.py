"""The batch: from validated rows to payout orders, exactly once.

For each valid row, in file order, the pipeline asks the ledger what is already
known, decides (copy a finished result, refuse a repeat, resolve a row in
doubt, or send), acts through the Conekta client, and records the result
before moving on.  Rows run on a small thread pool; every worker shares the
ledger (one connection behind a lock) and the pooled HTTP session, and the
outcomes are returned in input order whatever the completion order.

One row's decision and its requests are ``row_executor``; the hashes that name a
batch, its rows and its requests are ``identity``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from batch_payouts.errors import BatchError
from batch_payouts.i18n import Text
from batch_payouts.payout.identity import column_values
from batch_payouts.payout.row_executor import RowExecutor, RowOutcome, StopBatch
from batch_payouts.states import FAILED

NOT_SENT = Text(es="No se envió porque el lote se detuvo ({why}). {advice}",
                en="Not sent because the batch stopped ({why}). {advice}")
RERUN_SAME = Text(es="Vuelve a ejecutar el mismo archivo para enviarla.", en="Run the same file again to send it.")
INTERRUPTED = Text(es="interrumpido por el usuario", en="interrupted by the user")
KEY_MISMATCH = Text(
    es="El lote {batch_id} ya se ejecutó con otra llave de API (otra cuenta o modo). Usa otro --batch-id.",
    en="Batch {batch_id} already ran with a different API key (another account or mode). Use another --batch-id.",
)


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

    def row(self, index: int) -> dict[str, Any]:
        """The ``index``-th valid row as a dict of Python values (what ``rows_of`` yields)."""
        position = self._positions[index]
        return dict(zip(self._columns, (column[position] for column in self._values)))


@dataclass
class BatchRun:
    """The result of ``run_batch``: outcomes in input order, and why it stopped early if it did."""

    outcomes: dict[int, RowOutcome]
    stopped: BatchError | None = None
    interrupted: bool = False
    livemode: bool | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)


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
    """
    settings = executor.settings
    outcomes: dict[int, RowOutcome] = {}
    rows = _Rows(validated)
    pending = rows.valid_numbers()
    key_of = keys.to_dict()  # a dict lookup per row, not a Series lookup
    executor.preload()
    stopped: BatchError | None = None
    interrupted = False
    in_flight: dict[Future, int] = {}
    position = 0
    pool = ThreadPoolExecutor(max_workers=max(1, settings.workers), thread_name_prefix="payout")
    try:
        while position < len(pending) or in_flight:
            interrupted = interrupted or (stop is not None and stop.is_set())
            while not (stopped or interrupted) and position < len(pending) and len(in_flight) < settings.workers:
                number = pending[position]
                position += 1
                settled = executor.settled(number, key_of[number])
                if settled is not None:  # finished in an earlier run: no request, no worker
                    outcomes[number] = settled
                    if on_row is not None:
                        on_row(settled)
                    continue
                row = rows.row(position - 1)  # built only for a row that is sent: a rerun builds none
                in_flight[pool.submit(executor.process, number, row, key_of[number])] = int(number)
            if not in_flight:
                break
            try:
                done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                interrupted = True
                continue
            for future in done:
                number = in_flight.pop(future)
                try:
                    outcome = future.result()
                except StopBatch as halt:
                    stopped = stopped or halt.error
                    continue
                except BatchError as error:  # the ledger or audit log cannot be written (disk full): stop,
                    stopped = stopped or error  # and report what was done; the row's journal says where it is
                    continue
                outcomes[number] = outcome
                if on_row is not None:
                    on_row(outcome)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        pool.shutdown(wait=True)
        # The results sheet is written next: not with the whole journal still held; and the
        # ledger steps the rows deferred are written now (a full disk stops the batch here).
        unwritten = executor.release()
    stopped = stopped or unwritten
    if stopped or interrupted:
        why = stopped.message(settings.lang) if stopped else INTERRUPTED.format(settings.lang)
        advice = ((stopped and stopped.not_sent_advice) or RERUN_SAME).format(settings.lang)
        for number in pending:
            if int(number) not in outcomes:
                entry = executor.ledger.row(settings.batch_id, key_of[number])
                if entry is not None and entry.state not in ("pending",):
                    outcomes[int(number)] = executor.outcome(number, entry, resumed=True)
                else:
                    outcomes[int(number)] = RowOutcome(
                        int(number), FAILED, error_code="not_sent", error_message=NOT_SENT.format(settings.lang, why=why, advice=advice)
                    )
    return BatchRun(outcomes=outcomes, stopped=stopped, interrupted=interrupted, livemode=executor.livemode)
