"""The Conekta emulator, over real HTTP: the contract in API.md, authentication, idempotency,
lists, persistence and the admin routes (its faults: ``test_sandbox_faults``)."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests

from batch_payouts.sandbox import Sandbox
from conftest import ctrl_c_reaches_the_child

from sandbox_client import (  # noqa: F401 - sb: the fixture, found by name
    ACCEPT, KEY, OTHER_KEY, assert_error, new_customer, new_order, order_body, session, sb,
)


# -- shapes ---------------------------------------------------------------------
def test_customer_and_payout_order_have_conekta_shape(sb):
    s = session()
    customer = new_customer(sb, s)
    assert re.fullmatch(r"cus_[A-Za-z0-9]{17}", customer["id"])
    assert customer["object"] == "customer" and customer["livemode"] is False
    assert (customer["name"], customer["email"], customer["phone"]) == ("Ana Núñez", "ana@ejemplo.mx", "5512345678")
    assert isinstance(customer["created_at"], int) and customer["corporate"] is False

    r = new_order(sb, s, customer_id=customer["id"])
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    assert int(r.headers["Content-Length"]) == len(r.content)
    order = r.json()
    assert uuid.UUID(order["id"]).version == 4
    assert re.fullmatch(r"\d{16}", order["reference"])
    assert order["object"] == "payout_order" and order["status"] == "pending" and order["livemode"] is False
    assert (order["amount"], order["currency"], order["reason"]) == (3000, "MXN", "Apoyo semanal")
    assert order["allowed_payout_methods"] == ["cashout"] and order["metadata"] == {"row_key": "rk-0001"}
    assert order["updated_at"] == order["created_at"]
    assert order["expires_at"] == order["created_at"] + 48 * 3600
    assert order["customer_info"] == {"id": customer["id"], "name": "Ana Núñez", "email": "ana@ejemplo.mx",
                                      "phone": "5512345678"}
    [payout] = order["payouts"]
    assert re.fullmatch(r"payout_[A-Za-z0-9]+", payout["id"])
    assert payout["object"] == "payout" and payout["payout_order_id"] == order["id"]
    assert (payout["amount"], payout["currency"], payout["status"]) == (3000, "MXN", "pending")
    assert payout["expires_at"] == order["expires_at"] and payout["livemode"] is False

    assert s.get(f"{sb.url}/payout_orders/{order['id']}").json() == order
    assert s.get(f"{sb.url}/customers/{customer['id']}").json() == customer
    assert sb.payout_orders() == [order] and sb.customers() == [customer]


def test_explicit_expiry_and_unique_references(sb):
    s = session()
    customer = new_customer(sb, s)["id"]
    expires = int(time.time()) + 3600
    assert new_order(sb, s, customer, expires_at=expires).json()["expires_at"] == expires
    references = {new_order(sb, s, customer).json()["reference"] for _ in range(30)}
    assert len(references) == 30


# -- validation -------------------------------------------------------------------
@pytest.mark.parametrize(
    "body, param",
    [
        ({"email": "a@b.mx"}, "name"),
        ({"name": "  ", "email": "a@b.mx"}, "name"),
        ({"name": 5, "email": "a@b.mx"}, "name"),
        ({"name": "Ana"}, "email"),
        ({"name": "Ana", "email": "ana-at-b.mx"}, "email"),
        ({"name": "Ana", "email": "ana@localhost"}, "email"),
        ({"name": "Ana", "email": "a@b.mx", "phone": 5512345678}, "phone"),
    ],
)
def test_customer_validation(sb, body, param):
    r = session().post(sb.url + "/customers", json=body)
    assert_error(r, 422, "parameter_validation_error", param)
    assert sb.customers() == []


_101_KEYS = {f"k{i}": "v" for i in range(101)}


@pytest.mark.parametrize(
    "overrides, param",
    [
        ({"currency": "mxn"}, "currency"),
        ({"currency": "MXNN"}, "currency"),
        ({"currency": ...}, "currency"),
        ({"amount": 3050}, "amount"),
        ({"amount": 0}, "amount"),
        ({"amount": -100}, "amount"),
        ({"amount": "3000"}, "amount"),
        ({"amount": 3000.0}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": ...}, "amount"),
        ({"customer_info": ...}, "customer_info.customer_id"),
        ({"customer_info": "cus_x"}, "customer_info"),
        ({"allowed_payout_methods": ["card"]}, "allowed_payout_methods"),
        ({"allowed_payout_methods": ...}, "allowed_payout_methods"),
        ({"payout": {"payout_method": {"type": "spei"}}}, "payout.payout_method.type"),
        ({"payout": ...}, "payout.payout_method.type"),
        ({"reason": ""}, "reason"),
        ({"reason": "x" * 41}, "reason"),
        ({"reason": ...}, "reason"),
        ({"metadata": _101_KEYS}, "metadata"),
        ({"metadata": ["a"]}, "metadata"),
        ({"expires_at": 1_000_000}, "expires_at"),
        ({"expires_at": "mañana"}, "expires_at"),
    ],
)
def test_payout_order_validation(sb, overrides, param):
    r = new_order(sb, **overrides)
    assert_error(r, 422, "parameter_validation_error", param)
    assert sb.payout_orders() == []


def test_boundaries_accepted(sb):
    s = session()
    customer = new_customer(sb, s)["id"]
    assert new_order(sb, s, customer, reason="x" * 40, metadata={f"k{i}": i for i in range(100)}).status_code == 200
    assert new_order(sb, s, customer, amount=100, currency="USD").status_code == 200


def test_messages_follow_accept_language(sb):
    spanish = session().post(sb.url + "/customers", json={"name": "Ana"}).json()["details"][0]
    english = session(lang="en-US,en;q=0.9").post(sb.url + "/customers", json={"name": "Ana"}).json()["details"][0]
    assert "obligatorio" in spanish["message"] and "required" in spanish["debug_message"]
    assert "required" in english["message"]
    assert spanish["code"] == english["code"] == "conekta.errors.parameter_validation.email.missing"


def test_every_problem_is_reported_at_once(sb):
    body = assert_error(new_order(sb, amount=3050, reason=""), 422, "parameter_validation_error")
    assert {d["param"] for d in body["details"]} == {"amount", "reason"}


def test_unknown_customer_is_404_also_across_keys(sb):
    assert_error(new_order(sb, customer_id="cus_doesnotexist12345"), 404, "resource_not_found_error",
                 "customer_info.customer_id")
    foreign = new_customer(sb, session(OTHER_KEY))["id"]
    assert_error(new_order(sb, customer_id=foreign), 404, "resource_not_found_error")


def test_bad_json_unknown_route_and_unknown_ids(sb):
    s = session()
    r = s.post(sb.url + "/customers", data=b'{"name": "Ana",', headers={"Content-Type": "application/json"})
    assert_error(r, 400, "parameter_validation_error", code="malformed_json")
    assert_error(s.post(sb.url + "/customers", json=["Ana"]), 422, "parameter_validation_error")
    assert_error(s.get(sb.url + "/charges"), 404, "resource_not_found_error")
    assert_error(s.delete(sb.url + "/customers"), 404, "resource_not_found_error")
    assert_error(s.get(sb.url + "/payout_orders/" + str(uuid.uuid4())), 404, "resource_not_found_error")
    assert_error(s.get(sb.url + "/customers/cus_nope"), 404, "resource_not_found_error")
    log_ids = {s.get(sb.url + "/charges").json()["log_id"] for _ in range(20)}
    assert len(log_ids) == 20


@pytest.mark.parametrize("accept", [None, "application/json", "application/vnd.conekta-v2+json"])
def test_versioned_accept_header_is_required(sb, accept):
    r = session(accept=accept).post(sb.url + "/customers", json={"name": "Ana", "email": "a@b.mx"})
    assert_error(r, 400, "parameter_validation_error", "Accept")
    assert sb.customers() == []
    assert session(accept="application/vnd.conekta-v2.3.0+json").get(sb.url + "/balance").status_code == 200


# -- authentication ------------------------------------------------------------------
def test_basic_and_bearer_auth_and_401(sb):
    assert session(bearer=True).get(sb.url + "/balance").status_code == 200
    assert session().get(sb.url + "/balance").status_code == 200
    for s in (session(None), session("sk_test_nope"), session("key_x"), session("key_x", bearer=True)):
        body = assert_error(s.get(sb.url + "/balance"), 401, "authentication_error")
        assert KEY not in json.dumps(body)
    garbage = requests.get(sb.url + "/balance", headers={"Accept": ACCEPT, "Authorization": "Basic %%%"})
    assert_error(garbage, 401, "authentication_error")


def test_explicit_key_set_and_livemode():
    live = "key_live_REAL_0001"
    with Sandbox(keys={KEY, live}) as sb:
        assert_error(session(OTHER_KEY).get(sb.url + "/balance"), 401, "authentication_error")
        assert session(bearer=True).get(sb.url + "/balance").status_code == 200
        s = session(live)
        customer = new_customer(sb, s)
        order = new_order(sb, s, customer["id"]).json()
        assert customer["livemode"] is True and order["livemode"] is True and order["payouts"][0]["livemode"]


def test_data_is_scoped_per_key(sb):
    mine = new_order(sb).json()
    other = session(OTHER_KEY)
    assert_error(other.get(f"{sb.url}/payout_orders/{mine['id']}"), 404, "resource_not_found_error")
    assert other.get(sb.url + "/payout_orders", params={"search": "rk-0001"}).json()["data"] == []
    assert len(sb.payout_orders(KEY)) == 1 and sb.payout_orders(OTHER_KEY) == []
    assert len(sb.customers(KEY)) == 1


def test_revoked_key_gets_401(sb):
    s = session()
    assert s.get(sb.url + "/balance").status_code == 200
    sb.revoke_key(KEY)
    assert_error(s.get(sb.url + "/balance"), 401, "authentication_error", code="revoked")
    assert session(OTHER_KEY).get(sb.url + "/balance").status_code == 200


# -- idempotency ----------------------------------------------------------------------
def test_idempotent_replay_and_key_reuse(sb):
    s = session()
    customer = new_customer(sb, s)["id"]
    first = new_order(sb, s, customer, key="idem-1")
    again = new_order(sb, s, customer, key="idem-1")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert len(sb.payout_orders()) == 1
    reused = new_order(sb, s, customer, key="idem-1", amount=5000)
    assert_error(reused, 422, "parameter_validation_error", code="conekta.errors.idempotency.key_reused")
    # the same key on another endpoint is a reuse too
    r = s.post(sb.url + "/customers", json={"name": "B", "email": "b@b.mx"}, headers={"Idempotency-Key": "idem-1"})
    assert_error(r, 422, "parameter_validation_error", code="key_reused")
    # scoped per API key: another key may use the same Idempotency-Key
    other = session(OTHER_KEY)
    assert new_order(sb, other, key="idem-1").json()["id"] != first.json()["id"]
    assert [e["replayed"] for e in sb.request_log if e["idempotency_key"] == "idem-1"][:2] == [False, True]


def test_refusals_are_not_stored_under_the_key(sb):
    s = session()
    assert new_order(sb, s, customer_id="cus_missing000000000", key="idem-2").status_code == 404
    assert new_order(sb, s, customer_id="cus_missing000000000", key="idem-2").status_code == 404
    assert sb.payout_orders() == []


def test_concurrent_posts_with_one_key_create_one_order(sb):
    customer = new_customer(sb)["id"]
    body = order_body(customer)
    results, barrier = [], threading.Barrier(16)

    def post():
        with session() as s:
            barrier.wait()
            r = s.post(sb.url + "/payout_orders", json=body, headers={"Idempotency-Key": "same"})
            results.append((r.status_code, r.json()["id"]))

    threads = [threading.Thread(target=post) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 16 and {status for status, _ in results} == {200}
    assert len({order_id for _, order_id in results}) == 1
    assert len(sb.payout_orders()) == 1


def test_many_clients_at_once(sb):
    customer = new_customer(sb)["id"]
    errors = []

    def work(n):
        with session() as s:
            for i in range(10):
                r = s.post(sb.url + "/payout_orders", json=order_body(customer, metadata={"row_key": f"{n}-{i}"}),
                           headers={"Idempotency-Key": f"{n}-{i}"})
                if r.status_code != 200:
                    errors.append(r.text)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(sb.payout_orders()) == 200


def test_keep_alive_serves_several_requests_on_one_connection(sb):
    import base64

    conn = http.client.HTTPConnection("127.0.0.1", sb.port, timeout=5)
    auth = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
    for _ in range(3):
        conn.request("GET", "/balance", headers={"Authorization": auth, "Accept": ACCEPT})
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())["object"] == "balance"
        assert response.getheader("Connection") != "close"
    conn.close()


# -- lists -------------------------------------------------------------------------------
def test_pagination_follows_next_newest_first(sb):
    s = session()
    customer = new_customer(sb, s)["id"]
    created = [new_order(sb, s, customer, metadata={"row_key": f"rk-{i}"}).json()["id"] for i in range(7)]
    seen, params = [], {"limit": 3}
    while True:
        page = s.get(sb.url + "/payout_orders", params=params).json()
        assert page["object"] == "list" and len(page["data"]) <= 3
        seen += [o["id"] for o in page["data"]]
        if not page["has_more"]:
            assert page["next_page_url"] is None
            break
        assert f"next={page['data'][-1]['id']}" in page["next_page_url"]
        params = {"limit": 3, "next": page["data"][-1]["id"]}
    assert seen == created[::-1]
    page = s.get(sb.url + "/payout_orders", params={"limit": 3, "next": created[3]}).json()
    assert [o["id"] for o in page["data"]] == created[2::-1] and page["previous_page_url"]
    back = s.get(page["previous_page_url"]).json()
    assert [o["id"] for o in back["data"]] == created[5:2:-1] and back["has_more"] and back["previous_page_url"]
    assert len(s.get(sb.url + "/payout_orders").json()["data"]) == 7  # default limit 20
    for bad in ("0", "251", "abc", "-1"):
        assert_error(s.get(sb.url + "/payout_orders", params={"limit": bad}), 422, "parameter_validation_error",
                     "limit")
    assert_error(s.get(sb.url + "/payout_orders", params={"next": "nope"}), 422, "parameter_validation_error")


def test_search_by_metadata_value_reference_email_and_reason(sb):
    s = session()
    customer = new_customer(sb, s, email="Lucia@Ejemplo.MX")["id"]
    target = new_order(sb, s, customer, metadata={"row_key": "RowKey-ABC-123", "n": 7}, reason="Beca Mayo").json()
    for i in range(5):
        new_order(sb, s, new_customer(sb, s, email=f"x{i}@e.mx")["id"], metadata={"row_key": f"other-{i}"})

    def found(term):
        return [o["id"] for o in s.get(sb.url + "/payout_orders", params={"search": term}).json()["data"]]

    assert found("rowkey-abc-123") == [target["id"]]
    assert found(target["reference"]) == [target["id"]]
    assert found(target["id"].upper()) == [target["id"]]
    assert found("lucia@ejemplo.mx") == [target["id"]]
    assert found("beca mayo") == [target["id"]]
    assert len(found("other-")) == 5
    assert found("no-such-thing") == []
    customers = s.get(sb.url + "/customers", params={"search": "LUCIA"}).json()["data"]
    assert [c["id"] for c in customers] == [customer]


# -- cancel and balance ------------------------------------------------------------------
def _available(s, sb):
    [money] = s.get(sb.url + "/balance").json()["available"]
    assert money["currency"] == "MXN"
    return money["amount"]


def test_cancel_and_balance():
    with Sandbox(starting_balance=1_000_000) as sb:
        s = session()
        balance = s.get(sb.url + "/balance").json()
        assert balance["object"] == "balance"
        for name in ("available", "pending", "retained", "cashout_retention_amount"):
            assert isinstance(balance[name], list) and balance[name][0]["currency"] == "MXN"
        assert _available(s, sb) == 1_000_000
        order = new_order(sb, s, amount=300_000).json()
        assert _available(s, sb) == 700_000
        cancelled = s.put(f"{sb.url}/payout_orders/{order['id']}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled" and cancelled.json()["payouts"][0]["status"] == "cancelled"
        assert s.get(f"{sb.url}/payout_orders/{order['id']}").json()["status"] == "cancelled"
        assert _available(s, sb) == 1_000_000
        assert_error(s.put(f"{sb.url}/payout_orders/{order['id']}/cancel"), 428, "precondition_required_error")
        assert_error(s.put(f"{sb.url}/payout_orders/{uuid.uuid4()}/cancel"), 404, "resource_not_found_error")
        assert_error(new_order(sb, s, amount=1_000_100), 402, "processing_error", "amount")
        assert _available(s, sb) == 1_000_000
        assert session(OTHER_KEY).get(sb.url + "/balance").json()["available"][0]["amount"] == 1_000_000


def test_an_account_with_dollars_has_a_balance_per_currency():
    with Sandbox(starting_balance={"MXN": 1_000_000, "USD": 5_000}) as sb:
        s = session()
        customer = new_customer(sb, s)["id"]
        assert new_order(sb, s, customer, amount=2_000, currency="USD").status_code == 200
        assert_error(new_order(sb, s, customer, amount=3_100, currency="USD"), 402, "processing_error", "amount")
        balance = s.get(sb.url + "/balance").json()
        assert balance["available"] == [{"amount": 1_000_000, "currency": "MXN"}, {"amount": 3_000, "currency": "USD"}]
        assert balance["cashout_retention_amount"] == [{"amount": 0, "currency": "MXN"}, {"amount": 2_000, "currency": "USD"}]


@pytest.mark.parametrize("status", ["cashed", "expired"])
def test_final_statuses_cannot_be_cancelled(sb, status):
    s = session()
    order = new_order(sb, s).json()
    changed = sb.set_order_status(order["id"], status)
    assert changed["status"] == status
    assert s.get(f"{sb.url}/payout_orders/{order['id']}").json()["status"] == status
    assert_error(s.put(f"{sb.url}/payout_orders/{order['id']}/cancel"), 428, "precondition_required_error")
    with pytest.raises(KeyError):
        sb.set_order_status("nope", "cashed")


# -- persistence -----------------------------------------------------------------------
def test_state_survives_a_restart(tmp_path):
    state = tmp_path / "state.sqlite"
    with Sandbox(state_path=state) as first:
        s = session()
        order = new_order(first, s, key="idem-restart").json()
    with Sandbox(state_path=state) as second:
        s = session()
        assert s.get(f"{second.url}/payout_orders/{order['id']}").json() == order
        replay = s.post(second.url + "/payout_orders", json=order_body(order["customer_info"]["id"]),
                        headers={"Idempotency-Key": "idem-restart"})
        assert replay.json()["id"] == order["id"] and replay.headers["Idempotent-Replayed"] == "true"
        assert [o["id"] for o in second.payout_orders()] == [order["id"]]
        assert new_order(second, s, order["customer_info"]["id"]).status_code == 200
        assert len(second.payout_orders()) == 2
    assert KEY.encode() not in state.read_bytes()


def test_finds_each_order_by_its_metadata_among_ten_thousand(sb):
    """A lookup after a lost answer searches by the row's key: among many orders it finds that row's
    order and no other (how fast is a benchmark's business, not a test's)."""
    from batch_payouts.sandbox.store import fingerprint

    s = session()
    customer = new_customer(sb, s)["id"]
    scope = fingerprint(KEY)
    with sb.store.atomic():
        for i in range(10_000):
            sb.api.create_payout_order(scope, False, order_body(customer, metadata={"row_key": f"bulk-{i}"}))
    for i in range(20):
        assert new_order(sb, s, customer, key=f"fast-{i}").status_code == 200
        wanted = f"bulk-{9000 + i * 7}"
        found = s.get(sb.url + "/payout_orders", params={"search": wanted}).json()["data"]
        assert [order["metadata"]["row_key"] for order in found] == [wanted]
    assert len(sb.payout_orders()) == 10_020


# -- admin routes, CLI server, secrecy ---------------------------------------------------------
def test_admin_routes(sb):
    order = new_order(sb).json()
    state = requests.get(sb.url + "/_sandbox/state").json()
    assert [o["id"] for o in state["payout_orders"]] == [order["id"]] and len(state["customers"]) == 1
    r = requests.put(sb.url + "/_sandbox/faults", json={"script": {"1": "error_503"}})
    assert r.status_code == 200 and sb.faults.script == {1: "error_503"}
    assert requests.put(sb.url + "/_sandbox/faults", json={"nope": 1}).status_code == 422
    r = requests.post(f"{sb.url}/_sandbox/payout_orders/{order['id']}/status", json={"status": "cashed"})
    assert r.json()["status"] == "cashed" and sb.payout_orders()[0]["status"] == "cashed"
    assert requests.post(f"{sb.url}/_sandbox/payout_orders/nope/status", json={"status": "x"}).status_code == 404
    assert requests.post(sb.url + "/_sandbox/keys/revoke", json={"key": KEY}).json() == {"revoked": True}
    before = len(sb.request_log)
    assert requests.get(sb.url + "/_sandbox/state").status_code == 200  # no faults, not logged
    assert len(sb.request_log) == before
    assert session().post(sb.url + "/customers", json={"name": "A", "email": "a@b.mx"}).status_code == 503
    assert_error(session().get(sb.url + "/balance"), 401, "authentication_error")


def test_the_key_is_never_logged(sb, capfd):
    s = session()
    new_order(sb, s, key="secret-check")
    session("key_test_WRONG_but_shaped").get(sb.url + "/nope")
    session("bad").get(sb.url + "/balance")
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    text = json.dumps(sb.request_log) + json.dumps(requests.get(sb.url + "/_sandbox/state").json())
    assert KEY not in text and "WRONG" not in text
    assert set(sb.request_log[0]) == {"method", "path", "status", "idempotency_key", "fault", "replayed", "at"}


def test_serve_forever_prints_the_url_and_stops_on_ctrl_c(tmp_path):
    code = "from batch_payouts.sandbox import serve_forever; serve_forever(port=0, state_path=%r)" % str(
        tmp_path / "s.sqlite")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                               preexec_fn=ctrl_c_reaches_the_child)
    try:
        url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        assert requests.get(url + "/_sandbox/state").json() == {"customers": [], "payout_orders": []}
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and "Traceback" not in err
