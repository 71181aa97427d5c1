"""Issue 16's acceptance with the real sandbox, as separate processes: `sandbox serve --webhook-url`
and `batch-payouts web`, and the CLI beside them on the same ledger.

A batch paid from the browser; the sandbox cashes some references and expires others (its own
`sandbox cash` / `sandbox expire` commands) and delivers signed webhooks to the web app, whose batch
page and `show` follow; a redelivered webhook and a forged one change nothing; with the web app
stopped the sandbox moves more orders and `events sync` reaches the state the webhooks would have;
`reissue --expired` pays exactly the expired ones once; `notify` mails the figures to aiosmtpd.
Every wait polls for a state (never a sleep as an assertion).
"""

from __future__ import annotations

import base64
import email
import json
import os
import re
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import requests

from conftest import API_KEY, beneficiary, free_socket, write_csv

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from web_client import Visitor, batch_id_of  # noqa: E402

WAIT = 60.0  # seconds a state may take to appear on a loaded 2-core machine before the test fails


def poll(what, check, timeout: float = WAIT):
    """``check()`` until it is truthy (returned), or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)


def free_port() -> int:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    return port


def cli_env(ledger: Path) -> dict[str, str]:
    env = {**os.environ, "CONEKTA_API_KEY": API_KEY, "BATCH_PAYOUTS_LEDGER": str(ledger)}
    for name in ("CONEKTA_API_BASE", "BATCH_PAYOUTS_LANG"):
        env.pop(name, None)
    return env


def batch_payouts(env: dict[str, str], *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "batch_payouts", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=120)


class Process:
    """A real ``batch-payouts`` server process; stopped with SIGTERM (a clean stop) and checked."""

    def __init__(self, env: dict[str, str], *args) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "batch_payouts", *map(str, args)], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def first_line(self) -> str:
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=WAIT):
            self.process.kill()
            raise AssertionError("no first line: " + self.process.communicate()[1])
        return self.process.stdout.readline().strip()

    def wait_http(self, url: str) -> None:
        def up():
            assert self.process.poll() is None, self.process.communicate()[1]
            try:
                return requests.get(url, timeout=2).status_code < 500
            except requests.ConnectionError:
                return False

        poll(f"{url} answers", up)

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        _, err = self.process.communicate(timeout=30)
        assert self.process.returncode in (0, -signal.SIGTERM), err  # uvicorn re-raises the signal after a clean stop
        assert "Traceback" not in err, err
        return err


def ledger_rows(ledger: Path) -> dict[str, tuple]:
    """reference -> (order status, cashed_at, expired_at, cancelled_at, reissued_as) of every created row."""
    with sqlite3.connect(ledger) as conn:
        return {r[0]: tuple(r[1:]) for r in conn.execute(
            "SELECT reference, order_status, cashed_at, expired_at, cancelled_at, reissued_as FROM rows "
            "WHERE state='created' ORDER BY row_number, reference")}


def sandbox_truth(sandbox_url: str) -> dict[str, tuple]:
    """reference -> (status, cashed_at, expired_at, cancelled_at) as the webhooks would leave the ledger:
    the status of the order at the sandbox, and the time of the event that gave it that status."""
    events = requests.get(f"{sandbox_url}/_sandbox/events", timeout=10).json()["events"]
    column = {"cashed": 1, "expired": 2, "cancelled": 3}
    truth: dict[str, list] = {}
    for event in events:  # oldest first
        order = event["data"]["object"]
        entry = truth.setdefault(order["reference"], ["pending", None, None, None])
        entry[0] = order["status"] if order["status"] != "open" else entry[0]
        if order["status"] in column:
            entry[column[order["status"]]] = float(event["created_at"])
    return {ref: tuple(v) for ref, v in truth.items()}


def settle(env, sandbox_url: str, action: str, reference: str) -> None:
    done = batch_payouts(env, "sandbox", action, reference, "--api-base", sandbox_url)
    assert done.returncode == 0, done.stdout + done.stderr


def deliveries(sandbox_url: str) -> list[dict]:
    return requests.get(f"{sandbox_url}/_sandbox/webhooks", timeout=10).json()["deliveries"]


def delivered(sandbox_url: str, event_id: str, times: int = 1) -> bool:
    return sum(1 for d in deliveries(sandbox_url)
               if d["event_id"] == event_id and d["outcome"] == "successful") >= times


def event_of(sandbox_url: str, reference: str, event_type: str) -> dict:
    events = requests.get(f"{sandbox_url}/_sandbox/events", timeout=10).json()["events"]
    return next(e for e in events if e["type"] == event_type and e["data"]["object"]["reference"] == reference)


def test_webhooks_from_the_real_sandbox_move_the_page_and_show_and_sync_reissue_and_notify_follow(tmp_path):
    from aiosmtpd.controller import Controller

    ledger = tmp_path / "ledger.sqlite"
    env = cli_env(ledger)
    web_port = free_port()
    hook = f"http://127.0.0.1:{web_port}/webhooks/conekta"
    sandbox = Process(env, "sandbox", "serve", "--port", "0", "--state", tmp_path / "conekta.sqlite",
                      "--webhook-url", hook, "--webhook-backoff", "0.2", "--webhook-attempts", "3")
    sandbox_url = sandbox.first_line()
    web_args = ("web", "--port", web_port, "--api-base", sandbox_url, "--data-dir", tmp_path / "web-data")
    web = Process(env, *web_args)
    try:
        web.wait_http(f"http://127.0.0.1:{web_port}/")
        visitor = Visitor(f"http://127.0.0.1:{web_port}")
        source = write_csv(tmp_path / "pagos.csv", [beneficiary(n, folio=f"F-{n}") for n in range(1, 7)])
        batch_id = batch_id_of(visitor.confirm(visitor.upload(source).url))
        poll("the run finishes", lambda: not visitor.get(f"/batches/{batch_id}/progress").json()["running"])
        references = list(ledger_rows(ledger))
        assert len(references) == 6 and all(len(r) == 16 for r in references)

        # -- the sandbox cashes two references and expires one: signed webhooks reach the page and `show`
        for action, reference in (("cash", references[0]), ("cash", references[1]), ("expire", references[2])):
            settle(env, sandbox_url, action, reference)
        poll("the webhooks are applied", lambda: [ledger_rows(ledger)[r][0] for r in references[:3]]
             == ["cashed", "cashed", "expired"])
        page = poll("the batch page shows them", lambda: (lambda text: text if text.count("cobrada (") == 2
                                                          and "vencida" in text else None)(
            visitor.get(f"/batches/{batch_id}").text))
        assert 'id="reissue-button"' in page and "<svg" in page
        shown = batch_payouts(env, "show", batch_id)
        assert shown.returncode == 0, shown.stderr
        for reference, word in ((references[0], "cobrada"), (references[1], "cobrada"), (references[2], "vencida")):
            line = next(line for line in shown.stdout.splitlines() if reference in line)
            assert word in line.lower(), line

        # -- a replayed webhook and a forged one change nothing
        applied = ledger_rows(ledger)
        cashed = event_of(sandbox_url, references[0], "cashout.confirmed")
        assert requests.post(f"{sandbox_url}/_sandbox/events/{cashed['id']}/redeliver", timeout=10).status_code == 200
        poll("the redelivery is answered 2xx", lambda: delivered(sandbox_url, cashed["id"], times=2))
        expired = event_of(sandbox_url, references[2], "cashout.expired")
        poll("the expiry's delivery is recorded as answered 2xx", lambda: delivered(sandbox_url, expired["id"]))
        forged = dict(expired, id="evt_forged_by_someone", type="cashout.confirmed")
        forged["data"] = {**expired["data"], "object": {**expired["data"]["object"], "status": "cashed"}}
        body = json.dumps(forged).encode()
        refused = requests.post(hook, data=body, timeout=10, headers={
            "Content-Type": "application/json", "digest": base64.b64encode(b"\x00" * 256).decode()})
        assert refused.status_code == 401
        unsigned = requests.post(hook, data=body, timeout=10, headers={"Content-Type": "application/json"})
        assert unsigned.status_code == 401
        assert ledger_rows(ledger) == applied
        with sqlite3.connect(ledger) as conn:
            assert not conn.execute("SELECT 1 FROM events WHERE event_id='evt_forged_by_someone'").fetchall()

        # -- the webhook endpoint is down while the sandbox moves more orders: events sync catches up
        web.stop()
        settle(env, sandbox_url, "cash", references[3])
        settle(env, sandbox_url, "expire", references[4])
        missed = [event_of(sandbox_url, references[3], "cashout.confirmed")["id"],
                  event_of(sandbox_url, references[4], "cashout.expired")["id"]]
        poll("the sandbox gives up delivering them", lambda: all(
            any(d["event_id"] == e and d["outcome"] == "failing" for d in deliveries(sandbox_url)) for e in missed))
        assert ledger_rows(ledger) == applied  # nobody told the ledger
        synced = batch_payouts(env, "events", "sync", "--api-base", sandbox_url)
        assert synced.returncode == 0, synced.stderr
        truth = sandbox_truth(sandbox_url)
        after_sync = ledger_rows(ledger)
        assert {ref: state[:4] for ref, state in after_sync.items()} == {ref: truth[ref] for ref in after_sync}
        assert [after_sync[r][0] for r in references] == ["cashed", "cashed", "expired", "cashed", "expired", "pending"]
        again = batch_payouts(env, "events", "sync", "--api-base", sandbox_url)
        assert again.returncode == 0 and ledger_rows(ledger) == after_sync
        # the web app back: the missed deliveries, sent again, find nothing left to change
        web = Process(env, *web_args)
        web.wait_http(f"http://127.0.0.1:{web_port}/")
        for event_id in missed:
            requests.post(f"{sandbox_url}/_sandbox/events/{event_id}/redeliver", timeout=10)
        poll("the missed events are delivered", lambda: all(delivered(sandbox_url, e) for e in missed))
        assert ledger_rows(ledger) == after_sync

        # -- reissue --expired pays exactly the expired ones, once
        orders_before = len(requests.get(f"{sandbox_url}/_sandbox/state", timeout=10).json()["payout_orders"])
        reissued = batch_payouts(env, "reissue", batch_id, "--expired", "--api-base", sandbox_url)
        assert reissued.returncode == 0, reissued.stdout + reissued.stderr
        orders = requests.get(f"{sandbox_url}/_sandbox/state", timeout=10).json()["payout_orders"]
        assert len(orders) == orders_before + 2
        rows = ledger_rows(ledger)
        new_references = {o["reference"] for o in orders[orders_before:]}
        assert all(rows[r][4] for r in (references[2], references[4]))  # each expired row links to its reissue
        assert not any(rows[r][4] for r in (references[0], references[1], references[3], references[5]))
        assert new_references <= set(rows) and {rows[r][0] for r in new_references} == {"pending"}
        twice = batch_payouts(env, "reissue", batch_id, "--expired", "--api-base", sandbox_url)
        assert twice.returncode == 0, twice.stdout + twice.stderr
        assert len(requests.get(f"{sandbox_url}/_sandbox/state", timeout=10).json()["payout_orders"]) == len(orders)

        # -- the summary email, at a real SMTP server
        class Inbox:
            messages: list = []

            async def handle_DATA(self, server, session, envelope):
                self.messages.append(email.message_from_bytes(envelope.content))
                return "250 OK"

        smtp_port = free_port()
        inbox = Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
        controller.start()
        try:
            sent = batch_payouts(env, "notify", "--smtp-host", "127.0.0.1", "--smtp-port", smtp_port, "--no-starttls",
                                 "--to", "finanzas@empresa.mx")
        finally:
            controller.stop()
        assert sent.returncode == 0, sent.stdout + sent.stderr
        message, = inbox.messages
        body = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
        amount = {ref: 10000 + 100 * n for n, ref in enumerate(references, start=1)}
        pesos = lambda cents: f"${cents / 100:,.2f} MXN"  # noqa: E731
        assert f"Referencias cobradas: 3 ({pesos(amount[references[0]] + amount[references[1]] + amount[references[3]])})" in body
        # the batch's orders: six, and the two reissues (the expired ones are paid again, not outstanding twice)
        assert "Lotes ejecutados: 1" in body and "creadas 8, sin confirmar 0, fallidas 0" in body
        assert "Referencias vencidas sin cobrar: 0" in body
        # still to be cashed: the pending row and the two reissues (the expired ones' money is not outstanding)
        outstanding = amount[references[5]] + amount[references[2]] + amount[references[4]]
        assert f"Dinero pendiente de cobro: {pesos(outstanding)}" in body, body
        attached = [part.get_filename() for part in message.walk() if part.get_filename()]
        assert len(attached) == 1 and attached[0].endswith(".xlsx")
    finally:
        for process in (web, sandbox):
            if process.process.poll() is None:
                process.stop()


def make_web_arguments() -> list[str]:
    """The arguments `make web` gives `batch-payouts web` (read from the Makefile, so the test follows it)."""
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    recipe = re.search(r"^web:.*?\n((?:\t.*\n)+)", makefile, re.MULTILINE).group(1).replace("\\\n", " ")
    return recipe.split("batch-payouts web", 1)[1].split()


def test_make_web_shows_references_being_cashed_through_the_apps_own_webhooks(tmp_path):
    """`make web`'s built-in sandbox cashes and expires references by itself and tells the app by
    signed webhooks; the batch page and the ledger follow without anyone asking Conekta."""
    arguments = make_web_arguments()
    assert "--sandbox" in arguments and "--sandbox-auto-cash" in arguments and "--sandbox-auto-expire" in arguments
    ledger = tmp_path / "ledger.sqlite"
    env = cli_env(ledger)
    env.pop("CONEKTA_API_KEY")
    port = free_port()
    # the Makefile's options, but the delay (minutes for a person watching) cut to nothing, a fixed seed, our port
    web = Process(env, "web", *arguments, "--data-dir", tmp_path / "web-data", "--port", port,
                  "--sandbox-auto-after", "0", "--sandbox-seed", "7")
    try:
        web.wait_http(f"http://127.0.0.1:{port}/")
        visitor = Visitor(f"http://127.0.0.1:{port}")
        source = write_csv(tmp_path / "pagos.csv", [beneficiary(n, folio=f"F-{n}") for n in range(1, 11)])
        batch_id = batch_id_of(visitor.confirm(visitor.upload(source).url))
        poll("the run finishes", lambda: not visitor.get(f"/batches/{batch_id}/progress").json()["running"])
        state = ledger.with_name("ledger.sandbox-state.sqlite")

        def settled_at_the_sandbox() -> dict[str, str]:
            with sqlite3.connect(state) as conn:
                return dict(conn.execute("SELECT reference, status FROM payout_orders WHERE status IN "
                                         "('cashed', 'expired')").fetchall())

        # seed 7: of ten references, some cashed and some expired (the Makefile's shares), the rest pending
        fates = poll("the sandbox settles its share", lambda: (lambda s: s if len(s) >= 5 and
                                                               set(s.values()) == {"cashed", "expired"} else None)(
            settled_at_the_sandbox()), timeout=WAIT)
        poll("the webhooks bring every one to the ledger", lambda: all(
            ledger_rows(ledger)[ref][0] == status for ref, status in settled_at_the_sandbox().items()))
        fates = settled_at_the_sandbox()
        cashed = sum(1 for status in fates.values() if status == "cashed")
        page = poll("the page shows them", lambda: (lambda text: text if text.count("cobrada (") == cashed else None)(
            visitor.get(f"/batches/{batch_id}").text))
        assert "vencida" in page and "<svg" in page
        with sqlite3.connect(ledger) as conn:
            sources = {r[0] for r in conn.execute("SELECT source FROM events WHERE outcome='applied'")}
        assert sources == {"webhook"}  # told by the sandbox's deliveries, not found by polling
    finally:
        web.stop()
