"""Opening the ledger: a SQLite file safely (ours or refused, WAL, its pragmas), or a PostgreSQL server.

Apart from ``ledger_schema`` (what the tables are and how they are upgraded) because the
SQLite side is about the file, not the schema: is it ours, who creates the tables when two
first runs start together, and how to open it without SQLAlchemy and Alembic, whose imports
alone cost ~0.2 s of every command's start (issue 17: < 0.5 s to the first request).  A file
at the head revision, and a brand-new one (``ledger_schema.create_sqlite``), open with the
driver alone; only an older file is opened again through SQLAlchemy for Alembic to upgrade.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from batch_payouts import ledger_address
from batch_payouts.errors import BatchError, TryLater
from batch_payouts.payout.ledger_db import Database
from batch_payouts.payout.ledger_schema import (
    APPLICATION_ID, _migrate, _open_postgresql, _revision, create_sqlite, head_revision,
)
from batch_payouts.payout.ledger_schema import TEXT as SCHEMA_TEXT
from batch_payouts.storage import DiskFull, is_disk_full


def open_database(location: ledger_address.Location) -> Any:
    """The ledger, open and up to date: a ``ledger_db.Database``.  Refuses a foreign file or a
    newer schema; says clearly when a server cannot be reached."""
    if ledger_address.is_server(location):
        return _open_postgresql(str(location))
    return _open_sqlite(Path(location))


# -- SQLite ----------------------------------------------------------------------------------------
def _open_sqlite(path: Path) -> Any:
    """Open the file, refusing a foreign one, then create or upgrade its tables.

    Two first runs may open a brand-new ledger at the same moment: one may see
    the file the other has just created, still empty or without tables.  That
    file is not "foreign" (only one holding someone else's tables or
    application id is), and every upgrade reads the version inside its own
    ``BEGIN IMMEDIATE`` transaction, so exactly one process creates the
    tables and the other waits, then finds them there.
    """
    path.parent.mkdir(parents=True, exist_ok=True)

    def new_connection() -> sqlite3.Connection:
        return sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)

    # First with the driver alone: a file already at the head revision needs neither Alembic nor
    # SQLAlchemy (~0.25 s of imports at every command's start), and a brand-new one gets its tables
    # from ``create_sqlite``.  An older schema is closed and opened again below, where upgrades
    # run through Alembic only.
    try:
        light = Database(None, None, str(path), driver=new_connection(), dialect="sqlite")
    except sqlite3.Error as exc:
        raise _sqlite_error(path, exc) from exc
    if _prepared_sqlite(light, path, lambda: _revision(light)[0] == head_revision() or _new_made_current(light)):
        return light

    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine("sqlite://", creator=new_connection, poolclass=NullPool)
    try:
        connection = engine.connect()
    except Exception as exc:
        engine.dispose()
        raise _sqlite_error(path, getattr(exc, "orig", exc)) from exc
    database = Database(engine, connection, str(path))
    _prepared_sqlite(database, path, lambda: _migrate(database, path) or True)
    return database


def _new_made_current(database: Database) -> bool:
    """A file with no tables and no version yet gets them here; True if it is current now."""
    if _revision(database) != (None, 0):
        return False  # an older schema (or a newer one): Alembic's upgrade, or its refusal
    return create_sqlite(database)


def _prepared_sqlite(database: Any, path: Path, then: Any) -> bool:
    """Refuse a foreign file, switch to WAL, set the pragmas, then ``then()``; True if it says the
    database is ready (it stays open), else it is closed.  An error closes it and says what is wrong."""
    raw = database.conn.dbapi
    try:
        # One statement, so both come from the same snapshot even while another process creates the file.
        app_id, has_tables = raw.execute(
            "SELECT (SELECT application_id FROM pragma_application_id), (SELECT count(*) FROM sqlite_master)"
        ).fetchone()
        if app_id != APPLICATION_ID and (app_id or has_tables):
            raise BatchError(SCHEMA_TEXT.FOREIGN_FILE, path=str(path))
        _use_wal(raw)
        raw.execute("PRAGMA synchronous=FULL")
        raw.execute("PRAGMA foreign_keys=ON")
        ready = bool(then())
    except BaseException as exc:
        database.close()
        original = getattr(exc, "orig", exc)
        if isinstance(original, sqlite3.Error):
            raise _sqlite_error(path, original) from exc
        raise
    if not ready:
        database.close()
    return ready


def _sqlite_error(path: Path, exc: BaseException) -> BatchError:
    """What to tell the user when SQLite refuses to open or upgrade the file."""
    if is_disk_full(exc):
        return DiskFull(path, "ledger")
    if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        return TryLater(SCHEMA_TEXT.BUSY_FILE, path=str(path))
    return BatchError(SCHEMA_TEXT.FOREIGN_FILE, path=str(path))


def _use_wal(conn: sqlite3.Connection, patience: float = 30.0) -> None:
    """Switch the file to WAL.  The switch needs the file to itself and SQLite answers "database
    is locked" at once, without waiting, while another process holds it (two first runs of a new
    ledger): so wait here, as long as any other ledger step would."""
    deadline = time.monotonic() + patience
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorname", "") not in ("SQLITE_BUSY", "SQLITE_LOCKED") or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
