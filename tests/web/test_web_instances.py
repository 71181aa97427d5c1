"""Two `batch-payouts web` processes on two ports, one PostgreSQL ledger, one shared --data-dir.

What a load balancer in front of two instances needs: a batch confirmed on one shows its
progress (from the ledger: the batch lock says it runs, its rows say how far), its results and
its downloads (from the shared data directory) on the other.  The instances are real
subprocesses, each started from a working directory of its own (standing in for two hosts);
the sandbox is slowed down while the test looks at the run in progress, then let go.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from conftest import API_KEY, beneficiary, free_socket, write_csv
from test_web_browser import Steps, browser, page  # noqa: F401 - fixtures, found by name
from web_client import Visitor, batch_id_of

ROWS = 30
SLOW = {"latency_ms": 300}  # both requests of a row wait: the run lasts long enough to be watched


def _start(folder: Path, ledger: str, data_dir: Path, api_base: str) -> tuple[subprocess.Popen, str]:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CONEKTA_API_KEY": API_KEY}
    env.pop("BATCH_PAYOUTS_LEDGER", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "batch_payouts", "web", "--port", str(port), "--ledger", ledger,
         "--data-dir", str(data_dir), "--api-base", api_base, "--workers", "2"],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(base + "/", timeout=2)
            return server, base
        except requests.ConnectionError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise AssertionError(f"web instance did not start: {server.communicate()[1]}") from None
            time.sleep(0.1)


def _stop(server: subprocess.Popen) -> str:
    server.send_signal(signal.SIGTERM)
    try:
        _, err = server.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        _, err = server.communicate()
    return err


@pytest.fixture
def instances(pg_cluster, sandbox, tmp_path):
    """(first, second): the addresses of two instances sharing a fresh PostgreSQL ledger and a data dir."""
    ledger = pg_cluster.new_database()
    shared = tmp_path / "shared-data"
    errors: list[str] = []
    with ExitStack() as stack:
        bases = []
        for host in ("host-a", "host-b"):
            server, base = _start(tmp_path / host, ledger, shared, sandbox.url)
            stack.callback(lambda s=server: errors.append(_stop(s)))
            bases.append(base)
        yield bases[0], bases[1]
    for err in errors:
        assert "Traceback" not in err, err


def _confirm_on(base: str, tmp_path: Path, sandbox) -> str:
    sheet = write_csv(tmp_path / "nomina.csv", [beneficiary(n) for n in range(1, ROWS + 1)])
    sandbox.set_faults(SLOW)
    visitor = Visitor(base)
    return batch_id_of(visitor.confirm(visitor.upload(sheet).url))


def _until(check, what: str, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


def test_a_batch_confirmed_on_one_instance_shows_progress_results_and_downloads_on_the_other(
        instances, sandbox, tmp_path):
    first, second = instances
    batch_id = _confirm_on(first, tmp_path, sandbox)
    other = Visitor(second)

    def running_there():
        answer = other.get(f"/batches/{batch_id}/progress")
        return answer.status_code == 200 and answer.json()["running"] and answer.json()["done"] > 0 and answer.json()

    progress = _until(running_there, "the second instance sees the run under way")
    assert progress["total"] == ROWS  # the review's valid rows, read from the shared data dir
    assert progress["done"] + progress["pending"] == ROWS and progress["failed"] == 0
    page = other.get(f"/batches/{batch_id}")
    assert 'data-running="yes"' in page.text and 'id="download-results"' not in page.text
    assert other.get(f"/batches/{batch_id}/download/results").status_code == 409  # not while it runs anywhere
    assert other.post(f"/batches/{batch_id}/refresh").status_code == 409
    assert "enviando" in other.get("/batches").text

    sandbox.set_faults({})
    _until(lambda: not other.get(f"/batches/{batch_id}/progress").json()["running"], "the run ends")
    done = other.get(f"/batches/{batch_id}/progress").json()
    assert done["created"] == ROWS and done["pending"] == 0 and done["failed"] == 0
    assert done == {**Visitor(first).get(f"/batches/{batch_id}/progress").json(), "state": "idle",
                    "exit_code": None, "started_at": None, "finished_at": None}
    page = other.get(f"/batches/{batch_id}")
    assert 'data-running="no"' in page.text and 'id="download-results"' in page.text

    results = other.get(f"/batches/{batch_id}/download/results")
    assert results.status_code == 200
    assert results.content == Visitor(first).get(f"/batches/{batch_id}/download/results").content
    audit = other.get(f"/batches/{batch_id}/download/audit")
    assert audit.status_code == 200 and audit.text.count("\n") >= ROWS
    orders = sandbox.payout_orders()
    assert len(orders) == ROWS  # exactly once, whatever instance looked at it
    for order in orders:
        assert order["reference"] in page.text


def test_the_progress_page_of_the_second_instance_follows_a_run_of_the_first_in_a_browser(
        instances, sandbox, tmp_path, page, request):
    first, second = instances
    steps = Steps(page, request.node.name)
    batch_id = _confirm_on(first, tmp_path, sandbox)
    with steps.step("progress-on-the-other"):
        other = Visitor(second)
        _until(lambda: other.get(f"/batches/{batch_id}/progress").status_code == 200, "the run records its batch")
        page.goto(f"{second}/batches/{batch_id}")
        assert page.locator("#progress").get_attribute("data-running") == "yes"
        page.wait_for_function("() => document.getElementById('progress-bar').value > 0")
        assert re.search(r"Enviando", page.inner_text("#state"))
        assert page.locator("#download-results").count() == 0
    with steps.step("finished-on-the-other"):
        sandbox.set_faults({})
        page.wait_for_selector("#download-results")  # the script reloads the page when the run ends
        assert page.inner_text("#created") == str(ROWS) and page.inner_text("#failed") == "0"
        assert page.inner_text("#pending") == "0"
