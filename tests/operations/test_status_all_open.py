"""``status --all-open``: every still-open order across batches, the least recently checked first."""

from __future__ import annotations

import sqlite3

from conftest import beneficiary, write_csv


def _rows(env):
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM rows ORDER BY batch_id, row_number")]


def test_all_open_checks_only_open_orders_of_every_batch(sandbox, env, cli):
    for name, first in (("a.csv", 1), ("b.csv", 10)):
        source = write_csv(env / name, [beneficiary(n, folio=f"F-{n}") for n in (first, first + 1)])
        assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    rows = _rows(env)
    sandbox.set_order_status(rows[0]["payout_order_id"], "cashed")
    sandbox.set_order_status(rows[3]["payout_order_id"], "expired")
    result = cli("status", "--all-open", "--api-base", sandbox.url, "--rate-limit", "50")
    assert result.exit_code == 0, result.output
    assert "Órdenes abiertas consultadas en todos los lotes: 4; cambiaron: 2" in result.output
    after = _rows(env)
    assert sorted(r["order_status"] for r in after) == ["cashed", "expired", "pending", "pending"]
    assert all(r["cashed_at"] for r in after if r["order_status"] == "cashed")
    again = cli("status", "--all-open", "--api-base", sandbox.url, "--lang", "en")
    assert "Open orders checked across batches: 2; changed: 0" in again.output  # final ones are not asked again
    assert cli("status", "--api-base", sandbox.url).exit_code == 2  # neither a batch nor --all-open


def test_all_open_json_is_the_documented_variant_with_one_entry_per_batch(sandbox, env, cli):
    from test_contracts import assert_documented, last_json

    for name, first in (("a.csv", 1), ("b.csv", 10)):
        source = write_csv(env / name, [beneficiary(n, folio=f"F-{n}") for n in (first, first + 1)])
        assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    rows = _rows(env)
    sandbox.set_order_status(rows[0]["payout_order_id"], "cashed")
    result = cli("status", "--all-open", "--api-base", sandbox.url, "--json")
    assert result.exit_code == 0, result.output
    document = last_json(result)
    assert_documented("status.schema.json", document)
    assert "batch_id" not in document and document["all_open"] is True  # no null batch_id standing for "all"
    assert document["checked"] == 4 and document["changed"] == 1 and document["not_checked"] == []
    assert sorted(b["batch_id"] for b in document["batches"]) == sorted({r["batch_id"] for r in rows})
    assert sum(b["statuses"].get("cashed", {}).get("MXN", {}).get("count", 0) for b in document["batches"]) == 1
    one = last_json(cli("status", env / "a.results.xlsx", "--api-base", sandbox.url, "--json"))
    assert_documented("status.schema.json", one)  # the one-batch document still validates
