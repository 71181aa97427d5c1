"""PostgreSQL's counterpart of SQLite's ``PRAGMA data_version`` for the repeat guard.

A batch reads once what the repeat guard needs (``batch_reads``) and may use that read only while
no other connection can have created a payout it would refuse.  SQLite tells it for free (the
file's ``data_version`` changes when another connection commits).  PostgreSQL has no such counter,
so without one the guard asked the database once per row: on a 2-core machine nearly half of the
server's processor time in a run (issue 14).  Step 8 of ``ledger_schema`` makes the database say
when a row becomes ``created`` (``pg_notify`` on ``CREATED_CHANNEL``, sent at the commit); one
connection listens while the batch runs, and ``count`` is how many such notices came from
connections other than the ledger's own: the guard trusts its read while the count is unchanged.
The listener closes with the batch (``BatchReads.finish``): one that nobody reads would hold
back PostgreSQL's queue of notices, which every listener must have read before it is trimmed.

Freshness: a notice reaches the listener a moment after the other connection's commit (a network
hop; under a millisecond on a LAN), where a query per row would have seen that commit at once.
The guard was never a lock -- two batches sending the same payment at the same instant both pass
it either way -- and it exists for the same payment paid again hours or days apart, which the
notice covers.  A listener that cannot read (connection lost) counts a change on every call from
then on, so the guard asks the database for every row, as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from batch_payouts.payout.ledger_schema import CREATED_CHANNEL


class CreatedNotices:
    """One listening connection, and the notices of created rows it has read so far."""

    def __init__(self, connect: Callable[[], Any], own_pids: set[int]) -> None:
        """Listen from now on: a row created after this returns is counted (``count``), unless a
        connection whose server process is in ``own_pids`` created it (the ledger's own: this
        run's own created rows are no reason to ask; the set grows as the ledger connects)."""
        self._own_pids = own_pids
        self._lock = threading.Lock()
        self._seen = 0
        self._conn: Any = connect()
        self._conn.execute(f"LISTEN {CREATED_CHANNEL}")

    def count(self) -> int:
        """How many notices of another connection have come so far."""
        own_pids = self._own_pids
        with self._lock:
            if self._conn is None:
                self._seen += 1
                return self._seen
            try:
                pgconn = self._conn.pgconn
                pgconn.consume_input()  # what has arrived, without waiting (libpq's socket never blocks)
                while (notice := pgconn.notifies()) is not None:
                    if notice.be_pid not in own_pids:
                        self._seen += 1
            except Exception:  # noqa: BLE001 - lost: every later call is a change, the guard asks the database
                self._close()
                self._seen += 1
            return self._seen

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a connection the server dropped: nothing left to close
                pass
