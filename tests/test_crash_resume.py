"""Crash and interrupt: the real CLI as a subprocess, killed mid-batch, then rerun.

The invariant: however the run ends, after reruns the sandbox holds exactly one
payout order per valid row.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from batch_payouts.sandbox import Faults, Sandbox
from conftest import API_KEY, beneficiary, write_csv

ROWS = 12


def _start(source, sandbox, ledger, *extra):
    env = {**os.environ, "CONEKTA_API_KEY": API_KEY, "BATCH_PAYOUTS_LEDGER": str(ledger)}
    return subprocess.Popen(
        [sys.executable, "-m", "batch_payouts", "run", str(source), "--api-base", sandbox.url, *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _posts(sandbox) -> int:
    return sum(1 for r in sandbox.request_log if r["method"] == "POST")


def _wait_for_posts(sandbox, count, process, timeout=60):
    deadline = time.monotonic() + timeout
    while _posts(sandbox) < count and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)


def _assert_exactly_once(sandbox, rows):
    orders = sandbox.payout_orders()
    keys = [o["metadata"]["row_key"] for o in orders]
    assert len(keys) == len(set(keys)) == rows, f"{len(keys)} orders, {len(set(keys))} distinct rows"


@pytest.mark.parametrize("kill_after_posts", [1, 2, 5, 8, 13, 20])
def test_sigkill_at_any_point_then_rerun_pays_each_row_once(tmp_path, kill_after_posts):
    source = write_csv(tmp_path / "pagos.csv", [beneficiary(n) for n in range(1, ROWS + 1)])
    ledger = tmp_path / "ledger.sqlite"
    with Sandbox(faults=Faults(latency_ms=15, drop_after_commit_rate=0.1, seed=kill_after_posts)) as sandbox:
        victim = _start(source, sandbox, ledger)
        _wait_for_posts(sandbox, kill_after_posts, victim)
        victim.send_signal(signal.SIGKILL)
        victim.communicate()
        sandbox.set_faults(Faults())
        for _ in range(3):  # a rerun resolves everything; allow one more for rows left unknown
            rerun = _start(source, sandbox, ledger)
            out, err = rerun.communicate(timeout=120)
            if rerun.returncode == 0:
                break
        assert rerun.returncode == 0, out + err + (tmp_path / "pagos.results.csv").read_text(encoding="utf-8-sig")
        _assert_exactly_once(sandbox, ROWS)


def test_ctrl_c_stops_cleanly_writes_the_partial_sheet_and_exits_130(tmp_path):
    source = write_csv(tmp_path / "pagos.csv", [beneficiary(n) for n in range(1, ROWS + 1)])
    ledger = tmp_path / "ledger.sqlite"
    with Sandbox(faults=Faults(latency_ms=40)) as sandbox:
        victim = _start(source, sandbox, ledger)
        _wait_for_posts(sandbox, 4, victim)
        victim.send_signal(signal.SIGINT)
        _out, err = victim.communicate(timeout=60)
        assert victim.returncode == 130, err
        assert "Traceback" not in err
        partial = (tmp_path / "pagos.results.csv").read_text(encoding="utf-8-sig")
        assert "created" in partial and "not_sent" in partial
        rerun = _start(source, sandbox, ledger)
        rerun.communicate(timeout=120)
        assert rerun.returncode == 0
        _assert_exactly_once(sandbox, ROWS)
