"""``POST /webhooks/conekta`` over real HTTP: the sandbox's signed deliveries recorded once, forged ones refused."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

import requests

from conftest import API_KEY, WebServer, beneficiary, write_csv


def _batch(sandbox, env, cli, count=2):
    source = write_csv(env / "pagos.csv", [beneficiary(n, folio=f"F-{n}") for n in range(1, count + 1)])
    assert cli("run", source, "--api-base", sandbox.url, "--ledger", env / "ledger.sqlite").exit_code == 0
    return _rows(env)


def _rows(env):
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM rows ORDER BY row_number")]


def _outcomes(env):
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        return dict(conn.execute("SELECT event_id, outcome FROM events").fetchall())


def _post(server, body: bytes, digest=None):
    headers = {"Content-Type": "application/json"}
    if digest is not None:
        headers["digest"] = digest
    return requests.post(server.url + "/webhooks/conekta", data=body, headers=headers, timeout=10)


def _last_event(sandbox, order_id):
    return [e for e in sandbox.events() if e["data"]["object"]["id"] == order_id][-1]


def _delivered(sandbox, server):
    """Every delivery the sandbox made so far, all answered (the test then asserts on the ledger)."""
    assert sandbox.wait_until_settled()
    return [d for d in sandbox.webhook_log if d["url"] == server.url + "/webhooks/conekta"]


def test_signed_delivery_is_recorded_once_and_forged_ones_change_nothing(sandbox, env, cli, web_settings, tmp_path):
    from batch_payouts.sandbox.store import fingerprint
    from batch_payouts.sandbox.webhooks import new_key_pair, sign

    rows = _batch(sandbox, env, cli)
    key_file = tmp_path / "conekta-webhook.pem"
    key_file.write_text(sandbox.webhook_public_key(API_KEY))
    settings = replace(web_settings, webhook_public_key=key_file, users={"ana": "scrypt$x"})  # sign-in on: no matter
    with WebServer(settings) as server:
        # forged from a real event: unsigned, signed by another key, or the real signature over changed bytes
        real = _last_event(sandbox, rows[1]["payout_order_id"])
        body = json.dumps(real, separators=(",", ":")).encode()
        genuine = sign(body, sandbox.api.signing_key(fingerprint(API_KEY)))
        forged = json.dumps({**real, "id": "evt_forged", "type": "cashout.confirmed",
                             "data": {**real["data"], "object": {**real["data"]["object"], "status": "cashed"}}}).encode()
        assert _post(server, body, genuine).status_code == 200  # the real one, as the sandbox signs it, passes
        assert _post(server, forged).status_code == 401
        assert _post(server, forged, sign(forged, new_key_pair()[1])).status_code == 401
        assert _post(server, forged, genuine).status_code == 401
        assert [r["order_status"] for r in _rows(env)] == ["pending", "pending"]  # nothing changed
        assert "evt_forged" not in _outcomes(env)

        sandbox.set_webhook_urls([server.url + "/webhooks/conekta"])
        sandbox.cash(rows[0]["reference"])
        cashed = _last_event(sandbox, rows[0]["payout_order_id"])
        assert [(d["event_id"], d["http_status"]) for d in _delivered(sandbox, server)] == [(cashed["id"], 200)]
        assert _outcomes(env)[cashed["id"]] == "applied"
        assert sandbox.redeliver(cashed["id"])  # Conekta sends it again: nothing more happens
        assert [d["http_status"] for d in _delivered(sandbox, server)] == [200, 200]
        assert [r["order_status"] for r in _rows(env)] == ["cashed", "pending"]
        assert _rows(env)[0]["cashed_at"] == cashed["created_at"]


def test_the_key_is_fetched_once_from_conekta_with_the_servers_api_key(sandbox, env, cli, web_settings):
    from batch_payouts.payout.conekta import ClientConfig, ConektaClient

    rows = _batch(sandbox, env, cli, count=1)
    with ConektaClient(ClientConfig(api_key=API_KEY, api_base=sandbox.url)) as client:  # another system's order
        customer = client.create_customer({"name": "Otra Persona", "email": "otra@ejemplo.mx",
                                           "phone": "5511112222"}, "other-customer")
        other = client.create_payout_order({
            "currency": "MXN", "amount": 5000, "customer_info": {"customer_id": customer["id"]},
            "allowed_payout_methods": ["cashout"], "payout": {"payout_method": {"type": "cashout"}},
            "reason": "Otro sistema", "metadata": {"row_key": "not-ours"}}, "other-order")
    settings = replace(web_settings, ledger_path=env / "ledger.sqlite")  # no PEM file: GET /webhook_keys
    with WebServer(settings) as server:
        sandbox.set_webhook_urls([server.url + "/webhooks/conekta"])
        sandbox.expire(rows[0]["reference"])
        sandbox.cash(other["id"])
        assert [d["http_status"] for d in _delivered(sandbox, server)] == [200, 200]
    outcomes = _outcomes(env)
    assert outcomes[_last_event(sandbox, rows[0]["payout_order_id"])["id"]] == "applied"
    assert outcomes[_last_event(sandbox, other["id"])["id"]] == "unknown_order"
    assert sum(1 for r in sandbox.request_log if r["path"] == "/webhook_keys") == 1
    assert _rows(env)[0]["order_status"] == "expired"


def test_a_key_rotated_at_conekta_is_fetched_again_when_a_delivery_fails_to_verify(
        sandbox, env, cli, web_settings, monkeypatch):
    """``POST /webhook_keys`` deactivates the key the app cached; the next delivery, signed with the new
    one, fails against the cache, so the app asks ``GET /webhook_keys`` again and accepts it."""
    from batch_payouts.payout.conekta import ClientConfig, ConektaClient
    from batch_payouts.web import webhooks

    monkeypatch.setattr(webhooks, "REFETCH_AFTER", 0.0)  # not the production pause between two fetches
    rows = _batch(sandbox, env, cli)
    with WebServer(replace(web_settings, ledger_path=env / "ledger.sqlite")) as server:
        sandbox.set_webhook_urls([server.url + "/webhooks/conekta"])
        sandbox.cash(rows[0]["reference"])
        assert [d["http_status"] for d in _delivered(sandbox, server)] == [200]
        with ConektaClient(ClientConfig(api_key=API_KEY, api_base=sandbox.url)) as client:
            client.request("POST", "/webhook_keys")
        sandbox.expire(rows[1]["reference"])
        assert [d["http_status"] for d in _delivered(sandbox, server)] == [200, 200]
    assert [r["order_status"] for r in _rows(env)] == ["cashed", "expired"]
    assert sum(1 for r in sandbox.request_log if r["path"] == "/webhook_keys" and r["method"] == "GET") == 2
