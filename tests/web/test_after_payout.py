"""Issue 16 end to end on the sandbox: signed webhooks move the batch page, forged and replayed ones change
nothing, ``events sync`` reaches the same ledger, and the reissue button pays the expired reference once."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import replace

import requests

from conekta_events import EventsFeed, body_of, event_for, public_pem, sign
from conftest import WebServer, beneficiary, write_csv
from web_client import Visitor


def _state(path):
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT row_key, order_status, cashed_at, expired_at, cancelled_at FROM rows "
                            "ORDER BY row_key").fetchall()


def _deliver(server, event, digest=None):
    body = body_of(event)
    return requests.post(server.url + "/webhooks/conekta", data=body, timeout=10,
                         headers={"Content-Type": "application/json", "digest": digest or sign(body)})


def test_webhooks_page_sync_and_reissue(sandbox, env, cli, web_settings, tmp_path):
    source = write_csv(env / "pagos.csv", [beneficiary(n, folio=f"F-{n}") for n in (1, 2, 3)])
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        batch_id, = conn.execute("SELECT batch_id FROM batches").fetchone()
        orders = [r[0] for r in conn.execute("SELECT payout_order_id FROM rows ORDER BY row_number")]
    shutil.copy(env / "ledger.sqlite", tmp_path / "down.sqlite")  # a second server whose webhook was down
    key = tmp_path / "whk.pem"
    key.write_text(public_pem())
    events = [event_for(sandbox.set_order_status(orders[0], "cashed"), created_at=1_790_000_000),
              event_for(sandbox.set_order_status(orders[1], "expired"), created_at=1_790_000_100)]
    with WebServer(replace(web_settings, webhook_public_key=key)) as server:
        for event in events:
            assert _deliver(server, event).status_code == 200
        applied = _state(env / "ledger.sqlite")
        assert _deliver(server, events[0]).json()["outcome"] == "duplicate"
        forged = {**events[1], "id": "evt_forged", "type": "cashout.confirmed"}
        assert _deliver(server, forged, digest=sign(body_of(events[1]))).status_code == 401
        assert _state(env / "ledger.sqlite") == applied

        visitor = Visitor(server.url)
        page = visitor.get(f"/batches/{batch_id}").text
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

    with EventsFeed() as feed:
        for event in events:
            feed.add(event)
        result = cli("events", "sync", "--api-base", feed.url, "--ledger", tmp_path / "down.sqlite")
        assert result.exit_code == 0, result.output
    assert _state(tmp_path / "down.sqlite") == applied  # the same ledger state as the webhooks reached


def test_only_an_approver_sees_the_reissue_button_or_can_press_it(sandbox, env, cli, web_settings):
    """``AfterPages.may_pay`` is the one check, pointed at the approver role: an auditor (who sees the
    batch) gets no button and 403, nothing paid; an approver gets the button."""
    import sys
    from pathlib import Path

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
