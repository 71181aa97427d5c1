"""``events sync``: catching up with the sandbox's GET /events reaches what the webhooks would have recorded."""

from __future__ import annotations

import os

from conftest import API_KEY, another_systems_order, beneficiary, ledger_select, write_csv


def _batch(sandbox, env, cli, count=4):
    source = write_csv(env / "pagos.csv", [beneficiary(n, folio=f"F-{n}") for n in range(1, count + 1)])
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    return _rows(env)


def _rows(env):
    return ledger_select(os.environ["BATCH_PAYOUTS_LEDGER"], "SELECT * FROM rows ORDER BY row_number")  # engine_env's ledger, either engine


def _state(env):
    return [(r["order_status"], r["cashed_at"], r["expired_at"], r["cancelled_at"]) for r in _rows(env)]


def _when(sandbox, order_id, event_type):
    """The time of the sandbox's event: what the ledger records as cashed_at / expired_at / cancelled_at."""
    return next(e["created_at"] for e in sandbox.events() if e["type"] == event_type
                and e["data"]["object"]["id"] == order_id)


def _events_requests(sandbox):
    return sum(1 for r in sandbox.request_log if r["path"] == "/events")


def test_sync_pages_back_to_the_last_synced_event_and_applies_the_same_rules(sandbox, env, engine_env, cli):
    rows = _batch(sandbox, env, cli)
    ids = [r["payout_order_id"] for r in rows]
    sandbox.cash(ids[0])
    sandbox.expire(rows[1]["reference"])
    sandbox.cash(another_systems_order(sandbox)["id"])
    first = cli("events", "sync", "--api-base", sandbox.url)
    assert first.exit_code == 0, first.output
    # 4 created (nothing to change) + cashed + expired + the other order's created and cashed
    assert "leídos: 8; aplicados: 2" in first.output and "no conoce: 2" in first.output
    assert _state(env) == [("cashed", _when(sandbox, ids[0], "cashout.confirmed"), None, None),
                           ("expired", None, _when(sandbox, ids[1], "cashout.expired"), None),
                           ("pending", None, None, None), ("pending", None, None, None)]

    # later: one more event; the sync reads back only to what it read before (one page)
    sandbox.cancel(ids[2])
    requests_before = _events_requests(sandbox)
    again = cli("events", "sync", "--api-base", sandbox.url, "--lang", "en")
    assert again.exit_code == 0, again.output
    assert "Conekta events read: 2; applied: 1" in again.output
    assert _events_requests(sandbox) - requests_before == 1
    assert _state(env)[2] == ("cancelled", None, None, _when(sandbox, ids[2], "cashout.canceled"))


def test_sync_follows_the_sandboxs_next_cursors_page_after_page(sandbox, env, engine_env, cli):
    from batch_payouts.operations.events import sync_events
    from batch_payouts.payout.conekta import ClientConfig, ConektaClient
    from batch_payouts.payout.ledger import Ledger

    rows = _batch(sandbox, env, cli, count=3)
    for row in rows:
        sandbox.cash(row["reference"])
    with Ledger(engine_env) as ledger, \
            ConektaClient(ClientConfig(api_key=API_KEY, api_base=sandbox.url)) as client:
        result = sync_events(ledger, client, page_size=2)
        assert result.read == 6 and result.count("applied") == 3
        assert _events_requests(sandbox) == 3  # 2 + 2 + 2, following next
        assert [o.event_type for o in result.outcomes][:3] == ["payout_order.created"] * 3  # oldest first
        assert sync_events(ledger, client, page_size=2).read == 1  # nothing new: stops at the newest it read
    assert [s[0] for s in _state(env)] == ["cashed"] * 3
