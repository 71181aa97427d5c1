"""The ledger's database itself: its tables, their upgrades, and opening a PostgreSQL one.

Kept apart from ``ledger.Ledger`` (what the journal records) because this part
answers different questions -- is this file ours, which schema version is it,
who creates the tables when two first runs start together -- and changes for
different reasons: a new column is a new ``MIGRATIONS`` step here, never an
edit of an old one, so every existing ledger upgrades in place.

Two engines, one schema: a SQLite file (the default) or a PostgreSQL database,
both through SQLAlchemy Core.  The steps are portable SQL; each one is an Alembic
revision (``payout/migrations/versions/``) that runs it through ``run_step``, which
fixes the few types that differ (REAL is single precision on PostgreSQL).  A
SQLite file written before Alembic (``PRAGMA user_version`` 1..3) is stamped at
its version and upgraded from there, its history intact; ``user_version`` is
still written, so an older batch-payouts refuses a newer file as it always did.
A brand-new SQLite file gets the same steps and stamp from ``create_sqlite`` through
the driver alone (start-up); opening a SQLite file is ``ledger_open``'s.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from batch_payouts import ledger_address
from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue
from batch_payouts.states import sql_state_check

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

APPLICATION_ID = 0x42504C44  # "BPLD": marks a file as ours, so a foreign one is never touched

# The states and the CHECK on them come from `states`, the one place that names them.

POSTGRESQL_ONLY = "/* postgresql */"  # a step's statement that starts so runs on PostgreSQL alone
CREATED_CHANNEL = "batch_payouts_created"  # step 8's notices: a row of the batch in the payload was created

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
    # 4 (issue 15, four eyes): users and roles, second factors, sign-in failures, the approval policy,
    # approval requests and decisions, and the team's own hash-chained event log (batch_payouts/team/)
    """
    CREATE TABLE team_users (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        roles TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0,
        totp_secret TEXT,
        totp_enrolled_at REAL,
        source TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE team_recovery_codes (
        name TEXT NOT NULL,
        code_hash TEXT NOT NULL,
        used_at REAL,
        PRIMARY KEY (name, code_hash)
    );
    CREATE TABLE team_signin_failures (
        failure_id TEXT PRIMARY KEY,
        scope TEXT NOT NULL,
        failed_at REAL NOT NULL
    );
    CREATE INDEX team_signin_failures_by_scope ON team_signin_failures (scope, failed_at);
    CREATE TABLE team_settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_by TEXT,
        updated_at REAL NOT NULL
    );
    CREATE TABLE approval_requests (
        request_id TEXT PRIMARY KEY,
        batch_id TEXT NOT NULL,
        input_name TEXT NOT NULL,
        input_sha256 TEXT NOT NULL,
        plan_sha256 TEXT NOT NULL,
        rows_to_send INTEGER NOT NULL,
        totals TEXT NOT NULL,
        key_fingerprint TEXT NOT NULL,
        needed INTEGER NOT NULL,
        submitted_by TEXT NOT NULL,
        submitted_at REAL NOT NULL,
        upload_id TEXT,
        problems INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL CHECK (state IN ('pending','approved','rejected')),
        reason TEXT,
        decided_at REAL
    );
    CREATE INDEX approval_requests_by_pin ON approval_requests (batch_id, input_sha256, plan_sha256, key_fingerprint);
    CREATE TABLE approval_decisions (
        request_id TEXT NOT NULL REFERENCES approval_requests(request_id),
        approver TEXT NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('approved','rejected')),
        reason TEXT,
        ip TEXT,
        decided_at REAL NOT NULL,
        PRIMARY KEY (request_id, approver)
    );
    CREATE TABLE team_events (
        seq INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT,
        ip TEXT,
        action TEXT NOT NULL,
        detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
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
    # 6 (issue 15, second round): who submitted which batch, so a preparer sees only their own
    # batches (team/owners.py); step 6 is another branch's (issue 17), the lead renumbers
    """
    CREATE TABLE team_batch_owners (
        batch_id TEXT NOT NULL,
        name TEXT NOT NULL,
        since REAL NOT NULL,
        PRIMARY KEY (batch_id, name)
    );
    CREATE INDEX team_batch_owners_by_name ON team_batch_owners (name);
    """,
    # 7 (issue 17): the repeat guard's indexes without the row's state.  Every change of state
    # (pending, in flight, created) moved the row in both, so each sent row wrote four more index
    # pages on SQLite, and on PostgreSQL no update of a row could be HOT (made without touching
    # any index).  A fingerprint or a folio has a handful of rows; their state is read from the row.
    """
    DROP INDEX rows_by_fingerprint;
    CREATE INDEX rows_by_fingerprint ON rows (payout_fingerprint);
    DROP INDEX rows_by_key;
    CREATE INDEX rows_by_key ON rows (row_key);
    """,
    # 8 (issues 14 and 17): PostgreSQL says when a row becomes created, to whoever listens
    # (``ledger_db.Database.foreign_changes``): a batch's preloaded repeat guard stays valid until
    # another connection creates a payout, as ``PRAGMA data_version`` tells on SQLite, which needs
    # nothing here.  One notice per channel and batch in a transaction (PostgreSQL folds the rest).
    f"""
    {POSTGRESQL_ONLY} CREATE FUNCTION batch_payouts_row_created() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('{CREATED_CHANNEL}', NEW.batch_id);
        RETURN NULL;
    END $$;
    {POSTGRESQL_ONLY} CREATE TRIGGER rows_created AFTER INSERT OR UPDATE OF state ON rows
        FOR EACH ROW WHEN (NEW.state = 'created') EXECUTE FUNCTION batch_payouts_row_created();
    """,
]


# SQLite files written before Alembic kept their step count in PRAGMA user_version; revision
# "000N" is "MIGRATIONS[:N] applied", so such a file is stamped at its version and upgraded on.
LEGACY_STEPS = 3
MIGRATION_LOCK = (APPLICATION_ID, 0)  # PostgreSQL advisory lock: one process migrates at a time
_POSTGRESQL_TYPES = (
    (re.compile(r"\bINTEGER\s+PRIMARY\s+KEY\b", re.IGNORECASE), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b", re.IGNORECASE), "BIGINT"),  # cents and epoch seconds outgrow 32 bits
    (re.compile(r"\bREAL\b", re.IGNORECASE), "DOUBLE PRECISION"),  # REAL is 4 bytes there: timestamps would round
)


def revision_id(step: int) -> str:
    """The Alembic revision that applies ``MIGRATIONS[step - 1]``."""
    return f"{step:04d}"


def head_revision() -> str:
    return revision_id(len(MIGRATIONS))


def step_statements(sql: str, dialect: str) -> list[str]:
    """A step's statements for one engine: the portable SQL, with PostgreSQL's types fixed, and
    the statements marked ``POSTGRESQL_ONLY`` there alone.  A ``;`` inside ``$$ ... $$`` (a
    function's body) does not end a statement."""
    statements, current = [], ""
    for n, part in enumerate(sql.split("$$")):
        if n % 2:  # inside $$ ... $$
            current += f"$${part}$$"
            continue
        first, *rest = part.split(";")
        if rest:  # the statement under way ends here; the last piece starts the next one
            statements += [current + first, *rest[:-1]]
            current = rest[-1]
        else:
            current += first
    statements = [s.strip() for s in statements + [current] if s.strip()]
    if dialect != "postgresql":
        return [s for s in statements if not s.startswith(POSTGRESQL_ONLY)]
    statements = [s.removeprefix(POSTGRESQL_ONLY).strip() for s in statements]
    for pattern, replacement in _POSTGRESQL_TYPES:
        statements = [pattern.sub(replacement, s) for s in statements]
    return statements


def run_step(step: int) -> None:
    """The body of revision ``000N``'s ``upgrade()``: run ``MIGRATIONS[N - 1]`` on this engine."""
    from alembic import op

    bind = op.get_bind()
    for statement in step_statements(MIGRATIONS[step - 1], bind.dialect.name):
        bind.exec_driver_sql(statement)


# Alembic's own table exactly as Alembic creates it on SQLite (the text sqlite_master keeps), so a
# file made by ``create_sqlite`` is one Alembic upgrades later as if it had made it itself.
ALEMBIC_VERSION_TABLE = ("CREATE TABLE alembic_version (\n\tversion_num VARCHAR(32) NOT NULL, \n"
                         "\tCONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n)")


def create_sqlite(database: Any) -> bool:
    """Give a brand-new SQLite file its tables with the driver alone; True if it is at the head now.

    The same steps Alembic's ``upgrade`` would run (``MIGRATIONS`` through ``step_statements``),
    ``alembic_version`` stamped at the head and the pragmas ``_migrate`` sets, in one durable
    ``BEGIN IMMEDIATE`` transaction: what Alembic and SQLAlchemy would leave, without their
    ~0.2 s of imports at a first run's start.  A file not empty once the write lock is held
    (another first run made it meanwhile, or an older one) is left as it is, for ``_migrate``."""
    with database.transaction(durable=True) as conn:
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            return _revision(database)[0] == head_revision()
        conn.execute(ALEMBIC_VERSION_TABLE)
        for step in MIGRATIONS:
            for statement in step_statements(step, "sqlite"):
                conn.execute(statement)
        conn.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (head_revision(),))
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version={len(MIGRATIONS)}")
    return True


# -- PostgreSQL ------------------------------------------------------------------------------------
def _open_postgresql(url: str) -> Any:
    """Connect through libpq with the URL exactly as given, so PGPASSWORD, ~/.pgpass, PGSERVICE
    and every other libpq setting apply; TCP keepalives let the server notice a dead holder of
    a batch lock on another host within about half a minute."""
    name = ledger_address.display(url)
    try:
        import psycopg
    except ImportError as exc:
        raise BatchError(TEXT.NO_DRIVER, reason=str(exc)) from exc
    from batch_payouts.payout.ledger_db import Database

    def new_connection() -> Any:
        return psycopg.connect(url, autocommit=True, application_name="batch-payouts", connect_timeout=10,
                               keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3)

    # First with the driver alone, as on SQLite: a database already at the head revision needs
    # neither Alembic nor SQLAlchemy (their imports and the dialect's first queries: ~0.2 s a command).
    try:
        light = Database(None, None, name, driver=new_connection(), dialect="postgresql", connect=new_connection)
    except Exception as exc:
        raise BatchError(TEXT.UNREACHABLE, path=name, reason=_reason(exc)) from None
    if _prepared_postgresql(light, name, lambda: _revision(light)[0] == head_revision()):
        return light
    try:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool
    except ImportError as exc:
        raise BatchError(TEXT.NO_DRIVER, reason=str(exc)) from exc
    engine = create_engine("postgresql+psycopg://", creator=new_connection, poolclass=NullPool)
    try:
        connection = engine.connect()
    except Exception as exc:
        engine.dispose()
        raise BatchError(TEXT.UNREACHABLE, path=name, reason=_reason(exc)) from None
    database = Database(engine, connection, name, connect=new_connection)
    _prepared_postgresql(database, name, lambda: _migrate(database, name) or True)
    return database


def _prepared_postgresql(database: Any, name: str, then: Any) -> bool:
    """``then()``; True if it says the database is ready (it stays open), else it is closed.  An
    error closes it and says what is wrong."""
    try:
        ready = bool(then())
    except BaseException as exc:
        database.close()
        if isinstance(exc, BatchError):
            raise
        if isinstance(exc, Exception):
            raise BatchError(TEXT.UNREACHABLE, path=name, reason=_reason(exc)) from None
        raise
    if not ready:
        database.close()
    return ready


def _reason(exc: BaseException) -> str:
    """The driver's first line about the failure, with any password masked."""
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    return ledger_address.masked(lines[0] if lines else type(original).__name__)


# -- both ------------------------------------------------------------------------------------------
def _revision(database: Any) -> tuple[str | None, int]:
    """(Alembic revision or None, SQLite ``user_version`` or 0) as the database says now."""
    conn = database.conn
    if database.postgresql:
        has = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()[0]
        legacy = 0
        if not has and conn.execute("SELECT to_regclass('batches') IS NOT NULL").fetchone()[0]:
            raise BatchError(TEXT.FOREIGN_FILE, path=database.name)  # someone else's tables named like ours
    else:
        has = conn.execute("SELECT count(*) FROM sqlite_master WHERE name='alembic_version'").fetchone()[0]
        legacy = conn.execute("PRAGMA user_version").fetchone()[0]
    found = conn.execute("SELECT version_num FROM alembic_version").fetchall() if has else []
    return (found[0][0] if found else None), legacy


def _migrate(database: Any, name: object) -> None:
    """Bring the schema to ``head_revision()``, in one transaction that also reads the version,
    so a process that waited for another one's upgrade finds it done and does not run it again.

    Alembic runs on the SQLAlchemy connection, told a transaction is open (so it neither
    begins nor commits one of its own): the real one is the ``BEGIN`` sent below, and with the
    driver in autocommit mode SQLAlchemy's own commit is a no-op once ours is done."""
    head = head_revision()
    if _revision(database)[0] == head:
        return  # up to date: readers such as `show` need no write lock (nor Alembic loaded)
    bookkeeping = database.sa_connection.begin()
    try:
        with database.transaction(durable=True, pipelined=False) as conn:
            if database.postgresql:
                conn.execute("SELECT pg_advisory_xact_lock(?, ?)", MIGRATION_LOCK)
            current, legacy = _revision(database)
            if current is None and legacy > LEGACY_STEPS:
                raise BatchError(TEXT.NEWER_FILE, path=str(name))
            if current is not None and (not current.isdigit() or int(current) > len(MIGRATIONS)):
                raise BatchError(TEXT.NEWER_FILE, path=str(name))
            if current != head:
                from alembic import command

                config = alembic_config(database.sa_connection)
                if current is None and legacy:
                    command.stamp(config, revision_id(legacy))
                command.upgrade(config, head)  # this code's steps, whatever newer files ship
            if not database.postgresql:  # what an older batch-payouts reads to refuse a newer file
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version={len(MIGRATIONS)}")
    finally:
        bookkeeping.commit()  # after our COMMIT or ROLLBACK: nothing left for the driver to do


def alembic_config(connection: Any = None) -> Any:
    """Alembic's configuration for the migrations shipped in the package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "batch_payouts.payout:migrations")
    config.attributes["connection"] = connection
    return config
