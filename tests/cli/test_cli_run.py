"""End to end: the real CLI, the real client, real HTTP to the sandbox, a real ledger file."""

from __future__ import annotations

import sqlite3

import openpyxl

from batch_payouts.sandbox import Faults
from conftest import API_KEY, beneficiary, read_xlsx, write_csv


def _orders(sandbox):
    return sandbox.payout_orders()


def test_run_creates_one_order_per_valid_row_and_writes_the_sheet(sandbox, env, cli):
    rows = [beneficiary(n) for n in range(1, 6)]
    rows.append(beneficiary(6, correo="no-es-correo"))
    rows.append(beneficiary(7, monto="10050"))
    source = write_csv(env / "pagos.csv", rows)
    out = env / "resultados.xlsx"
    result = cli("run", source, "--api-base", sandbox.url, "--output", out)
    assert result.exit_code == 1, result.output  # two invalid rows
    sheet = read_xlsx(out)
    assert [r["row"] for r in sheet] == list(range(2, 9))
    assert [r["status"] for r in sheet] == ["created"] * 5 + ["invalid", "invalid"]
    orders = {o["id"]: o for o in _orders(sandbox)}
    assert len(orders) == 5
    for line, source_row in zip(sheet[:5], rows[:5]):
        order = orders[line["payout_order_id"]]
        assert isinstance(line["reference"], str) and len(line["reference"]) == 16 and line["reference"].isdigit()
        assert line["reference"] == order["reference"]
        assert order["amount"] == int(source_row["monto"])
        assert order["currency"] == "MXN"
        assert order["reason"] == source_row["motivo"]
        assert order["customer_info"]["email"] == source_row["correo"]
        assert order["allowed_payout_methods"] == ["cashout"]
        assert order["metadata"]["row_key"] and order["metadata"]["batch_id"]
        assert line["expires_at"].endswith(("-06:00", "-05:00"))
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["Resultados", "Resumen", "Errores"]
    summary = {r[0]: r[1:] for r in book["Resumen"].iter_rows(min_row=2, values_only=True)}
    # Numbers, not text: Excel sums "Filas" and "Monto" (pesos, with a currency format)
    assert summary["Modo"][0] == "TEST" and summary["Total creado (MXN)"] == (None, 5, 515, "MXN")
    total_cell = next(r[3] for r in book["Resumen"].iter_rows(min_row=2) if r[0].value == "Total creado (MXN)")
    assert total_cell.number_format == "$#,##0.00" and total_cell.data_type == "n"
    # The status in words beside its code, and the amount in pesos whatever the input's unit (cents here)
    assert [r["status_label"] for r in sheet] == ["creada"] * 5 + ["inválida", "inválida"]
    assert [r["amount_pesos"] for r in sheet[:5]] == [101, 102, 103, 104, 105]
    assert {r["amount_currency"] for r in sheet[:5]} == {"MXN"}
    assert [r[0] for r in book["Errores"].iter_rows(min_row=2, values_only=True)] == [7, 8]
    assert sheet[5]["error_code"] == "invalid_email"
    assert sheet[6]["error_code"] == "amount_not_multiple_of_100"
    assert "Resumen" in result.output or "creadas" in result.output


def test_second_run_sends_nothing_and_copies_results(sandbox, env, cli):
    source = write_csv(env / "pagos.csv", [beneficiary(n) for n in range(1, 4)])
    first = cli("run", source, "--api-base", sandbox.url)
    assert first.exit_code == 0, first.output
    requests_before = len(sandbox.request_log)
    second = cli("run", source, "--api-base", sandbox.url)
    assert second.exit_code == 0, second.output
    assert len(_orders(sandbox)) == 3
    assert [r for r in sandbox.request_log[requests_before:] if r["method"] == "POST"] == []
    text = str(read_xlsx(env / "pagos.results.xlsx"))  # CSV in, XLSX results by default
    for order in _orders(sandbox):
        assert order["reference"] in text


def test_customer_is_created_once_per_email_and_reused_from_column(sandbox, env, cli):
    rows = [
        beneficiary(1),
        beneficiary(1, monto="20000", motivo="Segundo pago"),
        beneficiary(2),
    ]
    source = write_csv(env / "pagos.csv", rows)
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    assert len(sandbox.customers()) == 2
    known = sandbox.customers()[0]["id"]
    again = write_csv(env / "mas.csv", [beneficiary(9, **{"id cliente": known})])
    assert cli("run", again, "--api-base", sandbox.url).exit_code == 0
    assert len(sandbox.customers()) == 2
    assert _orders(sandbox)[-1]["customer_info"]["id"] == known


def test_same_payout_in_another_batch_is_a_duplicate_unless_allowed(sandbox, env, cli):
    first = write_csv(env / "lunes.csv", [beneficiary(1)])
    assert cli("run", first, "--api-base", sandbox.url).exit_code == 0
    second = write_csv(env / "martes.csv", [beneficiary(1, telefono="5599999999"), beneficiary(2)])
    result = cli("run", second, "--api-base", sandbox.url, "--output", env / "martes.xlsx")
    assert result.exit_code == 1
    sheet = read_xlsx(env / "martes.xlsx")
    assert [r["status"] for r in sheet] == ["duplicate", "created"]
    assert sheet[0]["reference"] == _orders(sandbox)[0]["reference"]
    assert "--allow-repeat" in sheet[0]["error_message"]
    assert len(_orders(sandbox)) == 2
    allowed = cli("run", second, "--api-base", sandbox.url, "--allow-repeat", "--output", env / "martes.xlsx")
    assert allowed.exit_code == 0, allowed.output
    assert len(_orders(sandbox)) == 3


def test_answer_lost_after_commit_is_retried_with_the_same_key(sandbox, env, cli):
    sandbox.set_faults(Faults(script={2: "drop_after_commit", 4: "error_503", 5: "truncated_json"}))
    source = write_csv(env / "pagos.csv", [beneficiary(n) for n in range(1, 4)])
    result = cli("run", source, "--api-base", sandbox.url)
    assert result.exit_code == 0, result.output
    orders = _orders(sandbox)
    assert len(orders) == 3
    assert len({o["metadata"]["row_key"] for o in orders}) == 3


def test_refused_row_is_failed_with_conekta_details_and_not_resent(sandbox, env, cli):
    rows = [beneficiary(1, **{"id cliente": "cus_doesnotexist00000"}), beneficiary(2, **{"id cliente": ""})]
    source = write_csv(env / "pagos.csv", rows)
    out = env / "r.xlsx"
    assert cli("run", source, "--api-base", sandbox.url, "--output", out).exit_code == 1
    sheet = read_xlsx(out)
    assert [r["status"] for r in sheet] == ["failed", "created"]
    assert sheet[0]["error_code"] and "log_id" in sheet[0]["error_message"]
    posts = len([r for r in sandbox.request_log if r["method"] == "POST"])
    calls = len(sandbox.request_log)
    assert cli("run", source, "--api-base", sandbox.url, "--output", out).exit_code == 1
    assert len(sandbox.request_log) == calls  # nothing left to send: the failed row waits for --retry-failed
    assert cli("run", source, "--api-base", sandbox.url, "--output", out, "--retry-failed").exit_code == 1
    assert len([r for r in sandbox.request_log if r["method"] == "POST"]) == posts + 1


def test_revoked_key_stops_the_batch_and_a_rerun_completes(sandbox, env, cli):
    source = write_csv(env / "pagos.csv", [beneficiary(n) for n in range(1, 7)])
    sandbox.set_faults(Faults(revoke_after_requests=5))
    out = env / "r.xlsx"
    stopped = cli("run", source, "--api-base", sandbox.url, "--output", out)
    assert stopped.exit_code == 2
    assert "API" in stopped.output
    sheet = read_xlsx(out)
    created = [r for r in sheet if r["status"] == "created"]
    assert len(created) == len(_orders(sandbox)) < 6
    assert all(r["error_code"] == "not_sent" for r in sheet if r["status"] != "created")
    sandbox.set_faults(Faults())  # the key works again (the account was re-enabled)
    resumed = cli("run", source, "--api-base", sandbox.url, "--output", out)
    assert resumed.exit_code == 0, resumed.output
    assert len(_orders(sandbox)) == 6
    assert len({o["metadata"]["row_key"] for o in _orders(sandbox)}) == 6


def test_api_key_never_leaks(sandbox, env, cli):
    source = write_csv(env / "pagos.csv", [beneficiary(1), beneficiary(2, correo="mal")])
    out = env / "r.xlsx"
    result = cli("run", source, "--api-base", sandbox.url, "--output", out)
    assert API_KEY not in result.output
    for path in env.rglob("*"):
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        dump = "\n".join(conn.iterdump())
    assert API_KEY not in dump


def test_missing_columns_exit_2_with_aliases_and_no_output(env, cli):
    source = write_csv(env / "pagos.csv", [{"nombre": "Ana", "monto": "100"}])
    result = cli("run", source, "--api-base", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "correo" in result.output and "motivo" in result.output
    assert "Traceback" not in result.output
    assert not (env / "pagos.results.xlsx").exists()


def test_plain_http_to_a_remote_host_is_refused(env, cli):
    source = write_csv(env / "pagos.csv", [beneficiary(1)])
    result = cli("run", source, "--api-base", "http://api.conekta.io")
    assert result.exit_code == 2
    assert "https" in result.output


def test_missing_key_is_a_clear_error(env, cli, monkeypatch, sandbox):
    monkeypatch.delenv("CONEKTA_API_KEY")
    source = write_csv(env / "pagos.csv", [beneficiary(1)])
    result = cli("run", source, "--api-base", sandbox.url)
    assert result.exit_code == 2 and "CONEKTA_API_KEY" in result.output
    assert _orders(sandbox) == []


def test_english_messages(env, cli):
    source = write_csv(env / "pagos.csv", [beneficiary(1, correo="bad")])
    result = cli("validate", source, "--lang", "en")
    assert result.exit_code == 1
    assert "Row 2" in result.output


def test_sandbox_flag_needs_no_key(env, cli, monkeypatch):
    monkeypatch.delenv("CONEKTA_API_KEY")
    source = write_csv(env / "pagos.csv", [beneficiary(1), beneficiary(2)])
    result = cli("run", source, "--sandbox")
    assert result.exit_code == 0, result.output
    assert "TEST" in result.output


def test_same_folio_in_a_changed_file_is_never_paid_twice(sandbox, env, cli):
    first = write_csv(env / "v1.csv", [beneficiary(1, folio="F-1"), beneficiary(2, folio="F-2")])
    assert cli("run", first, "--api-base", sandbox.url).exit_code == 0
    # Next day the file comes back with F-1's amount corrected: a different batch, same folio.
    second = write_csv(env / "v2.csv", [beneficiary(1, folio="F-1", monto="50000"), beneficiary(3, folio="F-3")])
    result = cli("run", second, "--api-base", sandbox.url, "--output", env / "v2.xlsx")
    assert result.exit_code == 1
    assert [r["status"] for r in read_xlsx(env / "v2.xlsx")] == ["duplicate", "created"]
    assert len(sandbox.payout_orders()) == 3


def test_header_only_file_is_refused(env, cli):
    source = env / "vacio.csv"
    source.write_text("nombre,correo,monto,motivo\n\n", encoding="utf-8")
    result = cli("run", source, "--api-base", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "no tiene filas" in result.output
    assert not (env / "vacio.results.xlsx").exists()
