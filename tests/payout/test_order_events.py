"""Conekta's events applied to the ledger: once per event id, never backwards, unknown orders kept.

The events are the sandbox's own (``sandbox.events()``, as ``GET /events`` and the webhooks carry
them); only what the sandbox never sends -- a status contradicting a final one, an event about a
charge -- is written by hand, from a real event."""

from __future__ import annotations

import json

from batch_payouts.payout.ledger import Ledger
from batch_payouts.payout.order_events import apply_event, audit_applied
from conftest import another_systems_order, beneficiary, ledger_select, write_csv


def _run(sandbox, env, engine_env, cli, count=3):
    source = write_csv(env / "pagos.csv", [beneficiary(n, folio=f"F-{n}") for n in range(1, count + 1)])
    result = cli("run", source, "--api-base", sandbox.url)
    assert result.exit_code == 0, result.output
    return ledger_select(engine_env, "SELECT * FROM rows ORDER BY row_number")


def _last_event(sandbox, order_id):
    """The sandbox's newest event about an order."""
    return [e for e in sandbox.events() if e["data"]["object"]["id"] == order_id][-1]


def _row(ledger, row):
    return ledger.row(row["batch_id"], row["row_key"])


def test_an_event_moves_the_order_forward_once_and_never_back(sandbox, env, engine_env, cli):
    rows = _run(sandbox, env, engine_env, cli)
    created = _last_event(sandbox, rows[0]["payout_order_id"])
    sandbox.cash(rows[0]["payout_order_id"])
    cashed = _last_event(sandbox, rows[0]["payout_order_id"])
    with Ledger(engine_env) as ledger:
        first = apply_event(ledger, cashed, "webhook")
        assert first.outcome == "applied" and first.previous == "pending" and first.status == "cashed"
        entry = _row(ledger, rows[0])
        assert entry.order_status == "cashed" and entry.cashed_at == cashed["created_at"]
        assert apply_event(ledger, cashed, "webhook").outcome == "duplicate"  # replayed: nothing changes
        # out of order: the creation arriving after the cashing never moves it back
        assert created["type"] == "payout_order.created"
        assert apply_event(ledger, created, "webhook").outcome == "stale"
        # nor would an event contradicting a final status (the sandbox never sends one: written by hand)
        late = {**cashed, "id": "evt_late_contradiction", "type": "cashout.expired",
                "data": {"object": {**cashed["data"]["object"], "status": "expired"},
                         "previous_attributes": {"status": "pending"}}}
        assert apply_event(ledger, late, "webhook").outcome == "stale"
        entry = _row(ledger, rows[0])
        assert entry.order_status == "cashed" and entry.expired_at is None
        assert _row(ledger, rows[1]).order_status == "pending"


def test_events_for_orders_the_ledger_does_not_know_are_recorded_not_errors(sandbox, env, engine_env, cli):
    _run(sandbox, env, engine_env, cli, count=1)
    order = another_systems_order(sandbox)
    sandbox.cash(order["reference"])
    stranger = _last_event(sandbox, order["id"])
    with Ledger(engine_env) as ledger:
        assert apply_event(ledger, stranger, "webhook").outcome == "unknown_order"
        assert apply_event(ledger, {"id": "evt_x", "type": "charge.paid", "data": {"object": {"object": "charge"}}},
                           "webhook").outcome == "not_an_order"
    assert ledger_select(engine_env, "SELECT outcome FROM events WHERE event_id=?", (stranger["id"],)) == [
        {"outcome": "unknown_order"}]


def test_an_applied_event_gets_one_audit_line_in_the_batchs_log(sandbox, env, engine_env, cli):
    rows = _run(sandbox, env, engine_env, cli, count=1)
    sandbox.expire(rows[0]["payout_order_id"])
    expired = _last_event(sandbox, rows[0]["payout_order_id"])
    with Ledger(engine_env) as ledger:
        outcome = apply_event(ledger, expired, "webhook")
        audit_applied(ledger, outcome, "webhook")
        assert _row(ledger, rows[0]).expired_at is not None
    lines = [json.loads(line) for line in (env / "pagos.results.audit.jsonl").read_text().splitlines()]
    events = [line for line in lines if line["type"] == "order_event"]
    assert len(events) == 1 and events[0]["event_id"] == expired["id"] and events[0]["status"] == "expired"
    assert "persona1" not in json.dumps(events[0])  # no personal data in the audit log
    assert cli("audit", "verify", env / "pagos.results.audit.jsonl").exit_code == 0
