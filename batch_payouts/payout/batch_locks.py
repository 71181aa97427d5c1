"""The batch lock: one run of a batch at a time, whatever host it runs on.

SQLite: a ledger row naming the holder's host and pid; a holder that died (kill -9, a
power cut) is detected and its lock taken over, so a crash never blocks the batch.
PostgreSQL: a session-level advisory lock on a connection of its own, which the server
releases the moment that session ends; the row still names the holder for whoever is
refused ("busy, try later": exit 75, or ``--wait-lock``).
"""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
import time
from pathlib import Path
from typing import Any

from batch_payouts import clock
from batch_payouts.errors import TryLater
from batch_payouts.i18n import catalogue
from batch_payouts.payout.ledger_db import Connection, Record
from batch_payouts.payout.ledger_schema import APPLICATION_ID
from batch_payouts.payout.ledger_steps import LedgerSteps

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


class BatchLocks(LedgerSteps):
    """Taking and releasing a batch's run lock (see the module docstring)."""

    def __init__(self, location: str | Path) -> None:
        super().__init__(location)
        self._held_locks: set[str] = set()
        self._lock_connections: dict[str, Any] = {}  # PostgreSQL: batch -> the session holding its advisory lock

    # -- the run lock -----------------------------------------------------
    def acquire_lock(self, batch_id: str, wait: float = 0.0) -> None:
        """Refuse a second run of the same batch while the first is alive (after waiting up to
        ``wait`` seconds for it to finish: ``--wait-lock``).

        SQLite: the lock is a ledger row naming the holder's host and pid; a holder that died
        (kill -9, power cut) is detected and its lock taken over, so a crash never blocks the
        batch forever.  PostgreSQL: a session-level advisory lock held by a connection of its
        own, which the server releases the moment that session ends -- a killed process, a
        host that lost power (TCP keepalives) -- whatever host it ran on; the row still names
        the holder for whoever is refused.
        """
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                if self.postgresql:
                    self._take_advisory_lock(batch_id)
                else:
                    self._take_lock_row(batch_id)
                break
            except TryLater:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(min(0.2, max(0.01, deadline - time.monotonic())))
        self._held_locks.add(batch_id)

    def _refusal(self, batch_id: str, held: Record | None) -> TryLater:
        return TryLater(
            TEXT.LOCKED,
            batch_id=batch_id[:12],
            pid=held["pid"] if held else "?",
            operator=held["operator"] if held else "?",
            host=held["host"] if held else "?",
            since=clock.time_text(held["acquired_at"]) if held else "?",
        )

    def _write_holder(self, conn: Connection, batch_id: str) -> None:
        conn.execute(
            """INSERT INTO locks (batch_id, pid, host, operator, acquired_at) VALUES (?,?,?,?,?)
               ON CONFLICT (batch_id) DO UPDATE SET pid=excluded.pid, host=excluded.host,
                   operator=excluded.operator, acquired_at=excluded.acquired_at""",
            (batch_id, os.getpid(), socket.gethostname(), operator_name(), time.time()),
        )

    def _take_lock_row(self, batch_id: str) -> None:
        me = (os.getpid(), socket.gethostname())
        with self._transaction() as conn:
            held = conn.execute("SELECT * FROM locks WHERE batch_id=?", (batch_id,)).fetchone()
            if held and (held["pid"], held["host"]) != me and holder_alive(held["pid"], held["host"]):
                raise self._refusal(batch_id, held)
            self._write_holder(conn, batch_id)

    def _take_advisory_lock(self, batch_id: str) -> None:
        if batch_id in self._lock_connections:
            return  # this Ledger holds it already (session locks nest; one is enough)
        session = self._db.connect()  # a driver connection of its own, outside the pool
        try:
            got = session.execute("SELECT pg_try_advisory_lock(%s, %s)", advisory_key(batch_id)).fetchone()[0]
        except BaseException:
            session.close()
            raise
        if not got:
            session.close()
            raise self._refusal(batch_id, next(iter(self._query("SELECT * FROM locks WHERE batch_id=?", (batch_id,))), None))
        self._lock_connections[batch_id] = session
        with self._transaction() as conn:  # the lock is ours: a row left by a killed holder is overwritten
            self._write_holder(conn, batch_id)

    def release_lock(self, batch_id: str) -> None:
        try:
            with self._transaction() as conn:
                conn.execute("DELETE FROM locks WHERE batch_id=? AND pid=? AND host=?", (batch_id, os.getpid(), socket.gethostname()))
        finally:
            session = self._lock_connections.pop(batch_id, None)
            if session is not None:
                session.close()  # ends the session: the server releases its advisory lock
            self._held_locks.discard(batch_id)


def operator_name() -> str:
    """The OS user running the batch, for the ledger and the audit log."""
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers: not worth failing a batch
        return "unknown"

def advisory_key(batch_id: str) -> tuple[int, int]:
    """PostgreSQL's two-int advisory key for a batch: our application id, and 32 bits of the id's hash."""
    digest = hashlib.sha256(batch_id.encode()).digest()
    return APPLICATION_ID + 1, int.from_bytes(digest[:4], "big", signed=True)

def holder_alive(pid: int, host: str) -> bool:
    if host != socket.gethostname():
        return True  # cannot see another machine's processes: assume it runs
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
