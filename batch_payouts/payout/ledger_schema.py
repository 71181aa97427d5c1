"""The ledger file itself: its tables, their upgrades, and opening it safely.

Kept apart from ``ledger.Ledger`` (what the journal records) because this part
answers different questions -- is this file ours, which schema version is it,
who creates the tables when two first runs start together -- and changes for
different reasons: a new column is a new ``MIGRATIONS`` step here, never an
edit of an old one, so every existing ledger upgrades in place.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from batch_payouts.errors import BatchError, TryLater
from batch_payouts.i18n import Text
from batch_payouts.states import sql_state_check
from batch_payouts.storage import DiskFull, is_disk_full

APPLICATION_ID = 0x42504C44  # "BPLD": marks a file as ours, so a foreign one is never touched

# The states and the CHECK on them come from `states`, the one place that names them.

MIGRATIONS: list[str] = [
    # 1: the initial journal
    """
    CREATE TABLE batches (
        batch_id TEXT PRIMARY KEY,
        input_name TEXT NOT NULL,
        input_sha256 TEXT NOT NULL,
        key_fingerprint TEXT NOT NULL,
        api_base TEXT NOT NULL,
        livemode INTEGER,
        rows_total INTEGER NOT NULL,
        operator TEXT NOT NULL,
        host TEXT NOT NULL,
        first_run_at REAL NOT NULL,
        last_run_at REAL NOT NULL,
        runs INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE rows (
        batch_id TEXT NOT NULL REFERENCES batches(batch_id),
        row_key TEXT NOT NULL,
        row_number INTEGER NOT NULL,
        email TEXT NOT NULL,
        amount INTEGER NOT NULL,
        currency TEXT NOT NULL,
        reason TEXT NOT NULL,
        payout_fingerprint TEXT NOT NULL,
        state TEXT NOT NULL CHECK (""" + sql_state_check() + """),
        customer_id TEXT,
        payout_order_id TEXT,
        reference TEXT,
        expires_at INTEGER,
        order_status TEXT,
        error_code TEXT,
        error_message TEXT,
        http_status INTEGER,
        log_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at REAL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (batch_id, row_key)
    );
    CREATE INDEX rows_by_fingerprint ON rows (payout_fingerprint, state);
    CREATE INDEX rows_by_key ON rows (row_key, state);
    CREATE TABLE intents (
        idempotency_key TEXT PRIMARY KEY,
        batch_id TEXT NOT NULL,
        row_key TEXT NOT NULL,
        operation TEXT NOT NULL,
        request_body TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('in_flight','succeeded','failed','unknown')),
        object_id TEXT,
        http_status INTEGER,
        log_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        first_sent_at REAL NOT NULL,
        finished_at REAL
    );
    CREATE TABLE customers (
        key_fingerprint TEXT NOT NULL,
        email TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (key_fingerprint, email)
    );
    CREATE TABLE locks (
        batch_id TEXT PRIMARY KEY,
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        operator TEXT NOT NULL,
        acquired_at REAL NOT NULL
    );
    """,
    # 2: what the operations commands need (status refresh, cancel, audit, lookups by results file)
    """
    ALTER TABLE batches ADD COLUMN output_path TEXT;
    ALTER TABLE batches ADD COLUMN api_version TEXT;
    ALTER TABLE rows ADD COLUMN status_checked_at REAL;
    ALTER TABLE rows ADD COLUMN cancelled_at REAL;
    CREATE INDEX batches_by_output ON batches (output_path);
    CREATE TABLE audit_heads (
        path TEXT PRIMARY KEY,
        batch_id TEXT,
        last_hash TEXT NOT NULL,
        lines INTEGER NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    # 3: a failure's message as its parameters (JSON), so a rerun in another language renders it anew
    """
    ALTER TABLE rows ADD COLUMN error_params TEXT;
    """,
    # 5 (issue 16): after the payout -- Conekta's events (webhooks and GET /events) recorded once each,
    # when an order was cashed or expired, the link between an expired row and the order that
    # paid it again, and when the last summary email went out
    """
    CREATE TABLE events (
        event_id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        payout_order_id TEXT,
        reference TEXT,
        status TEXT,
        event_created_at INTEGER,
        received_at REAL NOT NULL,
        source TEXT NOT NULL,
        outcome TEXT NOT NULL,
        batch_id TEXT,
        row_key TEXT,
        synced_at REAL
    );
    CREATE INDEX events_by_received ON events (received_at);
    ALTER TABLE rows ADD COLUMN cashed_at REAL;
    ALTER TABLE rows ADD COLUMN expired_at REAL;
    ALTER TABLE rows ADD COLUMN reissue_of TEXT;
    ALTER TABLE rows ADD COLUMN reissued_as TEXT;
    CREATE INDEX rows_by_order ON rows (payout_order_id);
    CREATE INDEX rows_by_reference ON rows (reference);
    CREATE TABLE summaries (
        summary_id TEXT PRIMARY KEY,
        sent_at REAL NOT NULL,
        since REAL NOT NULL,
        recipients TEXT NOT NULL
    );
    """,
]

FOREIGN_FILE = Text(
    es="El archivo de bitácora «{path}» no es una bitácora de batch-payouts (o está dañado): "
    "no se modificó. Indica otra ruta con --ledger o BATCH_PAYOUTS_LEDGER.",
    en="The ledger file '{path}' is not a batch-payouts ledger (or it is damaged): "
    "it was left untouched. Choose another path with --ledger or BATCH_PAYOUTS_LEDGER.",
)
BUSY_FILE = Text(
    es="La bitácora «{path}» está ocupada por otro proceso desde hace más de 30 segundos: no se envió nada. "
    "Espera a que termine y vuelve a ejecutar.",
    en="The ledger '{path}' has been held by another process for over 30 seconds: nothing was sent. "
    "Wait for it to finish and run again.",
)
NEWER_FILE = Text(
    es="La bitácora «{path}» fue creada por una versión más nueva de batch-payouts: actualiza el programa.",
    en="The ledger '{path}' was written by a newer batch-payouts: upgrade the tool.",
)


def connect(path: Path) -> sqlite3.Connection:
    """Open the file, refusing a foreign one, then create or upgrade its tables.

    Two first runs may open a brand-new ledger at the same moment: one may see
    the file the other has just created, still empty or without tables.  That
    file is not "foreign" (only one holding someone else's tables or
    application id is), and every schema step reads ``user_version`` inside its
    own ``BEGIN IMMEDIATE`` transaction, so exactly one process creates the
    tables and the other waits, then finds them there.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    except sqlite3.Error as exc:
        raise _open_error(path, exc) from exc
    try:
        # One statement, so both come from the same snapshot even while another process creates the file.
        app_id, has_tables = conn.execute(
            "SELECT (SELECT application_id FROM pragma_application_id), (SELECT count(*) FROM sqlite_master)"
        ).fetchone()
        if app_id != APPLICATION_ID and (app_id or has_tables):
            raise BatchError(FOREIGN_FILE, path=str(path))
        _use_wal(conn)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.row_factory = sqlite3.Row
        _migrate(conn, path)
    except BaseException as exc:
        conn.close()
        if isinstance(exc, sqlite3.Error):
            raise _open_error(path, exc) from exc
        raise
    return conn


def _open_error(path: Path, exc: sqlite3.Error) -> BatchError:
    """What to tell the user when SQLite refuses to open or upgrade the file."""
    if is_disk_full(exc):
        return DiskFull(path, "ledger")
    if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        return TryLater(BUSY_FILE, path=str(path))
    return BatchError(FOREIGN_FILE, path=str(path))


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the missing ``MIGRATIONS`` steps, one transaction each.

    ``user_version`` is read inside the step's write transaction: a process that
    waited for another one's step sees it done and does not run it twice
    ("table batches already exists", "duplicate column name").
    """
    if conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS):
        return  # up to date (versions only grow): readers such as `show` need no write lock
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise BatchError(NEWER_FILE, path=str(path))
            if version == len(MIGRATIONS):
                conn.execute("COMMIT")
                return
            for statement in filter(str.strip, MIGRATIONS[version].split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


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
