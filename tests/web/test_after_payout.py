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
        visitor.post(f"/batches/{batch_id}/reissue")
        assert len(sandbox.payout_orders()) == before + 1
        page = visitor.get(f"/batches/{batch_id}").text
        assert "reexpedida como" in page and 'id="reissue-button"' not in page
        visitor.post(f"/batches/{batch_id}/reissue")
        assert len(sandbox.payout_orders()) == before + 1  # a second press pays nothing

    with EventsFeed() as feed:
        for event in events:
            feed.add(event)
        result = cli("events", "sync", "--api-base", feed.url, "--ledger", tmp_path / "down.sqlite")
        assert result.exit_code == 0, result.output
    assert _state(tmp_path / "down.sqlite") == applied  # the same ledger state as the webhooks reached
