"""`batch-payouts sandbox serve` as a user starts it: a real process, faults from options and a file."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys

import pytest
import requests

from conftest import API_KEY, beneficiary, write_csv


def _serve(*args: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "batch_payouts", "sandbox", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    if not selector.select(timeout=30):
        process.kill()
        raise AssertionError("sandbox serve printed no URL within 30 s: " + process.communicate()[1])
    url = process.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), url + process.communicate()[1]
    return process, url


def _stop(process: subprocess.Popen) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    return out, err


def test_serve_takes_faults_from_options_overriding_the_file_and_the_cli_pays_once_through_it(tmp_path):
    profile = tmp_path / "faults.toml"
    profile.write_text("error_rate = 0.9\nlatency_ms = 5\nseed = 1\n", encoding="utf-8")
    server, url = _serve(
        "--faults", str(profile),
        "--fault", "error_rate=0",  # the command line wins over the file
        "--fault", "drop-after-commit-rate=0.15",
        "--fault", 'script={"1": "error_503", "3": "drop_after_commit"}',
        "--seed", "42",
        "--state", str(tmp_path / "state.sqlite"),
    )
    try:
        faults = requests.get(f"{url}/_sandbox/faults", timeout=5).json()
        assert faults["error_rate"] == 0
        assert faults["latency_ms"] == 5  # kept from the file
        assert faults["drop_after_commit_rate"] == 0.15
        assert faults["script"] == {"1": "error_503", "3": "drop_after_commit"}
        assert faults["seed"] == 42

        source = write_csv(tmp_path / "pagos.csv", [beneficiary(n) for n in range(1, 5)])
        env = {**os.environ, "CONEKTA_API_KEY": API_KEY, "BATCH_PAYOUTS_LEDGER": str(tmp_path / "ledger.sqlite")}
        for _ in range(2):  # a row left unknown (every retry's answer lost) is resolved by the rerun
            run = subprocess.run(
                [sys.executable, "-m", "batch_payouts", "run", str(source), "--api-base", url],
                env=env, capture_output=True, text=True, timeout=120,
            )
            if run.returncode == 0:
                break
        assert run.returncode == 0, run.stdout + run.stderr

        state = requests.get(f"{url}/_sandbox/state", timeout=5).json()
        keys = [order["metadata"]["row_key"] for order in state["payout_orders"]]
        assert len(keys) == len(set(keys)) == 4
        assert len(state["customers"]) == 4
        log = requests.get(f"{url}/_sandbox/requests", timeout=5).json()["requests"]
        seen = {entry["fault"] for entry in log}
        assert {"error_503", "drop_after_commit"} <= seen
    finally:
        if server.poll() is None:
            _out, err = _stop(server)
    assert API_KEY not in err
    assert API_KEY.encode() not in (tmp_path / "state.sqlite").read_bytes()


@pytest.mark.parametrize(
    "args,problem",
    [
        (["--fault", "error_rate=2"], "error_rate=2"),
        (["--fault", "no_such_fault=1"], "no_such_fault"),
        (["--fault", "error_rate"], "NAME=VALUE"),
        (["--fault", 'script={"0": "error_503"}'], "script key"),
        (["--fault", 'script={"1": "explode"}'], "explode"),
        (["--fault", "latency_ms=fast"], "latency_ms"),
        (["--fault", "error_rate=true"], "error_rate"),
    ],
)
def test_bad_fault_options_are_a_clear_error_not_a_traceback(cli, args, problem):
    result = cli("sandbox", "serve", "--port", "0", *args)
    assert result.exit_code == 2
    assert problem in result.output
    assert "Traceback" not in result.output


def test_seed_alone_is_accepted(tmp_path):
    server, url = _serve("--seed", "7")
    try:
        assert requests.get(f"{url}/_sandbox/faults", timeout=5).json()["seed"] == 7
    finally:
        _stop(server)


def test_bad_fault_option_in_a_real_process_exits_2_quietly():
    done = subprocess.run(
        [sys.executable, "-m", "batch_payouts", "sandbox", "serve", "--port", "0", "--fault", "error_rate=-1"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "error_rate" in done.stderr and "Traceback" not in done.stderr
    assert json.dumps(done.stdout) == '""'  # no URL: nothing was served


def test_serve_delivers_signed_webhooks_and_cashes_new_orders_by_itself(tmp_path):
    from sandbox_client import new_order, session
    from webhook_receiver import Receiver, verify

    with Receiver() as receiver:
        server, url = _serve("--webhook-url", receiver.url, "--webhook-backoff", "0.05", "--auto-cash", "1",
                             "--auto-after", "0", "--seed", "3", "--state", str(tmp_path / "state.sqlite"))
        try:

            class Running:  # what sandbox_client's helpers need of a sandbox
                pass

            running = Running()
            running.url = url
            order = new_order(running).json()
            deliveries = receiver.wait_for(2)
            public_key = session().get(f"{url}/webhook_keys", timeout=5).json()["data"][0]["public_key"]
        finally:
            _stop(server)
    assert all(verify(public_key, d["body"], d["headers"]["digest"]) for d in deliveries)
    events = receiver.events()
    assert [e["type"] for e in events] == ["payout_order.created", "cashout.confirmed"]
    assert events[1]["data"]["object"]["id"] == order["id"] and events[1]["data"]["object"]["status"] == "cashed"

    server, url = _serve("--state", str(tmp_path / "state.sqlite"))  # the same key after a restart
    try:
        assert session().get(f"{url}/webhook_keys", timeout=5).json()["data"][0]["public_key"] == public_key
    finally:
        _stop(server)
