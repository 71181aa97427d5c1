"""`batch-payouts sandbox cash / expire / cancel` as a user types them: on the state a
`run --sandbox` left beside the ledger, and on a running sandbox through --api-base."""

from __future__ import annotations

import requests

from conftest import beneficiary, read_xlsx, write_csv

from sandbox_client import new_order, sb  # noqa: F401 - sb: the fixture


def test_cash_and_expire_the_references_of_a_sandbox_run_then_status_sees_them(env, cli):
    source = write_csv(env / "pagos.csv", [beneficiary(n) for n in (1, 2, 3)])
    out = env / "pagos.results.xlsx"
    assert cli("run", source, "--sandbox", "--output", out).exit_code == 0
    first, second, third = [row["reference"] for row in read_xlsx(out)]

    cashed = cli("sandbox", "cash", first)  # the state beside BATCH_PAYOUTS_LEDGER, like `run --sandbox`
    assert cashed.exit_code == 0, cashed.output
    assert f"(referencia {first}): pendiente → cobrada." in cashed.output
    expired = cli("sandbox", "expire", second, "--lang", "en")
    assert expired.exit_code == 0 and f"(reference {second}): pending → expired." in expired.output
    cancelled = cli("sandbox", "cancel", third, "--ledger", env / "ledger.sqlite")
    assert cancelled.exit_code == 0 and "pendiente → cancelada" in cancelled.output

    again = cli("sandbox", "cash", first)
    assert again.exit_code == 0 and "ya estaba cobrada; no cambió nada" in again.output
    refused = cli("sandbox", "cash", second)
    assert refused.exit_code == 2
    assert "ya está vencida: no puede quedar cobrada" in refused.output
    assert "Traceback" not in refused.output

    status = cli("status", out)
    assert status.exit_code == 0, status.output
    assert [row["order_status"] for row in read_xlsx(out)] == ["cashed", "expired", "cancelled"]


def test_cash_names_what_is_missing_when_there_is_no_such_order_or_no_sandbox(env, cli):
    missing = cli("sandbox", "cash", "4000000000000000")
    assert missing.exit_code == 2 and "No hay estado de sandbox" in missing.output and "--api-base" in missing.output
    source = write_csv(env / "pagos.csv", [beneficiary(1)])
    assert cli("run", source, "--sandbox", "--output", env / "out.xlsx").exit_code == 0
    unknown = cli("sandbox", "expire", "4000000000000000", "--lang", "en")
    assert unknown.exit_code == 2 and "has no order with id or reference '4000000000000000'" in unknown.output


def test_cash_and_expire_on_a_running_sandbox_by_reference_or_id(sb, cli):
    one, two = new_order(sb).json(), new_order(sb).json()
    result = cli("sandbox", "cash", one["reference"], "--api-base", sb.url)
    assert result.exit_code == 0, result.output
    assert "pendiente → cobrada" in result.output
    assert cli("sandbox", "expire", two["id"], "--api-base", sb.url).exit_code == 0
    assert {o["id"]: o["status"] for o in sb.payout_orders()} == {one["id"]: "cashed", two["id"]: "expired"}
    refused = cli("sandbox", "cancel", one["reference"], "--api-base", sb.url, "--lang", "en")
    assert refused.exit_code == 2 and "is already cashed: it cannot become cancelled" in refused.output
    assert [e["type"] for e in requests.get(sb.url + "/_sandbox/events").json()["events"]] == \
        ["payout_order.created", "payout_order.created", "cashout.confirmed", "cashout.expired"]
    unknown = cli("sandbox", "cash", "nope", "--api-base", sb.url)
    assert unknown.exit_code == 2 and "«nope»" in unknown.output
    sb.stop()
    down = cli("sandbox", "cash", one["reference"], "--api-base", sb.url)
    assert down.exit_code == 2 and "No se pudo hablar con el sandbox" in down.output


def test_serve_options_for_the_automatic_mode_are_checked(cli):
    result = cli("sandbox", "serve", "--port", "0", "--auto-cash", "0.8", "--auto-expire", "0.5")
    assert result.exit_code == 2 and "juntos 1 como máximo" in result.output
    result = cli("sandbox", "serve", "--port", "0", "--webhook-url", "localhost:8000/hook")
    assert result.exit_code == 2 and "--webhook-url" in result.output
