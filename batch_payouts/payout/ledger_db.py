"""One ledger connection on either engine, with the API the ledger code is written against.

The ledger's SQL is portable text with ``?`` placeholders, and its rows are read by column
name (``row["state"]``) or position, as ``sqlite3.Row`` allowed.  This module keeps that
contract on PostgreSQL too: ``?`` becomes psycopg's ``%s``, and a row is a ``Record`` (a tuple
that also answers to its column names and ``keys()``, so ``dict(row)`` works).  SQLAlchemy
opens the connection (engine, dialect, Alembic's migrations); the statements then go to the
driver's own connection, in transactions this module begins and commits itself:
``BEGIN IMMEDIATE`` on SQLite (one writer at a time, as before), ``BEGIN`` on PostgreSQL,
where a step that need not survive a power cut commits with ``synchronous_commit=off`` (the
counterpart of SQLite's ``synchronous=NORMAL``): the session's default, so such a step costs no
round trip more than its statements; a durable one sets it ``on`` in the same round trip as ``BEGIN``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_SQLITE_LEVEL = {True: "FULL", False: "NORMAL"}


class Record(tuple):
    """A row by position and by column name, like ``sqlite3.Row`` (a missing name: IndexError)."""

    __slots__ = ()
    _keys: tuple[str, ...] = ()
    _positions: dict[str, int] = {}

    def __getitem__(self, key):  # noqa: ANN001 - int, slice or column name
        if isinstance(key, str):
            try:
                key = self._positions[key]
            except KeyError:
                raise IndexError(f"No item with that key: {key}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._keys)


@functools.lru_cache(maxsize=256)
def _record_type(keys: tuple[str, ...]) -> type[Record]:
    return type("Record", (Record,), {"__slots__": (), "_keys": keys, "_positions": {k: i for i, k in enumerate(keys)}})


@functools.lru_cache(maxsize=1024)
def _to_psycopg(sql: str) -> str:
    """``?`` placeholders (outside quoted text) as ``%s``, and every literal ``%`` doubled."""
    out: list[str] = []
    quote = ""
    for ch in sql:
        if ch == "%":
            out.append("%%")
        elif quote:
            out.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        else:
            out.append("%s" if ch == "?" else ch)
    return "".join(out)


class Cursor:
    """What ``execute`` returns: rows as ``Record``, fetched one, all, or by iteration."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor
        description = cursor.description
        self._type = _record_type(tuple(d[0] for d in description)) if description else None

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> Record | None:
        found = self._cursor.fetchone()
        return None if found is None else self._type(found)

    def fetchall(self) -> list[Record]:
        kind = self._type
        return [kind(r) for r in self._cursor.fetchall()] if kind else []

    def __iter__(self) -> Iterator[Record]:
        kind = self._type
        for found in self._cursor:
            yield kind(found)


class Connection:
    """The ledger's statements on the driver's connection (what ``Ledger._transaction`` yields)."""

    def __init__(self, dbapi: Any, dialect: str) -> None:
        self.dbapi = dbapi
        self.dialect = dialect
        self.postgresql = dialect == "postgresql"

    def execute(self, sql: str, params: tuple | list = ()) -> Cursor:
        cursor = self.dbapi.cursor()
        if self.postgresql:
            if params:
                cursor.execute(_to_psycopg(sql), tuple(params))
            else:
                cursor.execute(sql)
        else:
            cursor.execute(sql, tuple(params))
        return Cursor(cursor)

    def executemany(self, sql: str, seq: list[tuple]) -> None:
        cursor = self.dbapi.cursor()
        cursor.executemany(_to_psycopg(sql) if self.postgresql else sql, [tuple(p) for p in seq])


class Database:
    """One open ledger: the SQLAlchemy engine and connection, and the driver connection they hold."""

    def __init__(self, engine: Any, connection: Any, location_text: str, *, driver: Any = None,
                 dialect: str | None = None) -> None:
        """From SQLAlchemy's ``engine`` and ``connection``; or, for a SQLite file whose schema is
        current (nothing for Alembic to do), from the driver's connection alone (``driver``,
        ``dialect``; ``engine`` and ``connection`` None): a command starts without importing SQLAlchemy."""
        self.engine = engine
        self.sa_connection = connection
        self.name = location_text  # for messages: a path, or the URL without its password
        self.dialect = dialect or engine.dialect.name
        self.postgresql = self.dialect == "postgresql"
        self.conn = Connection(driver if driver is not None else connection.connection.dbapi_connection, self.dialect)
        self._sqlite_level = "FULL"
        self.in_transaction = False
        if self.postgresql:  # the session's default; a durable step turns it on for itself (one round trip fewer per step)
            self.conn.execute("SET synchronous_commit TO off")

    def close(self) -> None:
        if self.sa_connection is None:
            self.conn.dbapi.close()
            return
        try:
            self.sa_connection.close()
        finally:
            self.engine.dispose()

    @contextmanager
    def transaction(self, *, durable: bool = False, write: bool = True) -> Iterator[Connection]:
        """One atomic step; see ``Ledger._transaction``.  ``write=False`` (reads): no write lock."""
        conn = self.conn
        if self.postgresql:
            conn.execute("BEGIN; SET LOCAL synchronous_commit TO on" if durable else "BEGIN")
        else:
            level = _SQLITE_LEVEL[durable]
            if level != self._sqlite_level:
                conn.execute(f"PRAGMA synchronous={level}")
                self._sqlite_level = level
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        self.in_transaction = True
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        finally:
            self.in_transaction = False

    def _rollback(self) -> None:
        raw = self.conn.dbapi
        if self.postgresql:
            try:
                self.conn.execute("ROLLBACK")
            except Exception:  # the connection itself failed: nothing left to roll back
                pass
        elif raw.in_transaction:  # SQLite may have rolled back already (disk full)
            self.conn.execute("ROLLBACK")

    def query(self, sql: str, params: tuple | list = ()) -> list[Record]:
        """A read outside any step: SQLite reads a snapshot without locking; PostgreSQL autocommits."""
        return self.conn.execute(sql, params).fetchall()

    def cursor(self, sql: str, params: tuple | list = ()) -> Cursor:
        return self.conn.execute(sql, params)
