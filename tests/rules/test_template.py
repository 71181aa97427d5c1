"""template.py: the workbook users start from must pass the tool's own rules, and its
example row -- valid on purpose -- must never be paid."""

from __future__ import annotations

import openpyxl
import pandas as pd

from batch_payouts.files.read import read_table
from batch_payouts.rules import columns, template
from batch_payouts.rules.headers import resolve_headers
from batch_payouts.rules.validation import validate

SPANISH_HEADERS = ["ejemplo", "nombre", "correo", "telefono", "monto", "moneda", "motivo", "folio", "meta_cliente",
                   "vence"]


def test_spanish_template_headers_and_example(tmp_path):
    path = template.write_template(tmp_path / "plantilla.xlsx")
    assert [p.name for p in tmp_path.iterdir()] == ["plantilla.xlsx"]  # no temp file left
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["Beneficiarios", "Instrucciones"]
    sheet = workbook["Beneficiarios"]
    assert [c.value for c in sheet[1]] == SPANISH_HEADERS
    assert sheet.freeze_panes == "A2"
    assert sheet["A2"].value == "EJEMPLO – bórrala"  # the first thing a reader sees on the row
    assert sheet["D2"].value == "5512345678" and sheet["D2"].number_format == "@"
    assert sheet["E2"].value == 150000
    assert sheet.column_dimensions["D"].number_format == "@"  # phones typed later stay text


def test_example_row_passes_every_rule_of_the_schema(tmp_path):
    raw = read_table(template.write_template(tmp_path / "plantilla.xlsx"))
    result = validate(raw).frame
    assert result["valid"].all(), result["error_message"].tolist()
    assert result["metadata"].iloc[0] == {"cliente": "CL-1024"}
    assert resolve_headers(raw.columns).extra == ["ejemplo"]  # kept in the results, never sent


def test_example_row_is_never_valid_and_says_why(tmp_path):
    raw = read_table(template.write_template(tmp_path / "plantilla.xlsx"))
    marked = template.mark_examples(raw, validate(raw), "es")
    frame = marked.frame
    assert frame["valid"].tolist() == [False]
    assert frame["error_code"].tolist() == ["example_row"]
    assert "fila de ejemplo" in frame.at[2, "error_message"] and "Bórrala" in frame.at[2, "error_message"]
    [problem] = marked.problems
    assert (problem.row, problem.column, problem.code) == (2, "ejemplo", "example_row")
    assert problem.line("es").startswith("Fila 2, columna «ejemplo»: es la fila de ejemplo de la plantilla")
    assert "never paid" in problem.line("en")


def test_filled_rows_beside_the_example_stay_valid_and_no_means_not_an_example(tmp_path):
    raw = read_table(template.write_template(tmp_path / "plantilla.xlsx"))
    real = {**raw.loc[2].to_dict(), "ejemplo": "", "correo": "ana@ejemplo.mx", "folio": "F-1"}
    declined = {**real, "ejemplo": " No ", "correo": "luis@ejemplo.mx", "folio": "F-2"}
    table = pd.DataFrame([raw.loc[2].to_dict(), real, declined], index=[2, 3, 4], dtype="str")
    marked = template.mark_examples(table, validate(table))
    assert marked.frame["valid"].tolist() == [False, True, True]
    assert [p.row for p in marked.problems] == [2]


def test_example_copied_without_its_marker_is_still_the_example(tmp_path):
    """Someone deleted the «ejemplo» column but kept María's row: her email and folio still give it away."""
    raw = read_table(template.write_template(tmp_path / "plantilla.xlsx")).drop(columns=["ejemplo"])
    marked = template.mark_examples(raw, validate(raw), "en")
    assert marked.frame["valid"].tolist() == [False]
    [problem] = marked.problems
    assert problem.column == "correo" and "template's example row" in problem.line("en")


def test_example_problem_comes_first_among_its_rows_problems(tmp_path):
    raw = read_table(template.write_template(tmp_path / "plantilla.xlsx"))
    broken = {**raw.loc[2].to_dict(), "correo": "no-es-correo"}
    other = {**broken, "ejemplo": "", "folio": "F-9", "nombre": "Ana Ruiz", "monto": "200000"}
    table = pd.DataFrame([other, broken], index=[2, 3], dtype="str")
    marked = template.mark_examples(table, validate(table))
    assert [(p.row, p.code) for p in marked.problems] == [(2, "invalid_email"), (3, "example_row"), (3, "invalid_email")]
    assert marked.frame.at[3, "error_code"] == "example_row;invalid_email"


def test_instructions_cover_every_column(tmp_path):
    path = template.write_template(tmp_path / "plantilla.xlsx")
    instructions = read_table(path, sheet="Instrucciones")
    assert list(instructions.columns) == ["Columna", "¿Obligatoria?", "También se acepta", "Formato", "Ejemplo"]
    by_column = instructions.set_index("Columna")
    for header in SPANISH_HEADERS:
        assert header in by_column.index
        assert by_column.loc[header, "Formato"]
    for canonical in columns.REQUIRED_COLUMNS:
        assert by_column.loc[columns.ALIASES[canonical][0], "¿Obligatoria?"] == "Sí"
    assert by_column.loc["telefono", "¿Obligatoria?"] == "No"
    assert "celular" in by_column.loc["telefono", "También se acepta"]
    assert "importe" in by_column.loc["monto", "También se acepta"]
    assert "id cliente" in by_column.index
    assert "nunca se paga" in by_column.loc["ejemplo", "Formato"]


def test_english_template(tmp_path):
    path = template.write_template(tmp_path / "template.xlsx", lang="en")
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["Beneficiaries", "Instructions"]
    raw = read_table(path)
    assert list(raw.columns)[:4] == ["example", "name", "email", "phone"]
    assert raw.loc[2, "example"] == "EXAMPLE – delete it"
    assert validate(raw).frame["valid"].all()
    assert template.mark_examples(raw, validate(raw), "en").frame["error_code"].tolist() == ["example_row"]


def test_csv_template_has_headers_and_example(tmp_path):
    raw = read_table(template.write_template(tmp_path / "plantilla.csv"))
    assert list(raw.columns) == SPANISH_HEADERS and len(raw) == 1
    assert template.mark_examples(raw, validate(raw)).frame["valid"].tolist() == [False]
