"""After creation, over real HTTP: events for every change, GET /events, the webhook keys, signed
deliveries to a real receiver (retries, failing, duplicates) and the automatic cash/expire mode."""

from __future__ import annotations

import re
import threading

import pytest
import requests

from batch_payouts.sandbox import AutoSettle, FinalStatus, Sandbox
from batch_payouts.sandbox.auto import AutoSettleError, AutoSettler
from batch_payouts.sandbox.webhooks import backoff

from sandbox_client import KEY, OTHER_KEY, new_customer, new_order, session, sb  # noqa: F401 - sb: the fixture
from webhook_receiver import Receiver, verify

EVENT_ID = re.compile(r"^evt_[A-Za-z0-9]{24}$")


def _orders(sb, n: int, s=None) -> list[dict]:
    s = s or session()
    customer = new_customer(sb, s)["id"]
    return [new_order(sb, s, customer).json() for _ in range(n)]


def _all_events(url: str, s=None) -> list[dict]:
    """Every event of the key, newest first, following next_page_url as a client does."""
    s = s or session()
    page = s.get(url + "/events", params={"limit": 2}).json()
    found = list(page["data"])
    while page["next_page_url"]:
        page = s.get(page["next_page_url"]).json()
        found += page["data"]
    return found


# -- events -------------------------------------------------------------------------
def test_every_creation_and_status_change_is_an_event_with_the_order_as_it_became(sb):
    s = session()
    cashed, expired, cancelled, untouched = _orders(sb, 4, s)
    sb.cash(cashed["reference"])  # by reference
    r = requests.post(f"{sb.url}/_sandbox/payout_orders/{expired['id']}/expire")  # by id, the admin route
    assert r.status_code == 200 and r.json()["status"] == "expired"
    assert s.put(f"{sb.url}/payout_orders/{cancelled['id']}/cancel").status_code == 200  # Conekta's own cancel

    listed = s.get(sb.url + "/events").json()
    assert listed["object"] == "list" and listed["has_more"] is False
    events = listed["data"]
    assert [e["type"] for e in events] == ["cashout.canceled", "cashout.expired", "cashout.confirmed",
                                           *["payout_order.created"] * 4]  # newest first
    for event in events:
        assert EVENT_ID.match(event["id"]) and event["object"] == "event" and event["livemode"] is False
        assert isinstance(event["created_at"], int)
        assert event["webhook_status"] == "pending" and event["webhook_logs"] == []  # no webhook URL configured
    assert len({e["id"] for e in events}) == 7

    changed = {e["data"]["object"]["id"]: e for e in events[:3]}
    for order, status in ((cashed, "cashed"), (expired, "expired"), (cancelled, "cancelled")):
        event = changed[order["id"]]
        assert event["data"]["object"] == s.get(f"{sb.url}/payout_orders/{order['id']}").json()
        assert event["data"]["object"]["status"] == status
        assert event["data"]["previous_attributes"] == {"status": "pending"}
    created = [e["data"] for e in events[3:]]
    assert [d["object"]["id"] for d in reversed(created)] == [o["id"] for o in (cashed, expired, cancelled, untouched)]
    assert all(d["previous_attributes"] == {} and d["object"]["status"] == "pending" for d in created)

    assert session(OTHER_KEY).get(sb.url + "/events").json()["data"] == []  # another account sees none of them
    assert [e["id"] for e in sb.events()] == [e["id"] for e in reversed(events)]
    assert requests.get(sb.url + "/_sandbox/events").json()["events"] == sb.events()


def test_a_final_status_never_changes_and_repeating_one_records_nothing(sb):
    s = session()
    order = _orders(sb, 1, s)[0]
    sb.expire(order["id"])
    assert sb.expire(order["reference"])["status"] == "expired"  # the same status again: no change, no event
    with pytest.raises(FinalStatus):
        sb.cash(order["reference"])
    r = requests.post(f"{sb.url}/_sandbox/payout_orders/{order['reference']}/cash")
    assert r.status_code == 409
    assert r.json()["order"]["status"] == "expired"
    assert "already 'expired'" in r.json()["details"][0]["message"]
    assert requests.post(f"{sb.url}/_sandbox/payout_orders/{order['id']}/status", json={"status": "open"}).status_code == 409
    assert requests.post(f"{sb.url}/_sandbox/payout_orders/0000000000000000/cash").status_code == 404
    assert s.get(f"{sb.url}/payout_orders/{order['id']}").json()["status"] == "expired"
    assert [e["type"] for e in sb.events()] == ["payout_order.created", "cashout.expired"]


def test_events_page_like_the_other_lists(sb):
    s = session()
    for order in _orders(sb, 3, s):
        sb.cash(order["id"])
    everything = s.get(sb.url + "/events", params={"limit": 250}).json()["data"]
    assert len(everything) == 6
    first = s.get(sb.url + "/events", params={"limit": 4}).json()
    assert first["has_more"] is True and first["previous_page_url"] is None
    assert [e["id"] for e in first["data"]] == [e["id"] for e in everything[:4]]
    second = s.get(first["next_page_url"]).json()
    assert second["has_more"] is False and second["next_page_url"] is None
    assert [e["id"] for e in second["data"]] == [e["id"] for e in everything[4:]]
    back = s.get(second["previous_page_url"]).json()
    assert [e["id"] for e in back["data"]] == [e["id"] for e in everything[:4]]
    assert [e["id"] for e in _all_events(sb.url, s)] == [e["id"] for e in everything]
    assert s.get(sb.url + "/events", params={"next": "evt_nope"}).status_code == 422
    assert s.get(sb.url + "/events", params={"limit": 0}).status_code == 422
    found = s.get(sb.url + "/events", params={"search": everything[0]["data"]["object"]["reference"]}).json()["data"]
    assert [e["type"] for e in found] == ["cashout.confirmed", "payout_order.created"]
    assert session(key=None).get(sb.url + "/events").status_code == 401


# -- webhook keys -----------------------------------------------------------------------
def test_webhook_keys_are_made_once_per_account_kept_in_the_state_and_rotated_by_post(tmp_path):
    state = tmp_path / "state.sqlite"
    with Sandbox(state_path=state) as first:
        listed = session().get(first.url + "/webhook_keys").json()
        assert listed["object"] == "list" and listed["has_more"] is False
        [key] = listed["data"]
        assert re.fullmatch(r"whk_[A-Za-z0-9]+", key["id"]) and key["object"] == "webhook_key"
        assert key["active"] is True and key["livemode"] is False and key["deactivated_at"] is None
        assert isinstance(key["created_at"], int)
        assert key["public_key"].startswith("-----BEGIN PUBLIC KEY-----\n")
        assert key["public_key"].rstrip().endswith("-----END PUBLIC KEY-----")
        assert "PRIVATE" not in str(listed)
        assert session().get(first.url + "/webhook_keys").json()["data"] == [key]  # not a new one per call
        other = session(OTHER_KEY).get(first.url + "/webhook_keys").json()["data"]
        assert other[0]["public_key"] != key["public_key"]  # one per account
    with Sandbox(state_path=state) as second:  # a restart signs with the key receivers already fetched
        assert session().get(second.url + "/webhook_keys").json()["data"] == [key]
        assert second.webhook_public_key(KEY) == key["public_key"]
        created = session().post(second.url + "/webhook_keys", json={})
        assert created.status_code == 200
        new = created.json()
        assert new["active"] is True and new["public_key"] != key["public_key"]
        keys = session().get(second.url + "/webhook_keys").json()["data"]
        assert [k["id"] for k in keys] == [new["id"], key["id"]]  # newest first
        assert keys[1]["active"] is False and isinstance(keys[1]["deactivated_at"], int)
        assert second.webhook_public_key(KEY) == new["public_key"]
    assert KEY.encode() not in state.read_bytes()


# -- deliveries ---------------------------------------------------------------------------
def test_deliveries_are_signed_with_the_published_key_over_the_exact_body():
    with Receiver() as receiver, Sandbox(webhook_urls=[receiver.url], webhook_backoff=0.01) as sb:
        s = session()
        order = _orders(sb, 1, s)[0]
        sb.cash(order["reference"])
        deliveries = receiver.wait_for(2)
        assert sb.wait_until_settled()
        public_key = s.get(sb.url + "/webhook_keys").json()["data"][0]["public_key"]
        for delivery in deliveries:
            assert delivery["path"] == "/webhooks/conekta"
            assert delivery["headers"]["Content-Type"] == "application/json"
            assert verify(public_key, delivery["body"], delivery["headers"]["digest"])
            assert not verify(public_key, delivery["body"] + b" ", delivery["headers"]["digest"])  # the exact bytes
        by_type = {e["type"]: e for e in receiver.events()}
        assert set(by_type) == {"payout_order.created", "cashout.confirmed"}
        confirmed = by_type["cashout.confirmed"]
        assert confirmed["data"]["object"]["reference"] == order["reference"]
        assert confirmed["data"]["object"]["status"] == "cashed"
        assert confirmed["data"]["previous_attributes"] == {"status": "pending"}
        listed = {e["id"]: e for e in s.get(sb.url + "/events").json()["data"]}
        assert {k: v for k, v in confirmed.items() if not k.startswith("webhook_")} == \
            {k: v for k, v in listed[confirmed["id"]].items() if not k.startswith("webhook_")}
        assert listed[confirmed["id"]]["webhook_status"] == "successful"
        [log] = listed[confirmed["id"]]["webhook_logs"]
        assert log["url"] == receiver.url and log["last_http_response_status"] == 200 and log["failed_attempts"] == 0


def test_a_delivery_answered_500_is_retried_until_it_is_accepted():
    with Receiver(answers=[500, 503]) as receiver, Sandbox(webhook_urls=[receiver.url], webhook_backoff=0.01) as sb:
        _orders(sb, 1)
        deliveries = receiver.wait_for(3)
        assert sb.wait_until_settled()
        assert [d["answered"] for d in deliveries] == [500, 503, 200]
        assert len({d["body"] for d in deliveries}) >= 1
        assert {e["type"] for e in receiver.events()} == {"payout_order.created"}
        assert [(a["attempt"], a["http_status"], a["outcome"]) for a in sb.webhook_log] == \
            [(1, 500, "retry"), (2, 503, "retry"), (3, 200, "successful")]
        [event] = session().get(sb.url + "/events").json()["data"]
        assert event["webhook_status"] == "successful"
        assert event["webhook_logs"][0]["failed_attempts"] == 2
        shown = requests.get(sb.url + "/_sandbox/webhooks").json()
        assert shown["urls"] == [receiver.url] and len(shown["deliveries"]) == 3


def test_a_receiver_that_never_accepts_leaves_the_event_failing_after_its_attempts():
    with Receiver(answers=[500] * 10) as receiver, \
            Sandbox(webhook_urls=[receiver.url], webhook_attempts=3, webhook_backoff=0.01) as sb:
        _orders(sb, 1)
        assert sb.wait_until_settled()
        assert len(receiver.deliveries) == 3
        assert [a["outcome"] for a in sb.webhook_log] == ["retry", "retry", "failing"]
        [event] = session().get(sb.url + "/events").json()["data"]
        assert event["webhook_status"] == "failing"
        assert event["webhook_logs"][0]["failed_attempts"] == 3
        assert event["webhook_logs"][0]["last_http_response_status"] == 500


def test_an_unreachable_receiver_is_retried_then_failing():
    with Receiver() as closed:
        url = closed.url
    with Sandbox(webhook_urls=[url], webhook_attempts=2, webhook_backoff=0.01) as sb:
        _orders(sb, 1)
        assert sb.wait_until_settled()
        assert [(a["http_status"], a["outcome"]) for a in sb.webhook_log] == [(None, "retry"), (None, "failing")]
        assert all(a["error"] for a in sb.webhook_log)
        assert sb.events()[0]["webhook_status"] == "failing"


def test_the_api_answers_while_a_receiver_hangs():
    with Receiver() as receiver, Sandbox(webhook_urls=[receiver.url], webhook_backoff=0.01) as sb:
        receiver.hold.clear()  # the receiver takes the first delivery and does not answer
        s = session()
        first = _orders(sb, 1, s)[0]
        receiver.wait_for(1)
        more = [new_order(sb, s, first["customer_info"]["id"]).json() for _ in range(3)]  # answered all the same
        assert s.get(f"{sb.url}/payout_orders/{more[-1]['id']}").json()["status"] == "pending"
        assert sb.cash(more[0]["reference"])["status"] == "cashed"
        receiver.hold.set()
        assert sb.wait_until_settled()
        assert len(receiver.events()) == 5


def test_an_event_can_be_delivered_again_and_webhooks_can_be_set_on_a_running_sandbox(sb):
    with Receiver() as receiver:
        _orders(sb, 1)  # before any URL: not delivered
        r = requests.put(sb.url + "/_sandbox/webhooks", json={"urls": [receiver.url]})
        assert r.status_code == 200 and r.json() == {"urls": [receiver.url]}
        assert requests.put(sb.url + "/_sandbox/webhooks", json={"urls": ["nope"]}).status_code == 422
        order = sb.payout_orders()[0]
        sb.cash(order["id"])
        [delivery] = receiver.wait_for(1)
        confirmed = receiver.events()[0]
        assert confirmed["type"] == "cashout.confirmed"
        assert requests.post(f"{sb.url}/_sandbox/events/{confirmed['id']}/redeliver").status_code == 200
        assert requests.post(sb.url + "/_sandbox/events/evt_nope/redeliver").status_code == 404
        receiver.wait_for(2)
        assert sb.wait_until_settled()
        assert [e["id"] for e in receiver.events()] == [confirmed["id"], confirmed["id"]]  # a duplicate, as Conekta may


def test_a_change_written_to_the_state_by_another_process_is_delivered(tmp_path, cli):
    state = tmp_path / "state.sqlite"
    with Receiver() as receiver, Sandbox(state_path=state, webhook_urls=[receiver.url], webhook_backoff=0.01) as sb:
        order = _orders(sb, 1)[0]
        receiver.wait_for(1)
        result = cli("sandbox", "cash", order["reference"], "--state", state)  # writes the file, not the socket
        assert result.exit_code == 0, result.output
        receiver.wait_for(2)
        assert [e["type"] for e in receiver.events()] == ["payout_order.created", "cashout.confirmed"]


def test_backoff_doubles_from_the_first_wait_and_is_capped():
    assert [backoff(n, 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff(30, 1.0) == 300.0


# -- automatic mode -------------------------------------------------------------------------
def test_the_automatic_mode_cashes_and_expires_the_chosen_share_repeatably():
    settings = AutoSettle(cash=0.5, expire=0.25, after=0, seed=7)
    expected = [settings.fate(n)[0] for n in range(1, 13)]
    assert {"cashed", "expired", None} <= set(expected)  # this seed gives some of each
    statuses = []
    for _ in range(2):  # the same seed, the same fates
        with Sandbox(auto_settle=settings) as sb:
            orders = _orders(sb, 12)
            assert sb.wait_until_settled()
            now = {o["id"]: o["status"] for o in sb.payout_orders()}
            statuses.append([now[o["id"]] for o in orders])
            assert [(a["order_id"], a["status"]) for a in sorted(sb.auto_settled, key=lambda a: a["n"])] == \
                [(o["id"], fate) for o, fate in zip(orders, expected) if fate]
            types = [e["type"] for e in sb.events()]
            assert types.count("cashout.confirmed") == expected.count("cashed")
            assert types.count("cashout.expired") == expected.count("expired")
    assert statuses[0] == statuses[1] == [fate or "pending" for fate in expected]
    assert AutoSettle(cash=0.5, after=0, seed=8).fate(1) == AutoSettle(cash=0.5, after=0, seed=8).fate(1)


def test_the_automatic_mode_leaves_an_order_cancelled_before_its_time_alone(sb):
    settler = AutoSettler(sb.api, AutoSettle(cash=1.0, after=0, seed=1))  # stepped by hand, not a thread
    s = session()
    kept, cancelled = _orders(sb, 2, s)
    settler.step(now=0)  # sees both creations; neither is due yet
    assert s.put(f"{sb.url}/payout_orders/{cancelled['id']}/cancel").status_code == 200
    settler.step()
    assert [(a["order_id"], a.get("skipped")) for a in settler.applied] == \
        [(kept["id"], None), (cancelled["id"], "already cancelled")]
    assert {o["id"]: o["status"] for o in sb.payout_orders()} == {kept["id"]: "cashed", cancelled["id"]: "cancelled"}


@pytest.mark.parametrize("kwargs", [{"cash": 1.5}, {"expire": -0.1}, {"cash": 0.7, "expire": 0.4}, {"after": -1}])
def test_automatic_mode_settings_out_of_range_are_refused(kwargs):
    with pytest.raises(AutoSettleError):
        AutoSettle(**kwargs)


# -- expiry by time -------------------------------------------------------------------
def _soon_expiring_order(sb, s, seconds: int = 1) -> dict:
    import time

    customer = new_customer(sb, s)["id"]
    response = new_order(sb, s, customer, expires_at=int(time.time()) + seconds)
    assert response.status_code == 200, response.text
    return response.json()


def _poll(check, timeout: float = 30):
    import time

    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)
    return value


def test_an_order_past_its_expires_at_is_expired_when_next_looked_at_with_its_event(sb):
    """No thread runs here (no webhook URL, no automatic mode): the next request finds it expired."""
    s = session()
    order = _soon_expiring_order(sb, s)
    held = sb.balance(KEY)["cashout_retention_amount"][0]["amount"]
    seen = _poll(lambda: (lambda o: o if o["status"] == "expired" else None)(
        s.get(f"{sb.url}/payout_orders/{order['id']}").json()))
    assert seen["payouts"][0]["status"] == "expired" and seen["updated_at"] == order["expires_at"]
    newest = s.get(sb.url + "/events").json()["data"][0]
    assert newest["type"] == "cashout.expired" and newest["created_at"] == order["expires_at"]
    assert newest["data"]["object"]["id"] == order["id"]
    assert newest["data"]["previous_attributes"] == {"status": "pending"}
    assert sb.balance(KEY)["cashout_retention_amount"][0]["amount"] == held - order["amount"]  # the money is free again
    with pytest.raises(FinalStatus):  # too late to cash it at the store
        sb.cash(order["reference"])
    assert s.put(f"{sb.url}/payout_orders/{order['id']}/cancel").status_code == 428
    assert [e["type"] for e in sb.events(KEY)].count("cashout.expired") == 1  # once, however often looked at


def test_expiry_is_checked_only_for_orders_past_their_time_and_never_moves_a_final_one(sb):
    s = session()
    customer = new_customer(sb, s)["id"]
    later = new_order(sb, s, customer).json()  # 48 hours from now
    cashed = new_order(sb, s, customer).json()
    sb.cash(cashed["id"])
    assert sb.api.expire_due(now=later["expires_at"] - 1) == []
    expired = sb.api.expire_due(now=later["expires_at"])
    assert [o["id"] for o in expired] == [later["id"]]  # the cashed one stays cashed
    assert {o["id"]: o["status"] for o in sb.payout_orders()} == {later["id"]: "expired", cashed["id"]: "cashed"}
    assert sb.api.expire_due(now=later["expires_at"] + 10**6) == []


def test_the_background_thread_expires_an_order_by_itself_and_delivers_the_event():
    """With webhooks on, nobody has to ask: the expiry goes out as a signed ``cashout.expired``."""
    with Receiver() as receiver, Sandbox(webhook_urls=[receiver.url], webhook_backoff=0.01) as sb:
        order = _soon_expiring_order(sb, session())
        requests_before = len(sb.request_log)
        deliveries = receiver.wait_for(2)
        assert len(sb.request_log) == requests_before  # no API request made it happen
        public_key = sb.webhook_public_key(KEY)
        assert all(verify(public_key, d["body"], d["headers"]["digest"]) for d in deliveries)
        expired = receiver.events()[-1]
        assert expired["type"] == "cashout.expired" and expired["data"]["object"]["id"] == order["id"]


def test_a_state_file_from_before_expiry_by_time_learns_its_open_orders_when_opened(tmp_path):
    state = tmp_path / "state.sqlite"
    with Sandbox(state_path=state) as sb:
        order = _orders(sb, 1)[0]
        sb.store._db.execute("DROP TABLE order_expiries")  # as a state file written before it existed
        sb.store.close()
    again = Sandbox(state_path=state)
    assert [o["id"] for o in again.api.expire_due(now=order["expires_at"])] == [order["id"]]


def test_a_redelivery_asked_for_while_an_attempt_is_on_the_wire_is_not_lost():
    """The attempt's outcome is written after the receiver answered; a redelivery queued in between
    stays pending (it used to be overwritten as "successful" and never sent)."""
    from batch_payouts.sandbox.store import Store

    store = Store()
    store.add_delivery("evt_1", "http://127.0.0.1:9/hook", 100.0)
    [(_event, _url, attempts, scheduled)] = store.due_deliveries(200.0)
    store.add_delivery("evt_1", "http://127.0.0.1:9/hook", 150.0)  # redeliver, while attempt 1 is on the wire
    store.record_attempt("evt_1", "http://127.0.0.1:9/hook", status="successful", attempts=attempts + 1,
                         next_attempt_at=160.0, http_status=200, at=160, scheduled=scheduled)
    assert store.due_deliveries(200.0) == [("evt_1", "http://127.0.0.1:9/hook", 0, 150.0)]
    assert store.deliveries_of(["evt_1"])["evt_1"][0]["last_http_status"] == 200
