"""Opening a SQLite ledger costs no SQLAlchemy and no Alembic import when its schema is current
or the file is new (issue 17: < 0.5 s from exec to first request); an older file still upgrades
through Alembic.  A new file made with the driver alone is the file Alembic would have made."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

from batch_payouts.payout import ledger_open, ledger_schema
from batch_payouts.payout.ledger import Ledger

OPEN_AND_SAY = (
    "import sys\n"
    "from batch_payouts.payout.ledger import Ledger\n"
    "with Ledger(sys.argv[1]) as ledger:\n"
    "    ledger.batches()\n"
    "print(sorted({name.split('.')[0] for name in sys.modules} & {'sqlalchemy', 'alembic'}))\n"
)


def _open(path) -> str:
    done = subprocess.run([sys.executable, "-c", OPEN_AND_SAY, str(path)], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _shape(path) -> dict:
    """Everything about a ledger file's schema a later upgrade or `ledger copy` could look at."""
    conn = sqlite3.connect(path)
    try:
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        indexes = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='index' ORDER BY name")]
        return {
            "objects": sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall(), key=repr),
            "columns": {t: conn.execute(f"PRAGMA table_xinfo({t})").fetchall() for t in tables},
            "indexes": {i: conn.execute(f"PRAGMA index_xinfo({i})").fetchall() for i in indexes},
            "pragmas": [conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("user_version", "application_id", "journal_mode")],
            "alembic_version": conn.execute("SELECT version_num FROM alembic_version").fetchall(),
        }
    finally:
        conn.close()


def _made_by_alembic(path, monkeypatch) -> None:
    """A new ledger created the way it was before: every step through Alembic's upgrade."""
    with monkeypatch.context() as patch:
        patch.setattr(ledger_open, "create_sqlite", lambda database: False)
        Ledger(path).close()


def test_a_new_and_a_current_sqlite_ledger_open_with_the_driver_alone(tmp_path):
    path = tmp_path / "ledger.sqlite"
    assert _open(path) == "[]"  # a new file: its tables made by sqlite3 from the one migration history
    assert _open(path) == "[]"  # now current: sqlite3 alone


def test_a_new_ledger_made_with_the_driver_alone_is_the_one_alembic_makes(tmp_path, monkeypatch):
    fast, alembic = tmp_path / "fast.sqlite", tmp_path / "alembic.sqlite"
    Ledger(fast).close()
    _made_by_alembic(alembic, monkeypatch)
    assert _shape(fast) == _shape(alembic)
    assert _shape(fast)["alembic_version"] == [(ledger_schema.head_revision(),)]
    assert _shape(fast)["pragmas"] == [len(ledger_schema.MIGRATIONS), ledger_schema.APPLICATION_ID, "wal"]


def test_a_ledger_made_with_the_driver_alone_upgrades_through_alembic_later(tmp_path, monkeypatch):
    """Made by an older batch-payouts (three steps) the fast way, opened by this one: Alembic
    takes it from its stamp to the head, and it ends as a ledger made now."""
    old, now = tmp_path / "old.sqlite", tmp_path / "now.sqlite"
    with monkeypatch.context() as patch:
        patch.setattr(ledger_schema, "MIGRATIONS", ledger_schema.MIGRATIONS[:3])
        with Ledger(old) as ledger:
            assert ledger._query("SELECT version_num FROM alembic_version")[0][0] == "0003"
            with ledger._transaction() as conn:
                conn.execute("INSERT INTO customers (key_fingerprint, email, customer_id, created_at) "
                             "VALUES ('kf', 'ana@ejemplo.mx', 'cus_ana', 1)")
    assert _open(old) == "['alembic', 'sqlalchemy']"  # the upgrade: through Alembic
    assert _open(old) == "[]"
    _made_by_alembic(now, monkeypatch)
    upgraded, fresh = _shape(old), _shape(now)
    assert upgraded == fresh
    with Ledger(old) as ledger:
        assert ledger.customer_for("kf", "ana@ejemplo.mx") == "cus_ana"


def test_a_legacy_ledger_is_upgraded_then_opens_light(tmp_path):
    import shutil
    from pathlib import Path

    legacy = sorted((Path(__file__).parent / "fixtures").glob("legacy-v*.sqlite"))[0]
    path = tmp_path / "ledger.sqlite"
    shutil.copy(legacy, path)
    assert _open(path) == "['alembic', 'sqlalchemy']"
    assert _open(path) == "[]"
