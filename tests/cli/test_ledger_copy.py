"""`batch-payouts ledger copy`: a team's SQLite history moved into PostgreSQL, intact."""

from __future__ import annotations

import shutil
from pathlib import Path

from batch_payouts.payout.ledger import Ledger
from conftest import beneficiary, write_csv

LEGACY = Path(__file__).parents[1] / "payout" / "fixtures" / "legacy-v3.sqlite"


def test_copy_a_legacy_file_into_postgresql_refuses_a_non_empty_target_and_merges(tmp_path, cli, pg_cluster):
    source = shutil.copy(LEGACY, tmp_path / "old.sqlite")
    url = pg_cluster.new_database()
    done = cli("ledger", "copy", "--from", f"sqlite:///{source}", "--to", url)
    assert done.exit_code == 0, done.output
    assert "rows: 3" in done.output
    with Ledger(source) as old, Ledger(url) as new:
        for table in ("batches", "rows", "intents", "customers", "audit_heads"):
            mine = sorted(map(tuple, old._query(f"SELECT * FROM {table}")))
            theirs = sorted(map(tuple, new._query(f"SELECT * FROM {table}")))
            assert theirs == mine, table  # the same records, value for value
        assert new._query("SELECT count(*) FROM locks")[0][0] == 0  # a lock is a process's, not history
        assert new.customer_for("kf1", "ana@ejemplo.mx") == "cus_ana"
    again = cli("ledger", "copy", "--from", str(source), "--to", url)
    assert again.exit_code == 2 and "--merge" in again.output
    merged = cli("ledger", "copy", "--from", str(source), "--to", url, "--merge")
    assert merged.exit_code == 0, merged.output
    with Ledger(url) as new:
        assert new._query("SELECT count(*) FROM rows")[0][0] == 3


def test_a_copied_ledger_keeps_exactly_once(sandbox, env, cli, pg_cluster):
    """Rows paid on the file are not paid again from PostgreSQL after the move."""
    source = write_csv(env / "pagos.csv", [beneficiary(n) for n in range(1, 4)])
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    url = pg_cluster.new_database()
    assert cli("ledger", "copy", "--from", env / "ledger.sqlite", "--to", url).exit_code == 0
    rerun = cli("run", source, "--api-base", sandbox.url, "--ledger", url)
    assert rerun.exit_code == 0, rerun.output
    assert len(sandbox.payout_orders()) == 3


def test_copy_from_a_missing_file_is_a_clear_error(tmp_path, cli):
    done = cli("ledger", "copy", "--from", tmp_path / "nope.sqlite", "--to", tmp_path / "new.sqlite")
    assert done.exit_code == 2 and "nope.sqlite" in done.output
