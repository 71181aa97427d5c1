"""The ledger's steps: how a write reaches the database on either engine, and when.

Every change to the ledger is a *step*: one atomic transaction (``_transaction``), taken
under the one lock on SQLite (one connection for every worker: the file has one writer at
a time anyway) and on a connection of the thread's own on PostgreSQL (``_serial``,
``ledger_db.Database.session``), so several workers' steps -- and their round trips --
overlap there.  A running batch may *defer* a step that only records a result
(``later=True``) into a later transaction, usually the next group commit of intents
(``intent_journal``); a read writes the deferred steps first.  On SQLite any worker's next
transaction writes every deferred step; on PostgreSQL a thread's deferred steps are its own
and travel only in its own transactions (``flush`` says why).

``Ledger`` (``ledger``) is built on this class; nothing outside the ledger's modules uses it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from batch_payouts import ledger_address
from batch_payouts.payout.ledger_db import Connection, Record, together_statement
from batch_payouts.payout.ledger_open import open_database
from batch_payouts.storage import DiskFull, is_disk_full


class LedgerSteps:
    """An open ledger and the discipline of its steps (see the module docstring)."""

    def __init__(self, location: str | Path) -> None:
        self.location = ledger_address.resolve(location)
        self.postgresql = ledger_address.is_server(self.location)
        self.name = ledger_address.display(self.location)  # for messages: never a password
        self.path = ledger_address.local_anchor(self.location)  # the file, or this host's stand-in for it
        self._lock = threading.RLock()
        self._db = open_database(self.location)  # refuses a foreign file, creates or upgrades the tables
        # Steps a batch lets wait for a later transaction (``later=True``; see ``flush``): one list
        # on SQLite, one per thread on PostgreSQL (``_deferral_key``).
        # Each entry is a step: its statements, as ``_steps`` would have written them together.
        self._deferred: dict[int, list[Step]] = {}
        self._deferred_lock = threading.Lock()

    @contextmanager
    def _transaction(self, durable: bool = False, *, single: bool = False, together: bool = False,
                     script: bool = False) -> Iterator[Connection]:
        """One atomic step.  ``durable`` waits for the disk (SQLite ``synchronous=FULL``,
        PostgreSQL ``synchronous_commit=on``).

        Only intents need that: an intent lost to a power cut could let a rerun
        treat a sent request as never sent.  Any other step lost that way is
        recovered by the rerun (an ``in_flight`` row is looked up at Conekta),
        so those commit with ``NORMAL`` (``synchronous_commit=off``) -- still atomic
        and crash-safe, at a fraction of the cost (see benchmarks/).

        The connection yielded takes portable SQL with ``?`` placeholders and returns
        rows readable by column name or position, on both engines (``ledger_db``).

        ``single``: the step is one statement (PostgreSQL sends it alone, in autocommit);
        ``together``: writes to different tables, results unread (PostgreSQL: one statement).
        Both spare PostgreSQL's ``BEGIN`` and ``COMMIT``, which are most of a short step's cost.
        ``script``: PostgreSQL gets the whole step as one message after its block (``ledger_script``:
        a result is read only once the block has ended).

        Steps deferred with ``later=True`` are written first, in the order they were deferred, in
        the same transaction (and put back if it fails): every one on SQLite, this thread's own on
        PostgreSQL.
        """
        with self._serial():
            steps = self._take_deferred()
            if steps:
                single = together = False
            try:
                with self._db.transaction(durable=durable, single=single, together=together, script=script) as conn:
                    self._write_deferred(conn, steps)
                    yield conn
            except BaseException as exc:
                self._put_back(steps)
                if isinstance(exc, Exception) and is_disk_full(exc):  # rolled back: the ledger is as it was before it
                    raise DiskFull(self.path, "ledger") from exc
                raise

    def _serial(self) -> Any:
        """SQLite: the lock every step takes (one connection for all threads).  PostgreSQL: none,
        each thread's step has a connection of its own (``ledger_db.Database.session``)."""
        return _NO_LOCK if self.postgresql else self._lock

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection for reads outside any step (several statements, no transaction); the
        deferred steps are written first, so the reads see them."""
        self.flush()
        with self._serial(), self._db.session() as conn:
            yield conn

    def _deferral_key(self) -> int:
        """Whose deferred steps a call takes: SQLite's one list, or this thread's (PostgreSQL)."""
        return threading.get_ident() if self.postgresql else 0

    def _defer(self, step: Step) -> None:
        """Keep ``step`` (its statements, each a write to a table of its own) for a later transaction."""
        with self._deferred_lock:
            self._deferred.setdefault(self._deferral_key(), []).append(step)

    def _write_deferred(self, conn: Connection, steps: list[Step]) -> None:
        """Write deferred steps inside a transaction, in order.  On PostgreSQL a step of several
        statements goes as one (``ledger_db.Together``), as ``_steps`` would have sent it: fewer
        statements for the server to run (a created row's settling is two writes, not four)."""
        for step in steps:
            if self.postgresql and len(step) > 1:
                conn.execute(*together_statement(step))
                continue
            for sql, params in step:
                conn.execute(sql, params)

    def _take_deferred(self) -> list[Step]:
        """The deferred steps this call is to write (see ``_deferral_key``), taken out of the list."""
        with self._deferred_lock:
            return self._deferred.pop(self._deferral_key(), [])

    def _put_back(self, steps: list[Step]) -> None:
        """Steps taken by a transaction that failed: first again in the list they came from."""
        if steps:
            with self._deferred_lock:
                waiting = self._deferred.setdefault(self._deferral_key(), [])
                waiting[:0] = steps

    def flush(self) -> None:
        """Write the steps deferred with ``later=True`` now (nothing to do when there are none);
        on PostgreSQL, this thread's.

        Why defer: a batch settles each request in a transaction of its own, and on SQLite every
        commit rewrites the pages it touched (table and indexes) into the WAL: ~5 commits per row
        were most of a run's CPU; on PostgreSQL each is a round trip.  A step that only *settles*
        what an intent started (the customer or order created, a new row ``pending``) can instead
        ride in a later transaction -- usually the next group commit of intents, within
        milliseconds -- and at the latest in ``flush``.  Lost to a crash, such a step is recovered
        as a power cut's is today: the row is still ``in_flight`` (or absent), so the rerun looks
        the order up before anything is sent.  Intents are never deferred.

        Why per thread on PostgreSQL: each worker has a connection of its own, so a step written
        by another worker's transaction could commit *after* this worker's own next step on the
        same row (the order's intent marking it ``in_flight`` before its ``pending`` insert lands).
        A thread's deferred steps therefore travel only in its own transactions -- its next step,
        or its next intent's group commit, written just before that intent (``_IntentTicket``) --
        and a worker writes what is left when it stops (``RowExecutor.worker_done``)."""
        with self._deferred_lock:
            waiting = bool(self._deferred.get(self._deferral_key()))
        if waiting:
            with self._transaction():
                pass

    def flush_all(self) -> None:
        """Write every thread's deferred steps, when no worker is left to write its own (``close``)."""
        with self._deferred_lock:
            lists, self._deferred = list(self._deferred.values()), {}
        self._put_back([step for steps in lists for step in steps])
        self.flush()

    def drop_deferred(self) -> None:
        """Forget deferred steps that cannot be written (a full disk; on PostgreSQL this thread's):
        a rerun recovers them (``flush``)."""
        self._take_deferred()

    def _query(self, sql: str, params: tuple = (), *, settled: bool = True) -> list[Record]:
        """A read; ``settled`` (the default) writes the deferred steps first, so it sees them."""
        if settled:
            self.flush()
        with self._serial():
            return self._db.query(sql, params)

    def _steps(self, steps: list[tuple[str, tuple]], later: bool) -> None:
        """Write ``steps`` (statement, parameters) in one transaction, or defer them (``later``).
        Each is a write to a table of its own, results unread: on PostgreSQL one statement."""
        if later:
            self._defer(tuple(steps))
            return
        with self._transaction(single=len(steps) == 1, together=len(steps) > 1) as conn:
            for sql, params in steps:
                conn.execute(sql, params)

    def _update_row(self, conn: Connection, batch_id: str, row_key: str, **fields: Any) -> None:
        conn.execute(*_row_update(batch_id, row_key, fields))

    def _settle_intent(self, conn, idempotency_key: str, state: str, object_id=None, http_status=None, log_id=None) -> None:
        conn.execute(*_intent_settlement(idempotency_key, state, object_id, http_status, log_id))


def _row_update(batch_id: str, row_key: str, fields: dict[str, Any]) -> tuple[str, tuple]:
    """The UPDATE of some of a row's fields (and its ``updated_at``)."""
    fields["updated_at"] = time.time()
    assignments = ", ".join(f"{name}=?" for name in fields)
    return f"UPDATE rows SET {assignments} WHERE batch_id=? AND row_key=?", (*fields.values(), batch_id, row_key)

def _intent_settlement(idempotency_key: str, state: str, object_id=None, http_status=None, log_id=None) -> tuple[str, tuple]:
    return ("UPDATE intents SET state=?, object_id=?, http_status=?, log_id=?, finished_at=? WHERE idempotency_key=?",
            (state, object_id, http_status, log_id, time.time(), idempotency_key))

_NO_LOCK = nullcontext()

# A ledger step: its statements (SQL with ``?`` placeholders, parameters).
Step = tuple[tuple[str, tuple], ...]
