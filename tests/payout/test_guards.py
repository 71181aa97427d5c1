"""Guards before money moves, checked on the sandbox's own record: nothing is POSTed when they refuse."""

from __future__ import annotations

import json

from batch_payouts.sandbox import Sandbox
from conftest import beneficiary, read_xlsx, write_csv


def _posts(sandbox):
    return [r for r in sandbox.request_log if r["method"] == "POST"]


def test_dry_run_plans_without_creating_anything(sandbox, env, cli):
    source = write_csv(env / "p.csv", [beneficiary(1), beneficiary(2), beneficiary(3, correo="x")])
    result = cli("run", source, "--api-base", sandbox.url, "--dry-run", "--json")
    assert result.exit_code == 1  # one invalid row
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["dry_run"] is True
    assert summary["plan"]["rows_to_send"] == 2
    assert summary["plan"]["totals"] == {"MXN": 10100 + 10200}
    assert _posts(sandbox) == []
    assert "Fila 4" in result.stderr


def test_low_balance_stops_before_any_post(env, cli):
    with Sandbox(starting_balance=15000) as poor:
        source = write_csv(env / "p.csv", [beneficiary(1), beneficiary(2)])
        result = cli("run", source, "--api-base", poor.url)
        assert result.exit_code == 2
        assert "Saldo insuficiente" in result.output
        assert _posts(poor) == []
        forced = cli("run", source, "--api-base", poor.url, "--skip-balance-check")
        assert forced.exit_code == 1  # the sandbox refuses the second order itself (402)
        assert len(poor.payout_orders()) == 1


def test_resumed_batch_only_needs_balance_for_what_is_left(sandbox, env, cli):
    source = write_csv(env / "p.csv", [beneficiary(1), beneficiary(2)])
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    again = cli("run", source, "--api-base", sandbox.url, "--dry-run", "--json")
    plan = json.loads(again.stdout.strip().splitlines()[-1])["plan"]
    assert plan == {"rows_to_send": 0, "already_done": 2, "totals": {}}


def test_live_key_requires_live_flag(env, cli, monkeypatch):
    monkeypatch.setenv("CONEKTA_API_KEY", "key_live_recognizable_4242")
    with Sandbox() as live:
        source = write_csv(env / "p.csv", [beneficiary(1), beneficiary(2)])
        result = cli("run", source, "--api-base", live.url)
        assert result.exit_code == 2
        assert "--live" in result.output
        assert live.payout_orders() == []
        allowed = cli("run", source, "--api-base", live.url, "--live", "--json")
        assert allowed.exit_code == 0, allowed.output
        assert json.loads(allowed.stdout.strip().splitlines()[-1])["mode"] == "LIVE"
        assert len(live.payout_orders()) == 2


def test_json_summary_is_machine_readable(sandbox, env, cli):
    source = write_csv(env / "p.csv", [beneficiary(1)])
    result = cli("run", source, "--api-base", sandbox.url, "--json")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["exit_code"] == result.exit_code == 0
    assert data["counts"] == {"created": 1}
    assert data["mode"] == "TEST"
    assert data["amount_created"] == 10100
    assert len(data["input"]["sha256"]) == 64


def test_max_total_refuses_the_whole_batch_before_any_request(sandbox, env, cli):
    source = write_csv(env / "p.csv", [beneficiary(1), beneficiary(2)])  # $101 + $102
    result = cli("run", source, "--api-base", sandbox.url, "--max-total", "200")
    assert result.exit_code == 2
    assert "$203.00" in result.output and "$200.00" in result.output
    assert sandbox.request_log == []
    assert cli("run", source, "--api-base", sandbox.url, "--max-total", "$203.00").exit_code == 0


def test_mixed_currencies_are_planned_and_capped_per_currency_never_added(env, cli):
    with Sandbox(starting_balance={"MXN": 10_000_000, "USD": 10_000_000}) as dollars:
        source = write_csv(env / "p.csv", [beneficiary(1, monto="15000", moneda="MXN"),
                                           beneficiary(2, monto="10000", moneda="USD")])
        planned = cli("run", source, "--api-base", dollars.url, "--dry-run", "--max-total", "200", "--json")
        assert planned.exit_code == 0, planned.output  # $150 MXN and $100 USD: each under the cap
        assert json.loads(planned.stdout.strip().splitlines()[-1])["plan"]["totals"] == {"MXN": 15000, "USD": 10000}
        assert "$150.00 MXN + $100.00 USD" in planned.output and "$250.00" not in planned.output
        over = cli("run", source, "--api-base", dollars.url, "--max-total", "120")
        assert over.exit_code == 2 and "$150.00 MXN" in over.output and "$120.00" in over.output
        assert _posts(dollars) == []


def test_max_total_must_be_pesos(env, cli):
    source = write_csv(env / "p.csv", [beneficiary(1)])
    result = cli("run", source, "--max-total", "mucho")
    assert result.exit_code == 2 and "pesos" in result.output


def test_max_amount_makes_rows_over_the_cap_invalid_and_unsent(sandbox, env, cli):
    source = write_csv(env / "p.csv", [beneficiary(1, monto="500000"), beneficiary(2, monto="20000")])
    out = env / "r.xlsx"
    result = cli("run", source, "--api-base", sandbox.url, "--max-amount", "2,000", "--output", out)
    assert result.exit_code == 1
    sheet = read_xlsx(out)
    assert [(r["status"], r["error_code"]) for r in sheet] == [("invalid", "amount_over_limit"), ("created", None)]
    assert "$2,000.00" in sheet[0]["error_message"]
    assert [o["amount"] for o in sandbox.payout_orders()] == [20000]


def test_the_summary_always_names_the_mode(sandbox, env, cli):
    first = write_csv(env / "a.csv", [beneficiary(1)])
    unknown = cli("run", first, "--api-base", sandbox.url, "--dry-run")
    assert "Modo: sin confirmar" in unknown.output  # no answer from Conekta for this key yet
    assert cli("run", first, "--api-base", sandbox.url).exit_code == 0
    later = write_csv(env / "b.csv", [beneficiary(2)])
    known = cli("run", later, "--api-base", sandbox.url, "--dry-run")
    assert "Modo: TEST" in known.output  # learnt from the earlier batch with this key


def test_dry_run_reads_the_account_mode_from_its_customers_without_creating_anything(sandbox, env, cli, monkeypatch):
    from batch_payouts.payout.conekta import ClientConfig, ConektaClient
    from batch_payouts.payout.guards import account_mode

    live_key = "key_live_guard_mode_4242"
    with ConektaClient(ClientConfig(api_key=live_key, api_base=sandbox.url)) as client:
        assert account_mode(client) is None  # a new account: nothing to tell by
        client.create_customer({"name": "Ana Pérez", "email": "ana@ejemplo.mx", "phone": "5512345678"}, "idem-1")
        assert account_mode(client) is True
    posts_before = len(_posts(sandbox))
    monkeypatch.setenv("CONEKTA_API_KEY", live_key)
    source = write_csv(env / "p.csv", [beneficiary(1)])
    result = cli("run", source, "--api-base", sandbox.url, "--dry-run", "--json")
    assert json.loads(result.stdout.strip().splitlines()[-1])["mode"] == "LIVE"
    assert len(_posts(sandbox)) == posts_before


def test_a_usd_row_without_usd_balance_is_invalid_and_the_rest_is_paid(sandbox, env, cli):
    """The sandbox account holds pesos only: the USD row is flagged (dry run and run) instead of the
    balance check stopping the whole batch, and the pesos rows are paid."""
    rows = [beneficiary(1, moneda="MXN"), beneficiary(2, moneda="USD"), beneficiary(3, moneda="MXN")]
    source = write_csv(env / "p.csv", rows)
    planned = cli("run", source, "--api-base", sandbox.url, "--dry-run", "--json")
    assert planned.exit_code == 1
    assert json.loads(planned.stdout.strip().splitlines()[-1])["plan"]["totals"] == {"MXN": 10100 + 10300}
    assert "Fila 3, columna «moneda»: la cuenta de Conekta no tiene saldo en «USD»" in planned.stderr
    result = cli("run", source, "--api-base", sandbox.url, "--output", env / "out.xlsx")
    assert result.exit_code == 1, result.output
    assert [order["currency"] for order in sandbox.payout_orders()] == ["MXN", "MXN"]
    sheet = read_xlsx(env / "out.xlsx")
    assert [row["status"] for row in sheet] == ["created", "invalid", "created"]
    assert sheet[1]["error_code"] == "currency_without_balance"
    assert "vuelve a correr el mismo archivo" in sheet[1]["error_message"]
