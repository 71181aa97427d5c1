"""End to end for the commands used after a batch is sent: status, cancel, reconcile, batches, show, report.

The real CLI, the real client, real HTTP to the sandbox, a real ledger file.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta

import openpyxl
import requests

from batch_payouts.contracts import SCHEMA_VERSION
from batch_payouts import report
from batch_payouts.report import MEXICO_CITY
from batch_payouts.states import TEXT as STATES_TEXT
from conftest import API_KEY, beneficiary, read_xlsx, run_with_a_row_in_doubt, write_csv


def _run(sandbox, env, cli, count=4, **row_overrides):
    rows = [beneficiary(n, folio=f"F-{n}", **row_overrides) for n in range(1, count + 1)]
    source = write_csv(env / "pagos.csv", rows)
    out = env / "pagos.results.xlsx"
    result = cli("run", source, "--api-base", sandbox.url, "--output", out)
    assert result.exit_code == 0, result.output
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        batch_id = conn.execute("SELECT batch_id FROM batches").fetchone()[0]
    return out, batch_id


def _ledger_rows(env):
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        conn.row_factory = sqlite3.Row
        return {r["row_number"]: dict(r) for r in conn.execute("SELECT * FROM rows")}


def _by_id(sandbox):
    return {o["id"]: o for o in sandbox.payout_orders()}


def test_status_updates_ledger_sheet_and_summary(sandbox, env, cli):
    out, batch_id = _run(sandbox, env, cli)
    before = _ledger_rows(env)
    sandbox.set_order_status(before[2]["payout_order_id"], "cashed")
    sandbox.set_order_status(before[3]["payout_order_id"], "expired")

    result = cli("status", out, "--api-base", sandbox.url)
    assert result.exit_code == 0, result.output
    # one order each: worded in the singular ("1 cobrada", not "1 cobradas")
    assert re.search(r"\b1  cobrada ", result.output) and re.search(r"\b1  vencida \(no se cobró\)", result.output)
    assert re.search(r"\b2  pendientes de cobro", result.output)
    assert "$101.00" in result.output and "$102.00" in result.output  # rows 2 and 3: 10100 and 10200 cents
    assert "Cambiaron de estado desde la última consulta: 2" in result.output
    after = _ledger_rows(env)
    assert [after[n]["order_status"] for n in (2, 3, 4, 5)] == ["cashed", "expired", "pending", "pending"]
    assert all(after[n]["status_checked_at"] for n in (2, 3, 4, 5))
    sheet = read_xlsx(out)
    assert [r["order_status"] for r in sheet] == ["cashed", "expired", "pending", "pending"]
    assert [r["status_change"] for r in sheet] == ["changed", "changed", None, None]
    assert sheet[0]["status_checked_at"].endswith(("-06:00", "-05:00"))
    assert isinstance(sheet[0]["reference"], str) and len(sheet[0]["reference"]) == 16
    assert isinstance(sheet[0]["telefono"], str)
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["Resultados", "Resumen", "Errores"]  # the other sheets are kept
    assert book.worksheets[0]["A2"].fill.fgColor.rgb.endswith("FFEB9C")  # changed rows highlighted

    # Nothing changed since: no highlight; English; by id prefix, to another file.
    other = env / "estado.xlsx"
    again = cli("status", batch_id[:8], "--api-base", sandbox.url, "--lang", "en", "--output", other)
    assert again.exit_code == 0, again.output
    assert "cashed" in again.output and "Changed status since the last check: 0" in again.output
    assert [r["status_change"] for r in read_xlsx(other)] == [None] * 4


def test_status_exit_1_when_an_order_cannot_be_fetched_and_2_with_another_key(sandbox, env, cli, monkeypatch):
    out, batch_id = _run(sandbox, env, cli, count=2)
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        conn.execute("UPDATE rows SET payout_order_id='00000000-0000-4000-8000-000000000000' WHERE row_number=2")
    result = cli("status", out, "--api-base", sandbox.url)
    assert result.exit_code == 1, result.output
    assert "00000000-0000-4000-8000-000000000000" in result.output
    monkeypatch.setenv("CONEKTA_API_KEY", "key_test_another_account_9999")
    other = cli("status", out, "--api-base", sandbox.url)
    assert other.exit_code == 2
    assert "otra llave" in other.output and "Traceback" not in other.output
    unknown = cli("status", "no-such-batch", "--api-base", sandbox.url)
    assert unknown.exit_code == 2 and "no-such-batch" in unknown.output
    monkeypatch.setenv("CONEKTA_API_KEY", API_KEY)
    calls = len(sandbox.request_log)
    assert cli("status", out, "--api-base", sandbox.url, "--output", env / "estado.pdf").exit_code == 2
    assert len(sandbox.request_log) == calls  # refused before asking Conekta anything


def test_cancel_needs_yes_off_a_terminal_then_cancels_and_records(sandbox, env, cli):
    out, batch_id = _run(sandbox, env, cli, count=5)
    puts_before = [r for r in sandbox.request_log if r["method"] == "PUT"]
    refused = cli("cancel", out, "--rows", "2,4-5", "--api-base", sandbox.url)
    assert refused.exit_code == 2
    assert "--yes" in refused.output
    assert [r for r in sandbox.request_log if r["method"] == "PUT"] == puts_before == []
    assert {o["status"] for o in sandbox.payout_orders()} == {"pending"}

    done = cli("cancel", out, "--rows", "2,4-5", "--yes", "--api-base", sandbox.url)
    assert done.exit_code == 0, done.output
    rows = _ledger_rows(env)
    orders = _by_id(sandbox)
    assert [orders[rows[n]["payout_order_id"]]["status"] for n in range(2, 7)] == [
        "cancelled", "pending", "cancelled", "cancelled", "pending"]
    assert [rows[n]["order_status"] for n in (2, 4, 5)] == ["cancelled"] * 3
    assert all(rows[n]["cancelled_at"] for n in (2, 4, 5)) and rows[3]["cancelled_at"] is None
    sheet = read_xlsx(out)
    assert [r["order_status"] for r in sheet] == ["cancelled", "pending", "cancelled", "cancelled", "pending"]

    # Row 3 was cashed meanwhile (the ledger does not know yet): reported, not an error.
    sandbox.set_order_status(rows[3]["payout_order_id"], "cashed")
    rest = cli("cancel", out, "--all-pending", "--yes", "--api-base", sandbox.url)
    assert rest.exit_code == 0, rest.output
    assert "fila 3: no se canceló, ya estaba cobrada" in rest.output
    orders = _by_id(sandbox)
    assert orders[rows[3]["payout_order_id"]]["status"] == "cashed"
    assert orders[rows[6]["payout_order_id"]]["status"] == "cancelled"
    assert _ledger_rows(env)[3]["order_status"] == "cashed"

    # Already cancelled: nothing sent, not an error.
    puts = len([r for r in sandbox.request_log if r["method"] == "PUT"])
    again = cli("cancel", out, "--external-id", "F-1", "--yes", "--api-base", sandbox.url)
    assert again.exit_code == 0, again.output
    assert len([r for r in sandbox.request_log if r["method"] == "PUT"]) == puts


def test_cancel_by_folio_and_a_selection_without_an_order_is_refused(sandbox, env, cli):
    out, batch_id = _run(sandbox, env, cli, count=3)
    bad = cli("cancel", batch_id, "--rows", "2,99", "--yes", "--api-base", sandbox.url)
    assert bad.exit_code == 2 and "99" in bad.output
    assert {o["status"] for o in sandbox.payout_orders()} == {"pending"}
    assert cli("cancel", batch_id, "--yes", "--api-base", sandbox.url).exit_code == 2  # no selection
    done = cli("cancel", batch_id, "--external-id", "F-2", "--external-id", "F-3", "--yes", "--api-base", sandbox.url)
    assert done.exit_code == 0, done.output
    rows = _ledger_rows(env)
    orders = _by_id(sandbox)
    assert [orders[rows[n]["payout_order_id"]]["status"] for n in (2, 3, 4)] == ["pending", "cancelled", "cancelled"]


def test_reconcile_agrees_then_reports_an_orphan_and_a_missing_order(sandbox, env, cli):
    out, batch_id = _run(sandbox, env, cli, count=3)
    clean = cli("reconcile", batch_id, "--api-base", sandbox.url)
    assert clean.exit_code == 0, clean.output
    assert "coinciden: 3" in clean.output

    auth = (API_KEY, "")
    headers = {"Accept": "application/vnd.conekta-v2.0.0+json"}
    customer = requests.post(f"{sandbox.url}/customers", auth=auth, headers=headers, timeout=10,
                             json={"name": "Huérfana", "email": "huerfana@ejemplo.mx"}).json()
    orphan = requests.post(
        f"{sandbox.url}/payout_orders", auth=auth, headers=headers, timeout=10,
        json={"currency": "MXN", "amount": 5000, "customer_info": {"customer_id": customer["id"]},
              "allowed_payout_methods": ["cashout"], "payout": {"payout_method": {"type": "cashout"}},
              "reason": "Dejada por un fallo", "metadata": {"batch_id": batch_id, "row_key": "x:perdida"}},
    ).json()
    assert orphan["object"] == "payout_order"
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        conn.execute("UPDATE rows SET payout_order_id='11111111-1111-4111-8111-111111111111' WHERE row_number=3")
    result = cli("reconcile", batch_id[:10], "--api-base", sandbox.url, "--lang", "en")
    assert result.exit_code == 1
    # The orphan made by hand, and row 3's real order, which the edited ledger no longer names.
    assert "orphans): 2" in result.output and orphan["id"] in result.output
    assert "x:perdida" in result.output and "(row 3, in the ledger: created" in result.output
    assert "does not exist at Conekta: 1" in result.output
    assert "11111111-1111-4111-8111-111111111111" in result.output


def test_batches_and_show_print_what_the_ledger_knows(sandbox, env, cli):
    empty = cli("batches")
    assert empty.exit_code == 0
    out, batch_id = _run(sandbox, env, cli, count=2)
    listed = cli("batches")
    assert listed.exit_code == 0, listed.output
    assert batch_id[:12] in listed.output and "pagos.csv" in listed.output and "TEST" in listed.output
    assert "$203.00" in listed.output  # 10100 + 10200 cents
    shown = cli("show", batch_id[:12], "--lang", "en")
    assert shown.exit_code == 0, shown.output
    for fact in (batch_id, "pagos.csv", "created 2", "$203.00 MXN", sandbox.url, "2.0.0", str(out.resolve())):
        assert fact in shown.output
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        sha = conn.execute("SELECT input_sha256 FROM batches").fetchone()[0]
    assert sha in shown.output
    assert cli("show", out).exit_code == 0  # by results sheet
    assert cli("show", "ffffffffffff").exit_code == 2


def test_batches_and_show_json_for_scripts(sandbox, env, cli):
    assert json.loads(cli("batches", "--json").output.strip().splitlines()[-1])["batches"] == []
    out, batch_id = _run(sandbox, env, cli, count=2)
    listed = json.loads(cli("batches", "--json").output.strip().splitlines()[-1])
    [batch] = listed["batches"]
    assert batch["batch_id"] == batch_id and batch["input_name"] == "pagos.csv" and batch["mode"] == "TEST"
    assert batch["created"] == 2 and batch["amount_created"] == 20300 and batch["output_path"] == str(out.resolve())
    assert batch["totals_created"] == {"MXN": 20300}  # money per currency, never added across currencies
    shown = json.loads(cli("show", batch_id[:12], "--json").output.strip().splitlines()[-1])
    assert shown["batch_id"] == batch_id and shown["states"] == {"created": 2}
    assert shown["totals_created"] == {"MXN": 20300}
    assert shown["order_status"] == {"pending": {"MXN": {"count": 2, "amount": 20300}}}
    assert len(shown["input_sha256"]) == 64


def _table(output: str) -> dict[str, str]:
    """The `batches` table's header and first batch, cell by cell (columns are two or more spaces apart)."""
    header, first = (re.split(r"\s{2,}", line.strip()) for line in output.splitlines()[:2])
    return dict(zip(header, first))


def test_batches_and_show_call_a_row_in_doubt_unconfirmed_never_failed(sandbox, env, cli):
    """A row whose order may exist at Conekta is "sin confirmar", with why and what to do; reading
    "fallida" a finance person may pay it by hand and the rerun would pay it again."""
    result = run_with_a_row_in_doubt(sandbox, env, env / "ledger.sqlite")
    batch_id = result.batch_id
    run_json = report.result_json(result)  # what `run --json` prints
    assert run_json["counts"] == {"created": 1, "unknown": 1} and run_json["unconfirmed"] == 1
    summary = openpyxl.load_workbook(result.output_path)["Resumen"]
    items = [line[0] for line in summary.iter_rows(values_only=True)]
    assert "sin confirmar (vuelve a ejecutar el mismo archivo para resolverla; no la pagues a mano) (unknown)" in items
    listed = cli("batches")
    assert listed.exit_code == 0, listed.output
    row = _table(listed.output)
    assert (row["creadas"], row["sin confirmar"], row["fallidas"], row["sin enviar"]) == ("1", "1", "0", "0")
    assert STATES_TEXT.UNCONFIRMED_EXPLAINED.es in listed.output
    [batch] = json.loads(cli("batches", "--json").output.strip().splitlines()[-1])["batches"]
    assert (batch["created"], batch["unconfirmed"], batch["unknown"], batch["failed"], batch["pending"]) == (1, 1, 1, 0, 0)

    shown = cli("show", batch_id[:12])
    assert "creada 1, sin confirmar 1" in shown.output and "fallida" not in shown.output
    assert STATES_TEXT.UNCONFIRMED_EXPLAINED.es in shown.output
    english = cli("show", batch_id[:12], "--lang", "en", "--json")
    assert "created 1, unconfirmed 1" in english.output and STATES_TEXT.UNCONFIRMED_EXPLAINED.en in english.output
    data = json.loads(english.output.strip().splitlines()[-1])
    assert data["states"] == {"unknown": 1, "created": 1}
    assert (data["counts"]["unconfirmed"], data["counts"]["failed"], data["counts"]["created"]) == (1, 0, 1)


def test_every_batch_of_a_key_records_its_own_mode_not_only_the_first(sandbox, env, cli):
    """Regression: the second file run with a key already known as TEST showed "—" in batches/show."""
    for name, first in (("primero.csv", 1), ("segundo.csv", 10)):
        source = write_csv(env / name, [beneficiary(n) for n in range(first, first + 2)])
        ran = cli("run", source, "--api-base", sandbox.url, "--output", env / f"{name}.results.xlsx", "--json")
        assert ran.exit_code == 0, ran.output
        assert json.loads(ran.output.strip().splitlines()[-1])["mode"] == "TEST"
    listed = json.loads(cli("batches", "--json").output.strip().splitlines()[-1])["batches"]
    assert sorted(b["input_name"] for b in listed) == ["primero.csv", "segundo.csv"]
    assert [b["mode"] for b in listed] == ["TEST", "TEST"]
    for batch in listed:
        shown = json.loads(cli("show", batch["batch_id"], "--json").output.strip().splitlines()[-1])
        assert shown["mode"] == "TEST"
    assert "—" not in cli("batches").output


def _all_ledger_rows(env):
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM rows")]


def _sheet_rows(sheet):
    """A worksheet's data rows as cells (openpyxl), header skipped."""
    return list(sheet.iter_rows(min_row=2))


def test_report_is_for_finance_spanish_pesos_names_batch_order_and_cancelled_not_paid(sandbox, env, cli, monkeypatch):
    """Issue 13, item 4: headers in the user's language, pesos as numbers beside the currency (never
    bare centavos), the beneficiary's name, batch/row order, a total per currency, and cancelled or
    expired payouts never counted as paid in the headline."""
    first = [beneficiary(n, folio=f"A-{n}") for n in range(1, 4)] + [beneficiary(4, folio="A-4", moneda="USD")]
    for row in first[:3]:
        row["moneda"] = "MXN"
    out1 = env / "marzo.results.xlsx"
    ran = cli("run", write_csv(env / "marzo.csv", first), "--api-base", sandbox.url, "--output", out1,
              "--skip-balance-check")  # the sandbox account holds no dollars
    assert ran.exit_code == 0, ran.output
    out2 = env / "extra.results.xlsx"
    second = [beneficiary(n, folio=f"B-{n}", nombre=f"Segunda {n}") for n in range(5, 7)]
    ran = cli("run", write_csv(env / "extra.csv", second), "--api-base", sandbox.url, "--output", out2)
    assert ran.exit_code == 0, ran.output
    by_order = {(r["batch_id"], r["row_number"]): r for r in _all_ledger_rows(env)}
    [batch1] = {b for b, n in by_order if by_order[(b, n)]["reason"] == "Apoyo 1"}
    [batch2] = {b for b, n in by_order} - {batch1}
    sandbox.set_order_status(by_order[(batch1, 2)]["payout_order_id"], "cashed")
    sandbox.set_order_status(by_order[(batch1, 3)]["payout_order_id"], "expired")
    assert cli("status", out1, "--api-base", sandbox.url).exit_code == 0
    assert cli("cancel", out2, "--rows", "2", "--yes", "--api-base", sandbox.url).exit_code == 0

    today = datetime.now(MEXICO_CITY).date()
    tomorrow = today + timedelta(days=1)
    target = env / "mes.xlsx"
    result = cli("report", "--since", today.isoformat(), "--until", tomorrow.isoformat(), "--output", target, "--json")
    assert result.exit_code == 0, result.output
    # Paid or to be cashed: row 2 cashed (101) + row 4 pending (103) in MXN, row 5 in USD, batch 2 row 3 (106).
    # Expired (102) and cancelled (105) are said apart, never in the headline's money.
    assert "(4 pagos pagados o por cobrar, $310.00 MXN + $104.00 USD)" in result.output
    assert "Además 2 pagos cancelados o vencidos ($207.00 MXN): no se pagaron" in result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    assert data["payouts"] == 6 and data["totals"] == {"MXN": 51700, "USD": 10400}
    assert data["paid"] == {"payouts": 4, "totals": {"MXN": 31000, "USD": 10400}}
    assert data["never_paid"] == {"payouts": 2, "totals": {"MXN": 20700}}

    book = openpyxl.load_workbook(target)
    assert book.sheetnames == ["Pagos", "Totales"]
    payouts = book["Pagos"]
    header = [cell.value for cell in payouts[1]]
    assert header == ["Lote", "Archivo", "Fila", "Nombre", "Correo", "Monto", "Moneda", "Motivo", "Referencia",
                      "Orden de pago", "Creada", "Estado", "Estado consultado", "Cancelada", "Modo"]
    lines = [dict(zip(header, (cell.value for cell in row))) for row in payouts.iter_rows(min_row=2)]
    assert [(r["Lote"], r["Fila"]) for r in lines] == [(batch1, 2), (batch1, 3), (batch1, 4), (batch1, 5),
                                                     (batch2, 2), (batch2, 3)]  # batch by batch, in file order
    assert [r["Nombre"] for r in lines] == [f"Beneficiaria Núñez {n}" for n in range(1, 5)] + ["Segunda 5", "Segunda 6"]
    assert [r["Monto"] for r in lines] == [101, 102, 103, 104, 105, 106]  # pesos, not 10100 centavos
    assert [r["Moneda"] for r in lines] == ["MXN", "MXN", "MXN", "USD", "MXN", "MXN"]
    assert [r["Estado"] for r in lines] == ["cobrada", "vencida", "pendiente", "pendiente", "cancelada", "pendiente"]
    amounts = [row[5] for row in payouts.iter_rows(min_row=2)]
    assert all(cell.data_type == "n" and cell.number_format == "$#,##0.00" for cell in amounts)
    assert all(isinstance(r["Referencia"], str) and len(r["Referencia"]) == 16 for r in lines)

    totals = [[cell.value for cell in row] for row in book["Totales"].iter_rows(values_only=False)]
    assert totals[0] == ["Moneda", "Concepto", "Pagos", "Monto"]
    by_item = {(r[0], r[1]): (r[2], r[3]) for r in totals[1:]}
    assert by_item[("MXN", "Pagado o por cobrar (sin canceladas ni vencidas)")] == (3, 310)
    assert by_item[("MXN", "Cancelado o vencido (no se pagó)")] == (2, 207)
    assert by_item[("MXN", "Total creado")] == (5, 517)
    assert by_item[("USD", "Pagado o por cobrar (sin canceladas ni vencidas)")] == (1, 104)
    assert all(row[3].data_type == "n" for row in _sheet_rows(book["Totales"]))

    english = cli("report", "--since", today.isoformat(), "--until", tomorrow.isoformat(), "--output", target,
                  "--lang", "en")
    assert english.exit_code == 0, english.output
    assert "(4 payouts paid or to be cashed, $310.00 MXN + $104.00 USD)" in english.output
    book = openpyxl.load_workbook(target)
    assert book.sheetnames == ["Payouts", "Totals"]
    assert [cell.value for cell in book["Payouts"][1]][:6] == ["Batch", "File", "Row", "Name", "Email", "Amount"]
    assert [row[11] for row in book["Payouts"].iter_rows(min_row=2, values_only=True)][:3] == ["cashed", "expired", "pending"]

    monkeypatch.chdir(env)
    later = cli("report", "--since", tomorrow.isoformat())
    assert later.exit_code == 2  # until (now) is before since
    default = cli("report", "--since", today.isoformat())
    assert default.exit_code == 0, default.output
    assert (env / f"payouts-{today.isoformat()}-{today.isoformat()}.xlsx").exists()
    assert cli("report", "--since", "marzo").exit_code == 2


def _summary_lines(path, name="Resumen"):
    """The summary sheet as {Concepto: [Detalle, Filas, Monto, Moneda] cells}; later lines of one item win."""
    return {row[0].value: row[1:] for row in openpyxl.load_workbook(path)[name].iter_rows(min_row=2)}


def test_results_sheet_pesos_words_and_a_resumen_of_numbers_refreshed_by_status_and_cancel(sandbox, env, cli):
    """Issue 13, item 5: amount_pesos (a number, whatever the input's unit) and status_label beside the
    documented columns; a Resumen of numbers that `status` and `cancel` bring up to date."""
    rows = [beneficiary(n, monto=f"{100 + n}") for n in range(1, 5)]  # whole pesos, not centavos
    rows.append(beneficiary(5, monto="105", correo="sin-arroba"))
    out = env / "pesos.results.xlsx"
    run = cli("run", write_csv(env / "pesos.csv", rows), "--amount-unit", "pesos", "--api-base", sandbox.url,
              "--output", out)
    assert run.exit_code == 1, run.output  # one invalid row
    sheet = read_xlsx(out)
    assert [r["status"] for r in sheet] == ["created"] * 4 + ["invalid"]  # the documented codes, unchanged
    assert [r["status_label"] for r in sheet] == ["creada"] * 4 + ["inválida"]
    assert [r["amount_pesos"] for r in sheet] == [101, 102, 103, 104, 105]
    assert [r["amount_currency"] for r in sheet] == ["MXN"] * 5
    cells = openpyxl.load_workbook(out).worksheets[0]
    column = [c.value for c in cells[1]].index("amount_pesos")
    assert all(row[column].data_type == "n" and row[column].number_format == "$#,##0.00"
               for row in cells.iter_rows(min_row=2))
    summary = _summary_lines(out)
    created = summary["creadas (created)"]
    assert (created[1].value, created[2].value, created[3].value) == (4, 410, "MXN")  # numbers, not '4' or '$410.00'
    assert created[1].data_type == "n" and created[2].data_type == "n" and created[2].number_format == "$#,##0.00"

    by_row = {r["row_number"]: r for r in _all_ledger_rows(env)}
    sandbox.set_order_status(by_row[2]["payout_order_id"], "cashed")
    sandbox.set_order_status(by_row[3]["payout_order_id"], "expired")
    assert cli("status", out, "--api-base", sandbox.url).exit_code == 0
    assert cli("cancel", out, "--rows", "4", "--yes", "--api-base", sandbox.url).exit_code == 0
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["Resultados", "Resumen", "Errores"]
    summary = _summary_lines(out)
    values = {item: tuple(cell.value for cell in line[1:]) for item, line in summary.items()}
    assert values["Órdenes creadas: cobrada (cashed)"] == (1, 101, "MXN")
    assert values["Órdenes creadas: vencida (no se cobró) (expired)"] == (1, 102, "MXN")
    assert values["Órdenes creadas: cancelada (cancelled)"] == (1, 103, "MXN")
    assert values["Órdenes creadas: pendiente de cobro (pending)"] == (1, 104, "MXN")
    assert values["Pagado o por cobrar (sin canceladas ni vencidas) (MXN)"] == (2, 205, "MXN")
    assert values["creadas (created)"] == (4, 410, "MXN") and values["inválida (corrige el archivo) (invalid)"][0] == 1
    assert summary["Lote"][0].value and summary["Estados consultados en Conekta"][0].value
    assert all(line[1].data_type == "n" for line in summary.values() if line[1].value is not None)
    assert all(line[2].data_type == "n" for line in summary.values() if line[2].value is not None)
    # Still numbers after the sheet was read back and rewritten (they used to come back as text)
    assert [r["amount_pesos"] for r in read_xlsx(out)] == [101, 102, 103, 104, 105]

    english = cli("status", out, "--api-base", sandbox.url, "--lang", "en")
    assert english.exit_code == 0, english.output
    assert openpyxl.load_workbook(out).sheetnames == ["Resultados", "Summary", "Errores"]  # replaced, not added
    lines = {item: tuple(cell.value for cell in line[1:]) for item, line in _summary_lines(out, "Summary").items()}
    assert lines["Created orders: cashed (cashed)"] == (1, 101, "MXN")
    assert lines["Paid or to be cashed (cancelled and expired left out) (MXN)"] == (2, 205, "MXN")


def test_status_and_cancel_calls_join_the_batch_audit_log(sandbox, env, cli):
    out, _batch_id = _run(sandbox, env, cli, count=2)
    assert cli("status", out, "--api-base", sandbox.url).exit_code == 0
    assert cli("cancel", out, "--rows", "2", "--yes", "--api-base", sandbox.url).exit_code == 0
    audit = out.with_suffix(".audit.jsonl")
    entries = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    commands = [e["command"] for e in entries if e["type"] == "command_started"]
    assert commands == ["status", "cancel"]
    assert any(e["type"] == "api_call" and e["method"] == "PUT" for e in entries)
    assert cli("audit", "verify", audit).exit_code == 0


def test_status_and_reconcile_print_json_for_scripts(sandbox, env, cli):
    out, batch_id = _run(sandbox, env, cli, count=2)
    status = cli("status", out, "--api-base", sandbox.url, "--json")
    data = json.loads(status.stdout.strip().splitlines()[-1])
    assert data["batch_id"] == batch_id and data["exit_code"] == status.exit_code == 0
    assert data["checked"] == 2 and data["statuses"]["pending"]["MXN"]["count"] == 2
    rec = cli("reconcile", batch_id, "--api-base", sandbox.url, "--json")
    data = json.loads(rec.stdout.strip().splitlines()[-1])
    assert (data["exit_code"], data["agreed"], data["orphans"], data["missing"]) == (0, 2, [], [])


def test_cancel_json_lists_each_outcome_and_the_money_that_can_no_longer_be_cashed(sandbox, env, cli):
    out, batch_id = _run(sandbox, env, cli, count=3)
    rows = _ledger_rows(env)
    sandbox.set_order_status(rows[3]["payout_order_id"], "cashed")  # the ledger does not know yet
    result = cli("cancel", out, "--rows", "2-3", "--yes", "--api-base", sandbox.url, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    assert data["batch_id"] == batch_id and data["exit_code"] == 0 and data["failed"] == []
    assert [(r["row"], r["status"], r["amount"]) for r in data["cancelled"]] == [(2, "cancelled", 10100)]
    assert [(r["row"], r["status"]) for r in data["already"]] == [(3, "cashed")]
    assert data["cancelled"][0]["reference"] == rows[2]["reference"]
    assert data["amount_cancelled"] == {"MXN": 10100} and data["sheet"] == str(out)

    nothing = cli("cancel", out, "--rows", "2", "--yes", "--api-base", sandbox.url, "--json")
    assert nothing.exit_code == 0, nothing.output
    again = json.loads(nothing.output.strip().splitlines()[-1])
    assert again["cancelled"] == [] and again["amount_cancelled"] == {}
