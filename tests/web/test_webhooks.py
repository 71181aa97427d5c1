"""``POST /webhooks/conekta`` over real HTTP: signed deliveries recorded once, forged ones refused."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import requests

from conekta_events import EventsFeed, OTHER_KEY, body_of, event_for, public_pem, sign
from conftest import WebServer, beneficiary, write_csv


def _batch(sandbox, env, cli, count=2):
    source = write_csv(env / "pagos.csv", [beneficiary(n, folio=f"F-{n}") for n in range(1, count + 1)])
    assert cli("run", source, "--api-base", sandbox.url, "--ledger", env / "ledger.sqlite").exit_code == 0
    return _rows(env)


def _rows(env):
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM rows ORDER BY row_number")]


def _deliver(server, event, signature=None):
    body = body_of(event)
    headers = {"Content-Type": "application/json"}
    if signature is not False:
        headers["digest"] = signature or sign(body)
    return requests.post(server.url + "/webhooks/conekta", data=body, headers=headers, timeout=10)


def test_signed_delivery_is_recorded_once_and_forged_ones_change_nothing(sandbox, env, cli, web_settings, tmp_path):
    rows = _batch(sandbox, env, cli)
    key_file = tmp_path / "conekta-webhook.pem"
    key_file.write_text(public_pem())
    settings = replace(web_settings, webhook_public_key=key_file, users={"ana": "scrypt$x"})  # sign-in on: no matter
    cashed = event_for(sandbox.set_order_status(rows[0]["payout_order_id"], "cashed"))
    with WebServer(settings) as server:
        assert _deliver(server, cashed, signature=False).status_code == 401
        assert _deliver(server, cashed, signature=sign(body_of(cashed), OTHER_KEY)).status_code == 401
        tampered = {**cashed, "data": {**cashed["data"], "object": {**cashed["data"]["object"], "status": "expired"}}}
        assert _deliver(server, tampered, signature=sign(body_of(cashed))).status_code == 401
        assert [r["order_status"] for r in _rows(env)] == ["pending", "pending"]  # nothing changed

        answer = _deliver(server, cashed)
        assert answer.status_code == 200 and answer.json()["outcome"] == "applied"
        assert _deliver(server, cashed).json()["outcome"] == "duplicate"  # Conekta retried: nothing more
        assert [r["order_status"] for r in _rows(env)] == ["cashed", "pending"]
        assert _rows(env)[0]["cashed_at"] == cashed["created_at"]


def test_the_key_is_fetched_once_from_conekta_with_the_servers_api_key(sandbox, env, cli, web_settings):
    rows = _batch(sandbox, env, cli, count=1)
    with EventsFeed() as feed:  # Conekta's GET /webhook_keys (the sandbox serves it from issue 16's other half)
        settings = replace(web_settings, api_base=feed.url, ledger_path=env / "ledger.sqlite")
        expired = event_for(sandbox.set_order_status(rows[0]["payout_order_id"], "expired"))
        with WebServer(settings) as server:
            assert _deliver(server, expired).json()["outcome"] == "applied"
            other = event_for({**expired["data"]["object"], "id": "not-ours", "reference": "0000000000000001"})
            assert _deliver(server, other).json()["outcome"] == "unknown_order"
        assert feed.requests.count("/webhook_keys") == 1
    assert _rows(env)[0]["order_status"] == "expired"
