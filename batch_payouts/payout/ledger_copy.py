"""Copy a ledger's history into another one: how a team moves its SQLite file to PostgreSQL.

Every table but the run locks and Alembic's own bookkeeping is copied as it is (batches
first, for the rows that refer to them), so tables added by later ``MIGRATIONS`` steps come
along without a change here.  A target that already holds batches is refused unless the
caller merges (records already there are kept: ``ON CONFLICT DO NOTHING``), and the counts are
checked after: every record of the source must be in the target.
"""

from __future__ import annotations

from dataclasses import dataclass

from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue
from batch_payouts.payout.ledger import Ledger

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

NOT_COPIED = ("locks", "alembic_version")  # a lock belongs to a process on the old ledger's host
CHUNK = 1000


@dataclass(frozen=True)
class Copied:
    table: str
    source: int  # records in the source
    target: int  # records in the target afterwards


def tables_of(ledger: Ledger) -> list[str]:
    if ledger.postgresql:
        found = ledger._query("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
    else:
        found = ledger._query("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
    names = sorted(r[0] for r in found if r[0] not in NOT_COPIED)
    return sorted(names, key=lambda name: name != "batches")  # batches first: rows refer to them


def copy_ledger(source: Ledger, target: Ledger, *, merge: bool = False) -> list[Copied]:
    """Copy every record of ``source`` missing from ``target``; the counts per table after."""
    if source.name == target.name:
        raise BatchError(TEXT.SAME_LEDGER, source=source.name)
    existing = target._query("SELECT count(*) FROM batches")[0][0]
    if existing and not merge:
        raise BatchError(TEXT.TARGET_NOT_EMPTY, target=target.name, source=source.name, count=existing)
    target_tables = set(tables_of(target))
    result = []
    for table in tables_of(source):
        if table not in target_tables:
            continue  # a table only the source's version has: the target's upgrade would create it
        cursor = source._db.cursor(f"SELECT * FROM {table}")
        columns = [c for c in cursor._type._keys] if cursor._type else []
        insert = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                  "ON CONFLICT DO NOTHING")
        records = cursor.fetchall()
        for start in range(0, len(records), CHUNK):
            with target._transaction(durable=True) as conn:
                conn.executemany(insert, [tuple(r) for r in records[start:start + CHUNK]])
        after = target._query(f"SELECT count(*) FROM {table}")[0][0]
        if after < len(records) or (not merge and after != len(records)):
            raise BatchError(TEXT.COUNTS_DIFFER, table=table, target=target.name, source=source.name,
                             found=after, expected=len(records))
        result.append(Copied(table, len(records), after))
    return result
