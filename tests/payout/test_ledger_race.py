"""Two first runs at the same moment on a new ledger: one creates it, the other waits, never a traceback.

Before creation was atomic, 1-2 pairs in 12 crashed ("table batches already exists",
"duplicate column name: output_path") or refused the half-created file as foreign.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from batch_payouts.errors import BatchError
from batch_payouts.payout.ledger import Ledger
from batch_payouts.payout.ledger_schema import MIGRATIONS
from conftest import API_KEY, all_at_once, beneficiary, write_csv


def _open_together(path, openers: int) -> list[str]:
    """Open ``path`` from ``openers`` threads released at once; what each one got."""
    results: list[str] = [""] * openers

    def open_it(slot: int) -> None:
        try:
            with Ledger(path) as ledger:
                version = ledger._query("PRAGMA user_version")[0][0]
                results[slot] = f"ok {version} {len(ledger.batches())}"
        except BatchError as error:
            results[slot] = f"refused {error.message('en')}"
        except Exception as error:  # the bug this test exists for: a raw sqlite3 error
            results[slot] = f"crash {type(error).__name__}: {error}"

    assert all_at_once(openers, open_it) == []  # open_it says what each got, errors included
    return results


def test_fifty_races_of_first_opens_on_a_new_ledger_all_succeed(tmp_path):
    for attempt in range(50):
        path = tmp_path / f"race{attempt}" / "ledger.sqlite"
        results = _open_together(path, 3)
        assert results == [f"ok {len(MIGRATIONS)} 0"] * 3, (attempt, results)


def test_an_empty_file_being_created_is_not_foreign(tmp_path):
    path = tmp_path / "ledger.sqlite"
    path.touch()  # another process has just created it and not yet written a byte
    with Ledger(path) as ledger:
        assert ledger.batches() == []
    bare = tmp_path / "bare.sqlite"
    import sqlite3

    sqlite3.connect(bare).execute("PRAGMA journal_mode=WAL").close()  # a header, no tables yet
    with Ledger(bare) as ledger:
        assert ledger._query("PRAGMA user_version")[0][0] == len(MIGRATIONS)


@pytest.mark.slow
def test_two_real_first_runs_at_once_one_pays_the_other_waits_or_is_refused(tmp_path):
    """Real ``batch-payouts run`` pairs on a fresh ledger against one sandbox: every row paid once,
    each process ends with 0 (it ran, or found everything done) or 75 ("try later") with a message; no traceback."""
    from batch_payouts.sandbox import Sandbox

    with Sandbox() as sandbox:
        for pair in range(3):
            folder = tmp_path / f"pair{pair}"
            folder.mkdir()
            source = write_csv(folder / "pagos.csv", [beneficiary(pair * 10 + n) for n in range(1, 4)])
            env = {**os.environ, "CONEKTA_API_KEY": API_KEY, "BATCH_PAYOUTS_LEDGER": str(folder / "ledger.sqlite")}
            command = [sys.executable, "-m", "batch_payouts", "run", str(source), "--api-base", sandbox.url,
                       "--lang", "en"]
            runs = [subprocess.Popen([*command, "--output", str(folder / f"out{n}.csv")], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in (1, 2)]
            outputs = [run.communicate(timeout=120) for run in runs]
            codes = [run.returncode for run in runs]
            for (out, err), code in zip(outputs, codes):
                assert "Traceback" not in err and "sqlite3" not in err, err
                assert code in (0, 75), (code, err)
                if code == 75:
                    assert "already running" in err, err
            assert 0 in codes, outputs
        orders = sandbox.payout_orders(API_KEY)
        assert len(orders) == 9
        assert len({(o["metadata"]["batch_id"], o["metadata"]["row_key"]) for o in orders}) == 9
