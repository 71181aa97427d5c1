"""Temp files a killed sheet writer left behind are removed by the next run; a live writer's are kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from batch_payouts.files.leftovers import STALE_AFTER, remove_leftovers, temp_prefix
from conftest import beneficiary, write_csv


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_temp_files_of_dead_or_long_gone_writers_are_removed(tmp_path):
    target = tmp_path / "pagos.results.xlsx"
    dead = tmp_path / f".{target.name}.{_dead_pid()}-abc123.tmp"
    live = tmp_path / f".{target.name}.{os.getppid()}-def456.tmp"  # the test runner's parent: alive
    mine = tmp_path / f"{temp_prefix(target)}ghi789.tmp"
    old_style = tmp_path / f".{target.name}.k2j4h5g6.tmp"  # before pids were in the name
    fresh_old_style = tmp_path / f".{target.name}.zz99yy88.tmp"
    other = tmp_path / ".otro.results.xlsx.123-abc.tmp"  # another sheet's: not ours to judge
    for path in (dead, live, mine, old_style, fresh_old_style, other, target):
        path.write_text("x")
    long_ago = time.time() - STALE_AFTER - 60
    os.utime(old_style, (long_ago, long_ago))

    removed = remove_leftovers(target)

    assert sorted(removed) == sorted([dead, old_style])
    assert all(p.exists() for p in (live, mine, fresh_old_style, other, target))
    os.utime(live, (long_ago, long_ago))  # a pid that old has been reused: the file is a leftover
    assert remove_leftovers(target) == [live]


def test_a_writer_killed_mid_sheet_leaves_a_temp_file_the_next_run_removes(sandbox, env, cli):
    """SIGKILL a real writer while it writes the sheet, then run: the stray file is gone."""
    source = write_csv(env / "pagos.csv", [beneficiary(n) for n in range(1, 3)])
    out = env / "pagos.results.xlsx"
    writer = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time\n"
            "from pathlib import Path\n"
            "import batch_payouts.files.write as w\n"
            "def stall(sheets, temp):\n"
            "    Path(temp).write_bytes(b'PK half a workbook')\n"
            "    print('writing', flush=True)\n"
            "    time.sleep(600)\n"
            "w._write_xlsx = stall\n"
            "import pandas as pd\n"
            "w.write_table(pd.DataFrame({'a': ['1']}), Path(sys.argv[1]))\n"
        ), str(out)],
        stdout=subprocess.PIPE, text=True,
    )
    assert writer.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    (stray,) = env.glob(".pagos.results.xlsx.*.tmp")
    assert f".{writer.pid}-" in stray.name

    result = cli("run", source, "--api-base", sandbox.url)
    assert result.exit_code == 0, result.output
    assert not stray.exists() and out.exists()
    assert list(env.glob(".pagos.results.xlsx.*.tmp")) == []
