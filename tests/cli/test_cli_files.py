"""The files a user hands over and gets back, through the real CLI and real HTTP to the sandbox:
the template's example row is never paid, the results sheet is XLSX (references stay text)
whatever the input, and a workbook's hidden or empty first sheet is not taken for the payments."""

from __future__ import annotations

import openpyxl

from conftest import beneficiary, read_xlsx, write_csv


def _posts(sandbox) -> list[dict]:
    return [r for r in sandbox.request_log if r["method"] == "POST"]


def test_run_on_the_untouched_template_sends_nothing_and_says_why(sandbox, env, cli):
    template = env / "plantilla.xlsx"
    assert cli("template", template).exit_code == 0
    validated = cli("validate", template)
    assert validated.exit_code == 1 and "válida" not in validated.output.replace("inválida", "")
    result = cli("run", template, "--api-base", sandbox.url)
    assert result.exit_code == 1, result.output
    assert sandbox.payout_orders() == [] and sandbox.customers() == [] and _posts(sandbox) == []
    assert "Fila 2, columna «ejemplo»: es la fila de ejemplo de la plantilla" in result.output
    [row] = read_xlsx(env / "plantilla.results.xlsx")
    assert (row["status"], row["error_code"], row["ejemplo"]) == ("invalid", "example_row", "EJEMPLO – bórrala")
    assert row["payout_order_id"] in (None, "")


def test_template_with_the_example_deleted_pays_the_users_rows(sandbox, env, cli):
    template = env / "plantilla.xlsx"
    cli("template", template)
    book = openpyxl.load_workbook(template)
    sheet = book["Beneficiarios"]
    sheet.delete_rows(2)
    sheet.append(["", "Ana Ruiz", "ana@ejemplo.mx", "5512345678", 150000, "MXN", "Nómina", "F-1", "", ""])
    book.save(template)
    result = cli("run", template, "--api-base", sandbox.url)
    assert result.exit_code == 0, result.output
    assert [o["amount"] for o in sandbox.payout_orders()] == [150000]


def test_csv_input_gives_xlsx_results_with_references_phones_and_ids_as_text(sandbox, env, cli):
    rows = [beneficiary(1, telefono="0055123456", folio="000123"), beneficiary(2, folio="F-2")]
    source = write_csv(env / "pagos.csv", rows)
    result = cli("run", source, "--api-base", sandbox.url)
    assert result.exit_code == 0, result.output
    assert "CSV" not in result.output  # no warning: nobody asked for CSV
    assert not (env / "pagos.results.csv").exists()
    sheet = openpyxl.load_workbook(env / "pagos.results.xlsx").worksheets[0]
    header = [c.value for c in sheet[1]]
    lines = [dict(zip(header, row)) for row in sheet.iter_rows(min_row=2)]
    references = {o["reference"] for o in sandbox.payout_orders()}
    assert {line["reference"].value for line in lines} == references
    for line in lines:
        for column in ("reference", "payout_order_id", "customer_id", "telefono", "folio"):
            assert line[column].data_type == "s" and isinstance(line[column].value, str), column
        assert len(line["reference"].value) == 16
    assert (lines[0]["telefono"].value, lines[0]["folio"].value) == ("0055123456", "000123")


def test_csv_results_only_when_asked_with_a_warning_and_text_columns_quoted(sandbox, env, cli):
    source = write_csv(env / "pagos.csv", [beneficiary(1, telefono="0055123456")])
    out = env / "x.csv"
    result = cli("run", source, "--api-base", sandbox.url, "--output", out)
    assert result.exit_code == 0, result.output
    assert "Aviso: pediste la hoja de resultados en CSV" in result.output and "16 dígitos" in result.output
    [order] = sandbox.payout_orders()
    text = out.read_text(encoding="utf-8-sig")
    assert f'"{order["reference"]}"' in text and '"0055123456"' in text and f'"{order["id"]}"' in text
    english = cli("validate", source, "--output", env / "v.csv", "--lang", "en")
    assert "Warning: you asked for the results sheet as CSV" in english.output
    assert "Aviso" not in cli("validate", source, "--output", env / "v.xlsx").output


def test_a_hidden_or_empty_first_sheet_is_not_the_payments(sandbox, env, cli):
    path = env / "libro.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "Portada"  # empty
    hidden = book.create_sheet("Catálogo")
    hidden.append(["clave", "descripcion"])
    hidden.sheet_state = "hidden"
    payments = book.create_sheet("Pagos")
    rows = [beneficiary(1), beneficiary(2)]
    payments.append(list(rows[0]))
    for row in rows:
        payments.append(list(row.values()))
    book.save(path)
    result = cli("run", path, "--api-base", sandbox.url)
    assert result.exit_code == 0, result.output
    assert len(sandbox.payout_orders()) == 2


def test_a_sheet_without_the_columns_is_named_with_a_hint_to_use_sheet(env, cli):
    path = env / "libro.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "Resumen"
    book.active.append(["total"])
    book.active.append([3000])
    book.create_sheet("Pagos").append(list(beneficiary(1)))
    book.save(path)
    result = cli("validate", path)
    assert result.exit_code == 2
    assert "Hoja leída: «Resumen»" in result.output and "«Resumen», «Pagos»" in result.output
    assert "--sheet" in result.output and "Traceback" not in result.output
    english = cli("validate", path, "--lang", "en", "--sheet", "Pagos")
    assert english.exit_code == 2 and "no beneficiary rows" in english.output and "Sheet read: «Pagos»" in english.output


def test_a_second_file_of_the_same_name_never_overwrites_the_first_ones_results(sandbox, env, cli):
    """pagos.csv and pagos.xlsx both default to pagos.results.xlsx: the second run is refused before
    sending anything (the first file's references stay in its sheet), and runs with --output."""
    first = write_csv(env / "pagos.csv", [beneficiary(1), beneficiary(2)])
    assert cli("run", first, "--api-base", sandbox.url).exit_code == 0
    sheet = env / "pagos.results.xlsx"
    references = {row["reference"] for row in read_xlsx(sheet)}
    book = openpyxl.Workbook()
    book.active.append(list(beneficiary(3)))
    book.active.append(list(beneficiary(3).values()))
    book.save(env / "pagos.xlsx")
    refused = cli("run", env / "pagos.xlsx", "--api-base", sandbox.url)
    assert refused.exit_code == 2 and "ya es de otro archivo («pagos.csv»" in refused.output
    assert len(sandbox.payout_orders()) == 2 and {row["reference"] for row in read_xlsx(sheet)} == references
    assert cli("run", env / "pagos.xlsx", "--api-base", sandbox.url, "--output", env / "pagos-xlsx.results.xlsx").exit_code == 0
    assert len(sandbox.payout_orders()) == 3


def test_the_same_file_fixed_and_run_again_still_writes_its_own_sheet(sandbox, env, cli):
    source = write_csv(env / "pagos.csv", [beneficiary(1), beneficiary(2, correo="no-es-correo")])
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 1
    write_csv(source, [beneficiary(1), beneficiary(2)])  # fixed: a new batch of the same file
    rerun = cli("run", source, "--api-base", sandbox.url)
    assert rerun.exit_code == 1 and "ya es de otro archivo" not in rerun.output
    # its own sheet: row 2 paid now; row 1 was paid by the first batch, so the repeat guard holds it
    assert [row["status"] for row in read_xlsx(env / "pagos.results.xlsx")] == ["duplicate", "created"]
    assert len(sandbox.payout_orders()) == 2
