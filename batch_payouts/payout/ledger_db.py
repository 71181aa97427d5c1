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

On PostgreSQL each thread takes a connection of its own for a step (``session``: a small pool,
grown on demand up to ``POOL_SIZE``), so the workers of a run overlap their transactions and
their network round trips instead of queueing behind one connection; SQLite keeps its one
connection (it has one writer at a time anyway, and its steps never leave the process).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

_SQLITE_LEVEL = {True: "FULL", False: "NORMAL"}
POOL_SIZE = 16  # PostgreSQL connections one Ledger opens at most (--workers goes to 64: the rest wait their turn)


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

    def __init__(self, cursor: Any, pipeline: Any = None) -> None:
        self._cursor = cursor
        self._pipeline = pipeline  # PostgreSQL inside a step: the results come at the next sync

    @property
    def _type(self) -> type[Record] | None:
        """The rows' type, once the result is here (asked at the first fetch: an INSERT never pays for it)."""
        result = getattr(self._cursor, "pgresult", None)
        if result is not None:  # psycopg: the names straight from libpq's result, no Column objects
            if not result.nfields:
                return None
            return _record_type(tuple(result.fname(i).decode() for i in range(result.nfields)))
        description = self._cursor.description
        return _record_type(tuple(d[0] for d in description)) if description else None

    def _arrived(self) -> Any:
        """The driver's cursor, its result here (inside a PostgreSQL step: after a sync)."""
        if self._pipeline is not None and self._cursor.pgresult is None:
            self._pipeline.sync()
        return self._cursor

    @property
    def rowcount(self) -> int:
        return self._arrived().rowcount

    def fetchone(self) -> Record | None:
        found = self._cursor.fetchone()
        return None if found is None else self._type(found)

    def fetchall(self) -> list[Record]:
        cursor = self._arrived()
        kind = self._type
        return [kind(r) for r in cursor.fetchall()] if kind else []  # no rows (an UPDATE): none

    def __iter__(self) -> Iterator[Record]:
        kind = None
        for found in self._cursor:
            kind = kind or self._type
            yield kind(found)


class Connection:
    """The ledger's statements on the driver's connection (what ``Ledger._transaction`` yields)."""

    def __init__(self, dbapi: Any, dialect: str) -> None:
        self.dbapi = dbapi
        self.dialect = dialect
        self.postgresql = dialect == "postgresql"
        self.pipeline: Any = None  # PostgreSQL: psycopg's pipeline while a step is open (``Database._atomic``)
        self.prepared: dict[str, str] = {}  # PostgreSQL: statement -> its name, prepared by ``ledger_script``

    def execute(self, sql: str, params: tuple | list = ()) -> Cursor:
        cursor = self.dbapi.cursor()
        if self.postgresql:
            if params:
                cursor.execute(_to_psycopg(sql), tuple(params))
            else:
                cursor.execute(sql)
        else:
            cursor.execute(sql, tuple(params))
        return Cursor(cursor, self.pipeline)

    def executemany(self, sql: str, seq: list[tuple]) -> None:
        cursor = self.dbapi.cursor()
        cursor.executemany(_to_psycopg(sql) if self.postgresql else sql, [tuple(p) for p in seq])


class Together:
    """The writes of one PostgreSQL step, gathered and then sent as one statement: all but the last
    become data-modifying ``WITH`` queries of the last one.  One statement is one transaction, so
    they are still all-or-nothing, with no ``BEGIN``/``COMMIT`` around them.  Its parts share one
    snapshot and see none of each other's changes: each must write a table no other part touches."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple]] = []

    def execute(self, sql: str, params: tuple | list = ()) -> None:
        self.statements.append((sql, tuple(params)))

    def statement(self) -> tuple[str, tuple]:
        return together_statement(self.statements)


def together_statement(statements: Sequence[tuple[str, tuple]]) -> tuple[str, tuple]:
    """Writes as one PostgreSQL statement (see ``Together``)."""
    *first, (last, last_params) = statements
    if not first:
        return last, tuple(last_params)
    parts = ", ".join(f"step{n} AS ({sql})" for n, (sql, _) in enumerate(first))
    return f"WITH {parts} {last}", tuple(p for _, params in first for p in params) + tuple(last_params)


class Database:
    """One open ledger: the SQLAlchemy engine and connection, and the driver connection they hold."""

    def __init__(self, engine: Any, connection: Any, location_text: str, *, driver: Any = None,
                 dialect: str | None = None, connect: Any = None) -> None:
        """From SQLAlchemy's ``engine`` and ``connection``; or, for a ledger whose schema is current
        (nothing for Alembic to do), from the driver's connection alone (``driver``, ``dialect``;
        ``engine`` and ``connection`` None): a command starts without importing SQLAlchemy.
        ``connect`` (PostgreSQL) opens one more driver connection: the pool's, a batch lock's."""
        self.connect = connect
        self.engine = engine
        self.sa_connection = connection
        self.name = location_text  # for messages: a path, or the URL without its password
        self.dialect = dialect or engine.dialect.name
        self.postgresql = self.dialect == "postgresql"
        self._own_pids: set[int] = set()  # PostgreSQL: the server processes of this ledger's connections
        self.conn = self._prepared(driver if driver is not None else connection.connection.dbapi_connection)
        self._sqlite_level = "FULL"
        # PostgreSQL's pool (``session``): idle connections (the first one is ``conn``), how many are open,
        # and the connection each thread holds now (a step inside a step reuses it, and sees its writes).
        self._idle: list[Connection] = [self.conn]
        self._opened = 1
        self._pool_cv = threading.Condition(threading.Lock())
        self._held = threading.local()
        self._extra: list[Any] = []  # the driver connections of the pool's other members
        self._closed = False

    def _prepared(self, dbapi: Any) -> Connection:
        conn = Connection(dbapi, self.dialect)
        if self.postgresql:  # the session's default; a durable step turns it on for itself (one round trip fewer per step)
            conn.execute("SET synchronous_commit TO off")
            self._own_pids.add(dbapi.info.backend_pid)
        return conn

    def created_notices(self) -> Any:
        """PostgreSQL: a listener for rows that another connection makes created, from now on
        (``ledger_notices``); close it when done."""
        from batch_payouts.payout.ledger_notices import CreatedNotices

        return CreatedNotices(self.connect, self._own_pids)

    def close(self) -> None:
        with self._pool_cv:
            self._closed = True
            extra, self._extra, self._idle = self._extra, [], []
        try:
            for connection in extra:
                try:
                    connection.close()
                except Exception:  # a connection the server dropped: nothing left to close
                    pass
            if self.sa_connection is None:
                self.conn.dbapi.close()
                return
            self.sa_connection.close()
        finally:
            if self.engine is not None:
                self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Connection]:
        """The connection this thread's step uses.  SQLite: always ``conn`` (the caller holds the
        ledger's lock).  PostgreSQL: one of the pool's, this thread's alone until the step ends --
        so steps of several threads overlap -- and the same one for a step nested in it."""
        if not self.postgresql:
            yield self.conn
            return
        held = getattr(self._held, "conn", None)
        if held is not None:
            yield held
            return
        conn = self._take()
        self._held.conn = conn
        try:
            yield conn
        finally:
            self._held.conn = None
            self._give(conn)

    def _take(self) -> Connection:
        with self._pool_cv:
            while not self._idle and self._opened >= POOL_SIZE:
                self._pool_cv.wait()
            if self._idle:
                return self._idle.pop()
            self._opened += 1
        try:  # outside the pool's lock: connecting takes a round trip or three
            connection = self.connect()
            conn = self._prepared(connection)
        except BaseException:
            with self._pool_cv:
                self._opened -= 1
                self._pool_cv.notify()
            raise
        with self._pool_cv:
            self._extra.append(connection)
        return conn

    def _give(self, conn: Connection) -> None:
        """Back to the pool; a connection left broken or inside a transaction is dropped instead
        (the next step opens a fresh one, so one network failure does not poison later steps)."""
        raw = conn.dbapi
        usable = not raw.closed and not raw.broken and raw.info.transaction_status == 0  # psycopg's IDLE
        with self._pool_cv:
            if usable and not self._closed:
                self._idle.append(conn)
            else:
                self._opened -= 1
                if not raw.closed:
                    raw.close()
            self._pool_cv.notify()

    @contextmanager
    def transaction(self, *, durable: bool = False, write: bool = True, pipelined: bool = True,
                    single: bool = False, together: bool = False, script: bool = False) -> Iterator[Any]:
        """One atomic step; see ``Ledger._transaction``.  ``write=False`` (reads): no write lock.
        ``pipelined=False``: PostgreSQL waits for each statement (Alembic's migrations need that).
        ``single``: the step is one statement, which PostgreSQL runs alone in autocommit -- atomic
        by itself, one round trip and no ``BEGIN``/``COMMIT`` (never with ``durable``).
        ``together``: the step's statements are writes whose results nobody reads, each on a
        table of its own; PostgreSQL gets them as one statement (``Together``), which is as atomic.
        ``script``: PostgreSQL sends the whole transaction as one message once the step's block
        ends (``ledger_script``); the rows its statements return are read after that."""
        assert not ((single or together) and durable)
        with self.session() as conn:
            if script and self.postgresql and conn.pipeline is None:
                from batch_payouts.payout.ledger_script import Script

                gathered = Script()
                yield gathered
                gathered.run(conn, durable)
                return
            if (single or together) and self.postgresql and conn.pipeline is None:
                if not together:
                    yield conn
                    return
                gathered = Together()
                yield gathered
                if gathered.statements:
                    conn.execute(*gathered.statement())
                return
            with self._atomic(conn, durable=durable, write=write, pipelined=pipelined):
                yield conn

    @contextmanager
    def _atomic(self, conn: Connection, *, durable: bool, write: bool, pipelined: bool) -> Iterator[None]:
        if self.postgresql:
            with self._pipelined(conn, durable, pipelined):
                yield
            return
        level = _SQLITE_LEVEL[durable]
        if level != self._sqlite_level:
            conn.execute(f"PRAGMA synchronous={level}")
            self._sqlite_level = level
        with self._begun(conn, "BEGIN IMMEDIATE" if write else "BEGIN"):
            yield

    @contextmanager
    def _begun(self, conn: Connection, begin: str) -> Iterator[None]:
        """``begin``, the step, then ``COMMIT``; rolled back if the step fails (a statement at a time)."""
        conn.execute(begin)
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            self._rollback(conn)
            raise

    @contextmanager
    def _pipelined(self, conn: Connection, durable: bool, pipelined: bool = True) -> Iterator[None]:
        """A PostgreSQL step in psycopg's pipeline mode: ``BEGIN``, the statements and ``COMMIT``
        travel together, and the client waits for the server only where it reads a result (a
        ``fetchone``, a ``rowcount``) and at the end -- one or two round trips a step instead of
        one per statement.  Still one transaction: a statement that fails makes the server skip
        everything after it up to the end of the step, ``COMMIT`` included, and it is rolled back."""
        if conn.pipeline is not None:  # a step inside a step (same thread, same connection): as before, one more BEGIN
            conn.execute("BEGIN")
            yield
            conn.execute("COMMIT")
            return
        if not pipelined:
            with self._begun(conn, "BEGIN; SET LOCAL synchronous_commit TO on" if durable else "BEGIN"):
                yield
            return
        try:
            with conn.dbapi.pipeline() as pipeline:
                conn.pipeline = pipeline
                try:
                    conn.execute("BEGIN")
                    if durable:
                        conn.execute("SET LOCAL synchronous_commit TO on")
                    yield
                    conn.execute("COMMIT")
                finally:
                    conn.pipeline = None
        except BaseException:
            self._rollback(conn)
            raise

    def _rollback(self, conn: Connection) -> None:
        raw = conn.dbapi
        if self.postgresql:
            try:
                conn.execute("ROLLBACK")
            except Exception:  # the connection itself failed: nothing left to roll back
                pass
        elif raw.in_transaction:  # SQLite may have rolled back already (disk full)
            conn.execute("ROLLBACK")

    def query(self, sql: str, params: tuple | list = ()) -> list[Record]:
        """A read outside any step: SQLite reads a snapshot without locking; PostgreSQL autocommits."""
        with self.session() as conn:
            return conn.execute(sql, params).fetchall()

    def cursor(self, sql: str, params: tuple | list = ()) -> Cursor:
        """A read whose rows are taken one by one.  On PostgreSQL the driver holds them all once
        ``execute`` returns, so the connection goes back to the pool at once."""
        with self.session() as conn:
            return conn.execute(sql, params)
