"""Crash and interrupt: the real CLI as a subprocess, killed mid-batch, then rerun.

The invariant: however the run ends, after reruns the sandbox holds exactly one
payout order per valid row.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from batch_payouts.payout.ledger import Ledger
from batch_payouts.sandbox import Faults, Sandbox
from conftest import API_KEY, beneficiary, ctrl_c_reaches_the_child, write_csv

ROWS = 12


def _start(source, sandbox, ledger, *extra):
    env = {**os.environ, "CONEKTA_API_KEY": API_KEY, "BATCH_PAYOUTS_LEDGER": str(ledger)}
    return subprocess.Popen(
        # The CSV results sheet (asked for: the default is .xlsx) is read below with the csv module.
        [sys.executable, "-m", "batch_payouts", "run", str(source), "--api-base", sandbox.url,
         "--output", str(source.with_name("pagos.results.csv")), *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_reaches_the_child,
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


def _rerun_until_done(source, sandbox, ledger, *extra, attempts=3):
    """Rerun (as often as needed, at most ``attempts`` times) until the batch exits 0."""
    for _ in range(attempts):
        rerun = _start(source, sandbox, ledger, *extra)
        out, err = rerun.communicate(timeout=120)
        assert "Traceback" not in err, err
        if rerun.returncode == 0:
            return out, err
    raise AssertionError(f"exit {rerun.returncode}\n{out}{err}")


def _assert_sheet_agrees(sandbox, results_csv):
    """The results sheet and the server agree on every id, reference and amount."""
    orders = {o["id"]: o for o in sandbox.payout_orders()}
    with open(results_csv, encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert [line["status"] for line in lines] == ["created"] * len(lines)
    assert sorted(line["payout_order_id"] for line in lines) == sorted(orders)
    for line in lines:
        order = orders[line["payout_order_id"]]
        assert line["reference"] == order["reference"]
        assert int(line["monto"]) == order["amount"]
        assert line["correo"] == order["customer_info"]["email"]


# Kill points: after the Nth POST reached the sandbox (customers and orders
# interleave: 12 rows make at least 24 POSTs), per worker count.
KILL_AFTER_POSTS = {
    8: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 18, 20],
    1: [1, 2, 3, 4, 5, 6, 7, 9, 11, 13, 15, 17, 19, 21],
}


def _recover_and_check(sandbox, source, ledger, workers: int, results_csv):
    """After the kills: faults off, rerun until done, then each row paid once and the sheet agreeing."""
    sandbox.set_faults(Faults())
    _rerun_until_done(source, sandbox, ledger, "--workers", str(workers))
    _assert_exactly_once(sandbox, ROWS)
    _assert_sheet_agrees(sandbox, results_csv)


@pytest.mark.parametrize(
    "workers,kill_after_posts",
    [(w, n) for w, points in KILL_AFTER_POSTS.items() for n in points],
)
def test_sigkill_at_any_point_then_rerun_pays_each_row_once(tmp_path, ledger_location, workers, kill_after_posts):
    source = write_csv(tmp_path / "pagos.csv", [beneficiary(n) for n in range(1, ROWS + 1)])
    ledger = ledger_location
    faults = Faults(latency_ms=15, drop_after_commit_rate=0.1, seed=kill_after_posts * 10 + workers)
    with Sandbox(faults=faults) as sandbox:
        victim = _start(source, sandbox, ledger, "--workers", str(workers))
        _wait_for_posts(sandbox, kill_after_posts, victim)
        victim.send_signal(signal.SIGKILL)
        victim.communicate()
        assert victim.returncode == -signal.SIGKILL, "finished before the kill point"
        _recover_and_check(sandbox, source, ledger, workers, tmp_path / "pagos.results.csv")


@pytest.mark.parametrize("workers", [8, 1])
@pytest.mark.parametrize("seed", range(4))
def test_sigkill_at_a_random_moment_then_rerun_pays_each_row_once(tmp_path, ledger_location, workers, seed):
    """Not on a request boundary: anywhere while rows are being sent, ledger writes included."""
    rng = random.Random(seed * 31 + workers)
    source = write_csv(tmp_path / "pagos.csv", [beneficiary(n) for n in range(1, ROWS + 1)])
    ledger = ledger_location
    faults = Faults(latency_ms=10, latency_jitter_ms=20, stall_after_commit_rate=0.05, stall_seconds=0.2,
                    error_rate=0.05, seed=seed)
    with Sandbox(faults=faults) as sandbox:
        victim = _start(source, sandbox, ledger, "--workers", str(workers))
        _wait_for_posts(sandbox, 1, victim)
        time.sleep(rng.uniform(0.0, 0.35 if workers == 8 else 0.6))
        victim.send_signal(signal.SIGKILL)
        victim.communicate()
        _recover_and_check(sandbox, source, ledger, workers, tmp_path / "pagos.results.csv")


@pytest.mark.parametrize("workers,first_kill,second_kill", [(8, 6, 3), (1, 9, 2), (8, 15, 1)])
def test_the_rerun_is_killed_too_and_the_third_run_still_pays_each_row_once(tmp_path, ledger_location, workers, first_kill, second_kill):
    source = write_csv(tmp_path / "pagos.csv", [beneficiary(n) for n in range(1, ROWS + 1)])
    ledger = ledger_location
    with Sandbox(faults=Faults(latency_ms=15, drop_after_commit_rate=0.15, seed=first_kill)) as sandbox:
        for kill_at in (first_kill, _posts(sandbox) + second_kill):
            victim = _start(source, sandbox, ledger, "--workers", str(workers))
            _wait_for_posts(sandbox, kill_at, victim)
            victim.send_signal(signal.SIGKILL)
            victim.communicate()
        _recover_and_check(sandbox, source, ledger, workers, tmp_path / "pagos.results.csv")


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


def test_a_second_run_of_the_same_batch_is_refused_naming_the_holder_while_the_first_completes(tmp_path, ledger_location):
    source = write_csv(tmp_path / "pagos.csv", [beneficiary(n) for n in range(1, ROWS + 1)])
    ledger = ledger_location
    # slow enough answers that the first run is still sending while the second starts up, even on a
    # loaded machine where a process takes seconds to import and open the ledger (~10 s of sending)
    with Sandbox(faults=Faults(latency_ms=400)) as sandbox:
        first = _start(source, sandbox, ledger, "--workers", "1")
        _wait_for_posts(sandbox, 1, first)  # the lock is taken before the first request
        second = _start(source, sandbox, ledger, "--workers", "1", "--lang", "en")
        out2, err2 = second.communicate(timeout=60)
        assert first.poll() is None, "the first run must still be running for this test to mean anything"
        assert second.returncode == 75, out2 + err2  # EX_TEMPFAIL: try later, not a bad file
        assert "already running" in err2 and f"process {first.pid} " in err2, err2
        assert "Traceback" not in err2
        out1, err1 = first.communicate(timeout=120)
        assert first.returncode == 0, out1 + err1
        _assert_exactly_once(sandbox, ROWS)
        _assert_sheet_agrees(sandbox, tmp_path / "pagos.results.csv")
        # Once the holder has finished, the same batch runs again (and sends nothing).
        posts = _posts(sandbox)
        _rerun_until_done(source, sandbox, ledger, attempts=1)
        assert _posts(sandbox) == posts


def test_the_lock_of_a_killed_run_does_not_block_the_rerun(tmp_path, ledger_location):
    source = write_csv(tmp_path / "pagos.csv", [beneficiary(n) for n in range(1, ROWS + 1)])
    ledger = ledger_location
    with Sandbox(faults=Faults(latency_ms=40)) as sandbox:
        victim = _start(source, sandbox, ledger, "--workers", "1")
        _wait_for_posts(sandbox, 3, victim)
        victim.send_signal(signal.SIGKILL)
        victim.communicate()
        with Ledger(ledger) as held:  # the dead run's lock is still in the ledger...
            holders = [r["pid"] for r in held._query("SELECT pid FROM locks")]
        assert holders == [victim.pid]
        sandbox.set_faults(Faults())
        _rerun_until_done(source, sandbox, ledger, attempts=1)  # ...and is taken over, not obeyed
        _assert_exactly_once(sandbox, ROWS)
        with Ledger(ledger) as done:
            assert done._query("SELECT count(*) FROM locks")[0][0] == 0


def _start_in(folder, source, sandbox, ledger, *extra):
    """A `run` from its own working directory (standing in for another host), the file copied there."""
    import shutil

    folder.mkdir()
    mine = shutil.copy(source, folder / source.name)
    env = {**os.environ, "CONEKTA_API_KEY": API_KEY, "BATCH_PAYOUTS_LEDGER": str(ledger), "BATCH_PAYOUTS_LANG": "en"}
    return subprocess.Popen(
        [sys.executable, "-m", "batch_payouts", "run", str(mine), "--api-base", sandbox.url, *extra],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_two_hosts_run_the_same_file_at_the_same_moment_and_each_order_is_created_once(tmp_path, pg_cluster):
    """Two `run`s on one PostgreSQL ledger, started together from two working directories, 20
    times: one runs, the other is refused with exit 75 (or, with --wait-lock, waits and then
    sends nothing); the sandbox never records a second order for a row."""
    source = write_csv(tmp_path / "pagos.csv", [beneficiary(n) for n in range(1, 6)])
    for attempt in range(20):
        ledger = pg_cluster.new_database()
        wait = ("--wait-lock", "60") if attempt % 2 else ()
        with Sandbox(faults=Faults(latency_ms=5)) as sandbox:
            runs = [_start_in(tmp_path / f"{attempt}-{host}", source, sandbox, ledger, *wait) for host in ("a", "b")]
            done = [(run.returncode, *run.communicate(timeout=120)) for run in runs]
            codes = sorted(run.returncode for run in runs)
            assert codes in ([0, 0], [0, 75]), done
            if wait:
                assert codes == [0, 0], done  # the second waited for the first, then found nothing to send
            if 75 in codes:
                refused = next(err for run, (_, _, err) in zip(runs, done) if run.returncode == 75)
                assert "already running" in refused and "Traceback" not in refused, refused
            orders = sandbox.payout_orders()
            assert len(orders) == 5, f"attempt {attempt}: {len(orders)} orders"
            assert len({o["metadata"]["row_key"] for o in orders}) == 5


def test_a_sigkilled_holder_releases_the_batch_on_postgresql_with_no_manual_step(tmp_path, pg_cluster):
    source = write_csv(tmp_path / "pagos.csv", [beneficiary(n) for n in range(1, ROWS + 1)])
    ledger = pg_cluster.new_database()
    with Sandbox(faults=Faults(latency_ms=40)) as sandbox:
        victim = _start(source, sandbox, ledger, "--workers", "1")
        _wait_for_posts(sandbox, 3, victim)
        victim.send_signal(signal.SIGKILL)
        victim.communicate()
        sandbox.set_faults(Faults())
        # at once, not after a timeout: the server ended the dead session and its advisory lock
        _rerun_until_done(source, sandbox, ledger, attempts=1)
        _assert_exactly_once(sandbox, ROWS)
