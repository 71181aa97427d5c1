"""A disk that fills up in the middle of a batch: a clear message (which file, how much space is
left, "rerun when there is space: nothing is paid twice"), exit 2, a results sheet for the rows
done when its own disk allows -- and a rerun with space pays every row exactly once.

Each test mounts a small tmpfs (root only); where that is impossible it is skipped, saying why.
Real CLI, real HTTP to the sandbox, orders counted at the sandbox.
"""

from __future__ import annotations

import csv
import shutil
import sqlite3
import subprocess
from collections import Counter

import pytest

from conftest import API_KEY, beneficiary, write_csv


@pytest.fixture
def small_disk(tmp_path):
    """``(folder, resize)``: a tmpfs of a chosen size; ``resize("64m")`` makes room for the rerun."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = []

    def mount(size: str) -> None:
        options = f"size={size}" if not mounted else f"remount,size={size}"
        command = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)] if not mounted else [
            "mount", "-o", options, str(folder)]
        done = subprocess.run(command, capture_output=True, text=True, check=False) if shutil.which("mount") else None
        if done is None or done.returncode != 0:
            if mounted:
                raise AssertionError(f"could not resize the tmpfs: {done and done.stderr}")
            pytest.skip(f"cannot mount a tmpfs here (needs root and mount(8)): {done.stderr.strip() if done else 'no mount'}")
        mounted.append(size)

    yield folder, mount
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _statuses(sheet) -> Counter:
    with open(sheet, encoding="utf-8-sig", newline="") as handle:
        return Counter(row["status"] for row in csv.DictReader(handle))


def _row_keys(orders) -> set[str]:
    return {order["metadata"]["row_key"] for order in orders}


def test_a_full_disk_under_the_ledger_stops_cleanly_and_the_rerun_pays_each_row_once(
    sandbox, env, cli, small_disk, monkeypatch
):
    folder, mount = small_disk
    mount("1m")  # room for the ledger and a few dozen steps, not for 150 rows
    ledger = folder / "ledger.sqlite"
    monkeypatch.setenv("BATCH_PAYOUTS_LEDGER", str(ledger))
    rows = [beneficiary(n) for n in range(1, 151)]
    source = write_csv(env / "pagos.csv", rows)
    out = env / "pagos.results.csv"

    first = cli("run", source, "--api-base", sandbox.url, "--output", out, "--lang", "en", "--workers", "4")
    assert first.exit_code == 2, first.output
    assert f"The disk under the ledger '{ledger}' is full (free: " in first.output
    assert "rerun when there is space: nothing is paid twice" in first.output
    assert "Traceback" not in first.output
    paid = sandbox.payout_orders(API_KEY)
    assert 0 < len(paid) < len(rows)  # it stopped after some orders
    counts = _statuses(out)  # its own disk had room: the sheet is there, row by row
    assert sum(counts.values()) == len(rows)
    assert counts["created"] + counts["unknown"] == len(paid)  # an order the ledger could not record is unknown,
    assert set(counts) <= {"created", "unknown", "failed"}  # never failed; the rest were not sent

    mount("64m")
    second = cli("run", source, "--api-base", sandbox.url, "--output", out, "--lang", "en", "--workers", "4")
    assert second.exit_code == 0, second.output
    orders = sandbox.payout_orders(API_KEY)
    assert len(orders) == len(rows) and len(_row_keys(orders)) == len(rows)
    assert _statuses(out) == Counter({"created": len(rows)})


def test_a_full_disk_under_the_results_sheet_and_audit_log_stops_cleanly_and_the_rerun_pays_once(
    sandbox, env, cli, small_disk
):
    folder, mount = small_disk
    mount("16k")  # the audit log beside the sheet fills after some rows
    rows = [beneficiary(n) for n in range(1, 61)]
    source = write_csv(env / "pagos.csv", rows)
    out = folder / "pagos.results.csv"

    first = cli("run", source, "--api-base", sandbox.url, "--output", out, "--lang", "en", "--workers", "2")
    assert first.exit_code == 2, first.output
    audit = out.with_suffix(".audit.jsonl")
    assert (f"The disk under the results sheet '{out}' is full (free: " in first.output
            or f"The disk under the audit log '{audit}' is full (free: " in first.output), first.output
    assert "rerun when there is space: nothing is paid twice" in first.output and "Traceback" not in first.output
    paid = sandbox.payout_orders(API_KEY)
    assert 0 < len(paid) < len(rows)
    assert not list(folder.glob(".*.tmp"))  # no half-written sheet left behind
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        states = Counter(state for (state,) in conn.execute("SELECT state FROM rows"))
    assert states["created"] + states["in_flight"] + states["unknown"] == len(paid)
    assert states["failed"] == 0

    mount("4m")
    second = cli("run", source, "--api-base", sandbox.url, "--output", out, "--lang", "en")
    assert second.exit_code == 0, second.output
    orders = sandbox.payout_orders(API_KEY)
    assert len(orders) == len(rows) and len(_row_keys(orders)) == len(rows)
    assert _statuses(out) == Counter({"created": len(rows)})
