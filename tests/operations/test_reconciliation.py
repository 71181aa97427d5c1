"""Reconcile when a GET of an unknown payout order answers 402 ``processing_error`` instead of 404
(public mocks do; API.md): "does not exist at Conekta" is confirmed through the list search, not
left as "nothing concluded" (exit 2) forever.  Real CLI, real HTTP to the sandbox."""

from __future__ import annotations

import sqlite3

import pytest
import requests

from batch_payouts.sandbox.faults import Faults, FaultsError
from conftest import API_KEY, beneficiary, write_csv

GHOST = "22222222-2222-4222-8222-222222222222"
HEADERS = {"Accept": "application/vnd.conekta-v2.0.0+json"}


def _get(sandbox, order_id):
    return requests.get(f"{sandbox.url}/payout_orders/{order_id}", auth=(API_KEY, ""), headers=HEADERS, timeout=10)


def test_the_fault_answers_402_only_for_an_unknown_order(sandbox, env, cli):
    source = write_csv(env / "pagos.csv", [beneficiary(1)])
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    (order,) = sandbox.payout_orders()
    assert _get(sandbox, GHOST).status_code == 404
    sandbox.set_faults({"unknown_order_get_402": True})
    unknown = _get(sandbox, GHOST)
    assert unknown.status_code == 402 and unknown.json()["type"] == "processing_error"
    assert _get(sandbox, order["id"]).json()["id"] == order["id"]


def test_reconcile_concludes_missing_when_get_answers_402(sandbox, env, cli):
    source = write_csv(env / "pagos.csv", [beneficiary(n) for n in range(1, 4)])
    assert cli("run", source, "--api-base", sandbox.url, "--output", env / "out.csv").exit_code == 0
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        (batch_id,) = conn.execute("SELECT batch_id FROM batches").fetchone()
        conn.execute("UPDATE rows SET payout_order_id=? WHERE row_number=3", (GHOST,))
    sandbox.set_faults({"unknown_order_get_402": True})
    result = cli("reconcile", batch_id, "--api-base", sandbox.url, "--lang", "en")
    assert result.exit_code == 1, result.output  # concluded: a difference, not "nothing concluded" (2)
    assert "does not exist at Conekta: 1" in result.output and GHOST in result.output
    assert "Nothing was concluded" not in result.output
    searches = [r for r in sandbox.request_log if r["method"] == "GET" and r["path"] == "/payout_orders"]
    assert len(searches) >= 2  # the batch's search, then the one that confirmed the ghost is not there


def test_reconcile_still_agrees_when_nothing_is_missing(sandbox, env, cli):
    source = write_csv(env / "pagos.csv", [beneficiary(n) for n in range(1, 3)])
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        (batch_id,) = conn.execute("SELECT batch_id FROM batches").fetchone()
    sandbox.set_faults({"unknown_order_get_402": True})
    result = cli("reconcile", batch_id, "--api-base", sandbox.url, "--lang", "en")
    assert result.exit_code == 0, result.output


def test_the_fault_setting_is_a_true_or_false():
    assert Faults.from_dict({"unknown_order_get_402": True}).unknown_order_get_402 is True
    with pytest.raises(FaultsError, match="unknown_order_get_402"):
        Faults.from_dict({"unknown_order_get_402": "yes"})
