"""Opening a SQLite ledger whose schema is current costs no SQLAlchemy and no Alembic import
(issue 17: < 0.5 s from exec to first request); a new or older file still migrates through Alembic."""

from __future__ import annotations

import subprocess
import sys

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


def test_a_current_sqlite_ledger_opens_with_the_driver_alone_and_a_new_one_migrates_through_alembic(tmp_path):
    path = tmp_path / "ledger.sqlite"
    assert _open(path) == "['alembic', 'sqlalchemy']"  # a new file: its tables made by the one migration history
    assert _open(path) == "[]"  # now current: sqlite3 alone


def test_a_legacy_ledger_is_upgraded_then_opens_light(tmp_path):
    import shutil
    from pathlib import Path

    legacy = sorted((Path(__file__).parent / "fixtures").glob("legacy-v*.sqlite"))[0]
    path = tmp_path / "ledger.sqlite"
    shutil.copy(legacy, path)
    assert _open(path) == "['alembic', 'sqlalchemy']"
    assert _open(path) == "[]"
