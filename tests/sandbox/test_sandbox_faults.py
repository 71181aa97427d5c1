"""The sandbox's faults over real HTTP: each one does what a client must survive, and only that."""

from __future__ import annotations

import json
import re
import time

import pytest
import requests

from batch_payouts.sandbox import FAULT_KINDS, Faults, FaultsError
from batch_payouts.sandbox.faults import FaultEngine

from sandbox_client import (  # noqa: F401 - sb: the fixture, found by name
    OTHER_KEY, assert_error, new_customer, new_order, order_body, session, sb,
)


def test_drop_after_commit_loses_the_answer_but_keeps_the_order(sb):
    s = session()
    customer = new_customer(sb, s)["id"]  # POST 1
    sb.set_faults(Faults(script={1: "drop_after_commit"}))
    with pytest.raises(requests.exceptions.ConnectionError):
        new_order(sb, s, customer, key="drop-1")
    [order] = sb.payout_orders()
    assert sb.request_log[-1]["fault"] == "drop_after_commit" and sb.request_log[-1]["status"] is None
    retry = new_order(sb, s, customer, key="drop-1")
    assert retry.json()["id"] == order["id"] and retry.headers["Idempotent-Replayed"] == "true"
    assert len(sb.payout_orders()) == 1


def test_stall_after_commit_times_out_the_client_but_keeps_the_order(sb):
    s = session()
    customer = new_customer(sb, s)["id"]
    sb.set_faults(Faults(script={1: "stall_after_commit"}, stall_seconds=1.0))
    with pytest.raises(requests.exceptions.ReadTimeout):
        s.post(sb.url + "/payout_orders", json=order_body(customer), timeout=(2, 0.3))
    assert len(sb.payout_orders()) == 1
    started = time.monotonic()
    assert session().get(sb.url + "/balance").status_code == 200  # other clients are not blocked
    assert time.monotonic() - started < 0.5


def test_truncated_json_after_commit(sb):
    s = session()
    customer = new_customer(sb, s)["id"]
    sb.set_faults(Faults(script={1: "truncated_json"}))
    r = new_order(sb, s, customer, key="trunc")
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    assert len(sb.payout_orders()) == 1
    assert new_order(sb, s, customer, key="trunc").json()["id"] == sb.payout_orders()[0]["id"]


def test_an_account_that_ignores_the_idempotency_key_creates_again(sb):
    s = session()
    customer = new_customer(sb, s)["id"]
    sb.set_faults(Faults(ignore_idempotency_key=True))
    first, second = new_order(sb, s, customer, key="same"), new_order(sb, s, customer, key="same")
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] != second.json()["id"] and "Idempotent-Replayed" not in second.headers
    assert len(sb.payout_orders()) == 2


def test_error_500_after_commit_keeps_the_order(sb):
    s = session()
    customer = new_customer(sb, s)["id"]
    sb.set_faults(Faults(script={1: "error_500_after_commit"}))
    assert_error(new_order(sb, s, customer, key="k500"), 500, "api_error")
    [order] = sb.payout_orders()
    assert sb.request_log[-1]["fault"] == "error_500_after_commit"
    assert new_order(sb, s, customer, key="k500").json()["id"] == order["id"]  # the key still replays


def test_conflict_409_says_in_progress_and_the_order_exists(sb):
    s = session(lang="es")
    customer = new_customer(sb, s)["id"]
    sb.set_faults(Faults(script={1: "conflict_409"}))
    body = assert_error(new_order(sb, s, customer, key="k409"), 409, "conflict_error", "Idempotency-Key")
    assert "procesando" in body["details"][0]["message"]
    assert len(sb.payout_orders()) == 1


def test_null_reference_is_assigned_on_a_later_read(sb):
    s = session()
    customer = new_customer(sb, s)["id"]
    sb.set_faults(Faults(script={1: "null_reference"}, reference_delay_gets=2))
    created = new_order(sb, s, customer, key="knull").json()
    assert created["reference"] is None and created["status"] == "pending"
    stored = sb.payout_orders()[0]["reference"]
    listed = s.get(sb.url + "/payout_orders").json()["data"][0]
    assert listed["reference"] is None  # a list does not use up the pending reads
    reads = [s.get(f"{sb.url}/payout_orders/{created['id']}").json()["reference"] for _ in range(3)]
    assert reads == [None, None, stored] and len(stored) == 16


def test_new_faults_touch_only_posts_and_searches_fail_only_lists_with_search(sb):
    s = session()
    customer = new_customer(sb, s)["id"]
    order = new_order(sb, s, customer).json()
    sb.set_faults(Faults(error_after_commit_rate=1.0, search_error_rate=1.0))
    assert s.put(f"{sb.url}/payout_orders/{order['id']}/cancel").status_code == 200  # a PUT is not a POST
    assert s.get(sb.url + "/payout_orders").status_code == 200
    assert s.get(sb.url + "/payout_orders", params={"search": "rk-0001"}).status_code == 503
    assert s.get(sb.url + "/customers", params={"search": "ana"}).status_code == 503
    assert new_order(sb, s, customer).status_code == 500 and len(sb.payout_orders()) == 2


@pytest.mark.parametrize("bad", [{"ignore_idempotency_key": "yes"}, {"reference_delay_gets": -1},
                                 {"conflict_rate": 1.5}, {"search_error_rate": -0.1}])
def test_new_fault_settings_are_validated(bad):
    with pytest.raises(FaultsError):
        Faults.from_dict(bad)


@pytest.mark.parametrize("kind, status", [("error_500", 500), ("error_502", 502), ("error_503", 503)])
def test_scripted_server_errors_happen_before_anything(sb, kind, status):
    sb.set_faults(Faults(script={2: kind}))
    s = session()
    customer = new_customer(sb, s)["id"]  # POST 1
    assert_error(new_order(sb, s, customer, key="k"), status, "api_error")  # POST 2
    assert sb.payout_orders() == []
    assert new_order(sb, s, customer, key="k").status_code == 200  # POST 3: not a replay
    assert len(sb.payout_orders()) == 1


def test_html_502_from_a_proxy(sb):
    sb.set_faults(Faults(script={1: "html_502"}))
    r = session().post(sb.url + "/customers", json={"name": "Ana", "email": "a@b.mx"})
    assert r.status_code == 502 and r.headers["Content-Type"].startswith("text/html")
    assert "<h1>502 Bad Gateway</h1>" in r.text
    assert sb.customers() == []


def test_random_error_rate_and_admin_routes_are_exempt(sb):
    sb.set_faults(Faults(error_rate=1.0, seed=1))
    s = session()
    statuses = {s.get(sb.url + "/balance").status_code for _ in range(30)}
    assert statuses <= {500, 502, 503} and len(statuses) > 1
    assert requests.get(sb.url + "/_sandbox/state").status_code == 200


def test_rate_limit_is_a_shared_token_bucket(sb):
    sb.set_faults(Faults(rate_limit_rps=5))
    clients = [session() for _ in range(3)]
    answers = [clients[i % 3].get(sb.url + "/balance") for i in range(12)]
    limited = [r for r in answers if r.status_code == 429]
    assert 5 <= len(answers) - len(limited) <= 8 and limited
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert_error(limited[0], 429, "rate_limit_error")
    time.sleep(0.5)
    assert clients[0].get(sb.url + "/balance").status_code == 200


def test_throttle_sends_429_with_retry_after(sb):
    sb.set_faults(Faults(throttle_rate=1.0, retry_after_seconds=3))
    r = session().post(sb.url + "/customers", json={"name": "Ana", "email": "a@b.mx"})
    assert r.status_code == 429 and r.headers["Retry-After"] == "3"
    assert sb.customers() == []
    sb.set_faults(Faults(script={1: "throttle"}))
    assert session().post(sb.url + "/customers", json={"name": "Ana", "email": "a@b.mx"}).status_code == 429
    assert sb.request_log[-1]["fault"] == "throttle"


def test_key_revoked_after_n_requests(sb):
    sb.set_faults(Faults(revoke_after_requests=2))
    s = session()
    assert [s.get(sb.url + "/balance").status_code for _ in range(4)] == [200, 200, 401, 401]
    assert_error(s.get(sb.url + "/balance"), 401, "authentication_error", code="revoked")
    assert sb.request_log[-1]["fault"] == "revoke"
    assert session(OTHER_KEY).get(sb.url + "/balance").status_code == 200  # counted per key
    sb.set_faults(Faults())  # the account was re-enabled: new faults lift a fault-made revocation
    assert s.get(sb.url + "/balance").status_code == 200


def test_latency(sb):
    sb.set_faults(Faults(latency_ms=150, latency_jitter_ms=50))
    started = time.monotonic()
    session().get(sb.url + "/balance")
    assert 0.15 <= time.monotonic() - started < 1.0


def test_faults_load_from_dict_json_and_toml(tmp_path):
    faults = Faults.from_dict({"error_rate": 0.1, "script": {"3": "drop_after_commit"}, "seed": 7})
    assert faults.script == {3: "drop_after_commit"} and Faults.from_dict(faults.to_dict()) == faults
    (tmp_path / "f.json").write_text(json.dumps({"latency_ms": 20, "script": {"1": "html_502"}}))
    assert Faults.from_file(tmp_path / "f.json") == Faults(latency_ms=20, script={1: "html_502"})
    (tmp_path / "f.toml").write_text('rate_limit_rps = 10\nseed = 3\n[script]\n2 = "error_503"\n')
    assert Faults.from_file(tmp_path / "f.toml") == Faults(rate_limit_rps=10, seed=3, script={2: "error_503"})
    for bad in ({"eror_rate": 0.1}, {"error_rate": 2}, {"script": {"1": "explode"}}, {"script": {"0": "html_502"}}):
        with pytest.raises(FaultsError):
            Faults.from_dict(bad)
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(FaultsError) as raised:
        Faults.from_file(tmp_path / "bad.json")
    assert "bad.json" in raised.value.message("en")
    assert set(FAULT_KINDS) >= {"error_500", "error_503", "html_502", "throttle", "drop_after_commit",
                                "stall_after_commit", "truncated_json"}


def test_seeded_faults_replay_the_same_decisions():
    profile = Faults(error_rate=0.3, drop_after_commit_rate=0.3, latency_jitter_ms=10, seed=42)

    def decisions():
        engine = FaultEngine(profile)
        return [vars(engine.decide("POST")) for _ in range(50)]

    assert decisions() == decisions()
