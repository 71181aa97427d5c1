"""``reissue --expired``: expired, uncashed references paid again exactly once, over real HTTP."""

from __future__ import annotations

import json
import os

from conftest import beneficiary, ledger_select, read_xlsx, write_csv


def _batch(sandbox, env, cli, count=4):
    source = write_csv(env / "pagos.csv", [beneficiary(n, folio=f"F-{n}") for n in range(1, count + 1)])
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    return _rows(env)


def _rows(env):
    return ledger_select(os.environ["BATCH_PAYOUTS_LEDGER"], "SELECT * FROM rows ORDER BY row_number, row_key")  # engine_env's ledger, either engine


def test_expired_references_are_paid_again_once_and_never_cashed_or_open_ones(sandbox, env, engine_env, cli):
    rows = _batch(sandbox, env, cli)
    sandbox.set_order_status(rows[0]["payout_order_id"], "cashed")
    sandbox.set_order_status(rows[1]["payout_order_id"], "expired")
    sandbox.set_order_status(rows[2]["payout_order_id"], "cancelled")
    assert cli("status", env / "pagos.results.xlsx", "--api-base", sandbox.url).exit_code == 0
    orders_before = len(sandbox.payout_orders())

    first = cli("reissue", env / "pagos.results.xlsx", "--expired", "--api-base", sandbox.url)
    assert first.exit_code == 0, first.output
    assert "Se volvió a pagar 1 referencia ($102.00 MXN)" in first.output
    assert len(sandbox.payout_orders()) == orders_before + 1  # only the expired one: not cashed, open or cancelled
    ledger = _rows(env)
    original = next(r for r in ledger if r["row_key"] == rows[1]["row_key"])
    new = next(r for r in ledger if r["reissue_of"] == rows[1]["row_key"])
    assert original["reissued_as"] == new["row_key"] and new["state"] == "created"
    assert new["row_number"] == original["row_number"] and new["amount"] == original["amount"]
    assert new["reference"] != original["reference"] and len(new["reference"]) == 16
    order = next(o for o in sandbox.payout_orders() if o["id"] == new["payout_order_id"])
    assert order["metadata"]["row_key"] == new["row_key"] and order["metadata"]["reissue_of"] == rows[1]["row_key"]
    assert order["customer_info"]["id"] == original["customer_id"]  # the same beneficiary, no new customer

    sheet = read_xlsx(env / "pagos.results.xlsx")
    assert [r["reissued_reference"] for r in sheet] == [None, new["reference"], None, None]
    assert [r["order_status"] for r in sheet] == ["cashed", "expired", "cancelled", "pending"]  # originals' rows
    audit = [json.loads(line) for line in (env / "pagos.results.audit.jsonl").read_text().splitlines()]
    reissues = [a for a in audit if a["type"] == "reissue"]
    assert len(reissues) == 1 and reissues[0]["payout_order_id"] == new["payout_order_id"]

    again = cli("reissue", env / "pagos.results.xlsx", "--expired", "--api-base", sandbox.url)
    assert again.exit_code == 0 and "no tiene referencias vencidas" in again.output
    assert len(sandbox.payout_orders()) == orders_before + 1  # a second run pays nothing

    with_cancelled = cli("reissue", env / "pagos.results.xlsx", "--expired", "--include-cancelled",
                         "--api-base", sandbox.url, "--lang", "en")
    assert with_cancelled.exit_code == 0 and "1 reference was paid again" in with_cancelled.output
    assert len(sandbox.payout_orders()) == orders_before + 2


def test_reissue_keeps_runs_guards(sandbox, env, engine_env, cli):
    rows = _batch(sandbox, env, cli, count=2)
    for row in rows:
        sandbox.set_order_status(row["payout_order_id"], "expired")
    assert cli("status", env / "pagos.results.xlsx", "--api-base", sandbox.url).exit_code == 0
    before = len(sandbox.payout_orders())
    capped = cli("reissue", env / "pagos.results.xlsx", "--expired", "--api-base", sandbox.url, "--max-total", "150")
    assert capped.exit_code == 2 and "--max-total" in capped.output
    assert cli("reissue", env / "pagos.results.xlsx", "--api-base", sandbox.url).exit_code == 2  # --expired required
    assert len(sandbox.payout_orders()) == before


def test_cancel_rows_of_a_reissued_row_cancels_the_reissue_and_says_so(sandbox, env, engine_env, cli):
    """A reissue shares its original's row number: `cancel --rows N` means the live order, the new one."""
    rows = _batch(sandbox, env, cli, count=2)
    sandbox.set_order_status(rows[0]["payout_order_id"], "expired")
    assert cli("status", env / "pagos.results.xlsx", "--api-base", sandbox.url).exit_code == 0
    assert cli("reissue", env / "pagos.results.xlsx", "--expired", "--api-base", sandbox.url).exit_code == 0
    new = next(r for r in _rows(env) if r["reissue_of"] == rows[0]["row_key"])

    result = cli("cancel", env / "pagos.results.xlsx", "--rows", str(rows[0]["row_number"]), "--yes",
                 "--api-base", sandbox.url, "--json")
    assert result.exit_code == 0, result.output
    assert f"se cancela la reexpedición, referencia {new['reference']}" in result.output
    assert f"la original {rows[0]['reference']}" in result.output
    cancelled = json.loads(result.output.strip().splitlines()[-1])["cancelled"]
    assert [c["payout_order_id"] for c in cancelled] == [new["payout_order_id"]]
    orders = {o["id"]: o["status"] for o in sandbox.payout_orders()}
    assert orders[new["payout_order_id"]] == "cancelled" and orders[rows[0]["payout_order_id"]] == "expired"


def test_show_and_batches_say_what_became_of_each_reference(sandbox, env, engine_env, cli):
    """Per row: pending / cashed (with date) / expired / cancelled / reissued as; money cashed vs outstanding."""
    from test_contracts import assert_documented, last_json

    rows = _batch(sandbox, env, cli, count=4)
    for row, status in zip(rows, ("cashed", "expired", "cancelled")):
        sandbox.set_order_status(row["payout_order_id"], status)
    assert cli("status", env / "pagos.results.xlsx", "--api-base", sandbox.url).exit_code == 0
    assert cli("reissue", env / "pagos.results.xlsx", "--expired", "--api-base", sandbox.url).exit_code == 0
    new = next(r for r in _rows(env) if r["reissue_of"] == rows[1]["row_key"])

    shown = cli("show", env / "pagos.results.xlsx", "--json")
    assert shown.exit_code == 0, shown.output
    document = last_json(shown)
    assert_documented("show.schema.json", document)
    assert [(r["row"], r["stage"]) for r in document["rows"]] == [
        (rows[0]["row_number"], "cashed"), (rows[1]["row_number"], "reissued"), (rows[1]["row_number"], "pending"),
        (rows[2]["row_number"], "cancelled"), (rows[3]["row_number"], "pending")]
    assert document["rows"][0]["cashed_at"] and document["rows"][1]["reissued_as"] == new["reference"]
    assert document["rows"][2]["reissue_of"] == rows[1]["reference"]
    assert all(isinstance(r["reference"], str) for r in document["rows"])
    # 101 cashed; outstanding: the reissue of 102 and row 4's 104; never paid: the expired 102 and cancelled 103
    assert document["totals_cashed"] == {"MXN": 10100}
    assert document["totals_outstanding"] == {"MXN": 10200 + 10400}
    assert document["totals_never_paid"] == {"MXN": 10200 + 10300}
    text = shown.output
    assert "cobrada el " in text and f"reexpedida como {new['reference']}" in text
    assert f"pendiente de cobro · reexpedición de {rows[1]['reference']}" in text and "cancelada" in text
    assert "Por cobrar" in text and "$206.00 MXN" in text
    english = cli("show", env / "pagos.results.xlsx", "--lang", "en").output
    assert f"reissued as {new['reference']}" in english and "cashed on " in english

    listed = cli("batches", "--json")
    batch = last_json(listed)["batches"][0]
    assert_documented("batches.schema.json", last_json(listed))
    assert batch["totals_cashed"] == {"MXN": 10100} and batch["totals_outstanding"] == {"MXN": 20600}
    assert "cobrado" in listed.output and "por cobrar" in listed.output and "$206.00 MXN" in listed.output
