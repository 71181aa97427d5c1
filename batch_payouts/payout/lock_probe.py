"""Is a batch being run right now, by any process on any host sharing the ledger?

The web app shows a run's live counters from its own memory; a run another web instance
(or a cron job on another host) started is known only through the ledger.  The batch lock
answers it, read without taking it (taking it, even for a moment, could refuse the real run):
on PostgreSQL, whether some session holds the batch's advisory lock (``pg_locks``), which the
server drops the moment its holder dies; on SQLite, the lock row and its holder's pid on this
host.  Nothing here writes.
"""

from __future__ import annotations

from batch_payouts.payout.batch_locks import advisory_key, holder_alive
from batch_payouts.payout.ledger import Ledger


def batches_running(ledger: Ledger) -> set[str]:
    """The ids of the batches whose lock a live run holds."""
    held = ledger._query("SELECT batch_id, pid, host FROM locks")
    if ledger.postgresql:
        return {row["batch_id"] for row in held if _advisory_held(ledger, row["batch_id"])}
    return {row["batch_id"] for row in held if holder_alive(row["pid"], row["host"])}


def batch_running(ledger: Ledger, batch_id: str) -> bool:
    if ledger.postgresql:
        return _advisory_held(ledger, batch_id)
    held = ledger._query("SELECT pid, host FROM locks WHERE batch_id=?", (batch_id,))
    return bool(held) and holder_alive(held[0]["pid"], held[0]["host"])


def _advisory_held(ledger: Ledger, batch_id: str) -> bool:
    """``pg_locks`` shows a two-int advisory key as classid, objid (unsigned) and objsubid 2."""
    first, second = advisory_key(batch_id)
    found = ledger._query(
        "SELECT 1 FROM pg_locks WHERE locktype='advisory' AND granted AND objsubid=2"
        " AND classid=CAST(? AS BIGINT) AND objid=CAST(? AS BIGINT) AND database=(SELECT oid FROM pg_database WHERE datname=current_database())",
        (first & 0xFFFFFFFF, second & 0xFFFFFFFF),
    )
    return bool(found)
