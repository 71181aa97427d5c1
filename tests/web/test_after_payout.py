"""Issue 16 end to end on the sandbox: its signed webhooks move the batch page, forged and replayed ones change
nothing, ``events sync`` reaches the same ledger, and the reissue button pays the expired reference once.
(The same with the sandbox and the web app as separate processes: tests/e2e/test_after_payout_e2e.py.)"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from dataclasses import replace
from pathlib import Path

import requests

from conftest import API_KEY, WebServer, beneficiary, write_csv
from web_client import Visitor


def _state(path):
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT row_key, order_status, cashed_at, expired_at, cancelled_at FROM rows "
                            "ORDER BY row_key").fetchall()


def _applied(env):
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        return dict(conn.execute("SELECT event_id, outcome FROM events").fetchall())


def test_webhooks_page_sync_and_reissue(sandbox, env, cli, web_settings, tmp_path):
    from batch_payouts.sandbox.store import fingerprint
    from batch_payouts.sandbox.webhooks import sign

    source = write_csv(env / "pagos.csv", [beneficiary(n, folio=f"F-{n}") for n in (1, 2, 3)])
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        batch_id, = conn.execute("SELECT batch_id FROM batches").fetchone()
        orders = [r[0] for r in conn.execute("SELECT payout_order_id FROM rows ORDER BY row_number")]
    shutil.copy(env / "ledger.sqlite", tmp_path / "down.sqlite")  # a second server whose webhook was down
    with WebServer(web_settings) as server:
        visitor = Visitor(server.url)
        mark = visitor.get(f"/batches/{batch_id}/progress?watch=1").json()["orders"]  # what an open page watches
        sandbox.set_webhook_urls([server.url + "/webhooks/conekta"])
        sandbox.cash(orders[0])
        sandbox.expire(orders[1])
        assert sandbox.wait_until_settled()
        events = [e for e in sandbox.events() if e["type"] in ("cashout.confirmed", "cashout.expired")]
        assert [_applied(env)[e["id"]] for e in events] == ["applied", "applied"]
        applied = _state(env / "ledger.sqlite")
        assert sandbox.redeliver(events[0]["id"]) and sandbox.wait_until_settled()
        assert [d["http_status"] for d in sandbox.webhook_log if d["event_id"] == events[0]["id"]] == [200, 200]
        forged = json.dumps({**events[1], "id": "evt_forged", "type": "cashout.confirmed"}).encode()
        real_signature = sign(json.dumps(events[1]).encode(), sandbox.api.signing_key(fingerprint(API_KEY)))
        assert requests.post(server.url + "/webhooks/conekta", data=forged, timeout=10, headers={
            "Content-Type": "application/json", "digest": real_signature}).status_code == 401
        assert _state(env / "ledger.sqlite") == applied

        changed = visitor.get(f"/batches/{batch_id}/progress?watch=1").json()
        assert changed["orders"] != mark and changed["running"] is False  # the open page reloads itself
        page = visitor.get(f"/batches/{batch_id}").text
        assert 'data-watch="yes"' in page and f'data-orders="{changed["orders"]}"' in page
        assert "cobrada (" in page and "vencida" in page and "<svg" in page and 'id="reissue-button"' in page
        before = len(sandbox.payout_orders())
        # the button leads to a confirmation page: what will be paid again and the total per currency
        confirm = visitor.get(f"/batches/{batch_id}/reissue").text
        assert len(sandbox.payout_orders()) == before  # looking pays nothing
        assert 'id="reissue-count">1<' in confirm and 'id="reissue-total">$102.00 MXN<' in confirm
        assert 'id="reissue-rows"' in confirm and "persona2@ejemplo.mx" in confirm
        visitor.post(f"/batches/{batch_id}/reissue", {"count": "2"})  # not what the page showed: refused
        assert len(sandbox.payout_orders()) == before
        visitor.post(f"/batches/{batch_id}/reissue", {"count": "1"})
        assert len(sandbox.payout_orders()) == before + 1
        page = visitor.get(f"/batches/{batch_id}").text
        assert "reexpedida como" in page and 'id="reissue-button"' not in page
        visitor.post(f"/batches/{batch_id}/reissue", {"count": "1"})
        assert len(sandbox.payout_orders()) == before + 1  # a second press pays nothing

    result = cli("events", "sync", "--api-base", sandbox.url, "--ledger", tmp_path / "down.sqlite")
    assert result.exit_code == 0, result.output
    assert _state(tmp_path / "down.sqlite") == applied  # the same ledger state as the webhooks reached


def test_only_an_approver_sees_the_reissue_button_or_can_press_it(sandbox, env, cli, web_settings):
    """``AfterPages.may_pay`` is the one check, pointed at the approver role: an auditor (who sees the
    batch) gets no button and 403, nothing paid; an approver gets the button."""

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "team"))
    from team_setup import PASSWORDS, team_with_policy

    from batch_payouts.team import totp

    secrets = team_with_policy(env / "ledger.sqlite", "--rows-over", "1000")  # a policy this batch is under
    source = write_csv(env / "pagos.csv", [beneficiary(1, folio="F-1")])
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        batch_id, order = conn.execute("SELECT batch_id, payout_order_id FROM rows").fetchone()
    sandbox.set_order_status(order, "expired")
    assert cli("status", env / "pagos.results.xlsx", "--api-base", sandbox.url).exit_code == 0
    with WebServer(replace(web_settings, ledger_path=env / "ledger.sqlite", host="0.0.0.0")) as server:
        visitors = {}
        for name in ("carla", "ana"):
            visitor = visitors[name] = Visitor(server.url)
            visitor.get("/login")
            visitor.post("/login", {"username": name, "password": PASSWORDS[name], "next": "/"})
            if name in secrets:
                visitor.post("/login/code", {"code": totp.current_code(secrets[name])})
        carla, ana = visitors["carla"], visitors["ana"]
        assert carla.get(f"/batches/{batch_id}").status_code == 200
        assert 'id="reissue-button"' not in carla.get(f"/batches/{batch_id}").text
        assert carla.get(f"/batches/{batch_id}/reissue").status_code == 403
        before = len(sandbox.payout_orders())
        assert carla.post(f"/batches/{batch_id}/reissue", {"count": "1"}).status_code == 403
        assert len(sandbox.payout_orders()) == before
        assert 'id="reissue-button"' in ana.get(f"/batches/{batch_id}").text


def test_an_open_pages_background_check_does_not_keep_an_idle_session_alive():
    """``?watch=1`` is the batch page asking by itself; only a person's requests restart the idle clock."""
    from batch_payouts.web import security
    from batch_payouts.web.pages import expired

    session = {security.SESSION_USER: "ana", security.SESSION_SEEN: 1_000}
    assert not expired(session, idle_minutes=10**9, touch=False)
    assert session[security.SESSION_SEEN] == 1_000
    assert not expired(session, idle_minutes=10**9)
    assert session[security.SESSION_SEEN] > 1_000
    assert expired({security.SESSION_USER: "ana", security.SESSION_SEEN: 1_000}, idle_minutes=1, touch=False)
