"""``events sync``: catching up with GET /events reaches what the webhooks would have recorded."""

from __future__ import annotations

import os

from conekta_events import EventsFeed, event_for
from conftest import beneficiary, ledger_select, write_csv


def _batch(sandbox, env, cli, count=4):
    source = write_csv(env / "pagos.csv", [beneficiary(n, folio=f"F-{n}") for n in range(1, count + 1)])
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    return _rows(env)


def _rows(env):
    return ledger_select(os.environ["BATCH_PAYOUTS_LEDGER"], "SELECT * FROM rows ORDER BY row_number")  # engine_env's ledger, either engine


def _state(env):
    return [(r["order_status"], r["cashed_at"], r["expired_at"], r["cancelled_at"]) for r in _rows(env)]


def test_sync_pages_back_to_the_last_synced_event_and_applies_the_same_rules(sandbox, env, engine_env, cli):
    rows = _batch(sandbox, env, cli)
    with EventsFeed() as feed:
        for row in rows:
            feed.add(event_for({"id": row["payout_order_id"], "object": "payout_order", "status": "pending",
                                "reference": row["reference"]}, None, "payout_order.created", created_at=100))
        cashed = feed.add(event_for(sandbox.set_order_status(rows[0]["payout_order_id"], "cashed"), created_at=200))
        feed.add(event_for(sandbox.set_order_status(rows[1]["payout_order_id"], "expired"), created_at=300))
        feed.add(event_for({"id": "elsewhere", "object": "payout_order", "reference": "1", "status": "cashed"}))
        feed.add(dict(cashed))  # a delivery repeated in the list: the same id again
        first = cli("events", "sync", "--api-base", feed.url)
        assert first.exit_code == 0, first.output
        assert "aplicados: 2" in first.output and "no conoce: 1" in first.output
        assert _state(env) == [("cashed", 200, None, None), ("expired", None, 300, None),
                               ("pending", None, None, None), ("pending", None, None, None)]

        # later: one more event; the sync reads back only to what it read before
        feed.add(event_for(sandbox.set_order_status(rows[2]["payout_order_id"], "cancelled"), created_at=400))
        read_before = len(feed.requests)
        again = cli("events", "sync", "--api-base", feed.url, "--lang", "en")
        assert again.exit_code == 0, again.output
        assert "Conekta events read: 2; applied: 1" in again.output
        assert len(feed.requests) - read_before == 1  # one page
        assert _state(env)[2] == ("cancelled", None, None, 400)
