"""template.py: the workbook users start from must pass the tool's own rules."""

from __future__ import annotations

import openpyxl

from batch_payouts.files import sheets
from batch_payouts.rules import schema, template

SPANISH_HEADERS = ["nombre", "correo", "telefono", "monto", "moneda", "motivo", "folio", "meta_cliente", "vence"]


def test_spanish_template_headers_and_example(tmp_path):
    path = template.write_template(tmp_path / "plantilla.xlsx")
    assert [p.name for p in tmp_path.iterdir()] == ["plantilla.xlsx"]  # no temp file left
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["Beneficiarios", "Instrucciones"]
    sheet = workbook["Beneficiarios"]
    assert [c.value for c in sheet[1]] == SPANISH_HEADERS
    assert sheet.freeze_panes == "A2"
    assert sheet["C2"].value == "5512345678" and sheet["C2"].number_format == "@"
    assert sheet["D2"].value == 150000
    assert sheet.column_dimensions["C"].number_format == "@"  # phones typed later stay text


def test_example_row_is_valid(tmp_path):
    raw = sheets.read_table(template.write_template(tmp_path / "plantilla.xlsx"))
    result = schema.validate(raw)
    assert result["valid"].all(), result["error_message"].tolist()
    assert result["metadata"].iloc[0] == {"cliente": "CL-1024"}
    assert schema.resolve_headers(raw.columns).extra == []


def test_instructions_cover_every_column(tmp_path):
    path = template.write_template(tmp_path / "plantilla.xlsx")
    instructions = sheets.read_table(path, sheet="Instrucciones")
    assert list(instructions.columns) == ["Columna", "¿Obligatoria?", "También se acepta", "Formato", "Ejemplo"]
    by_column = instructions.set_index("Columna")
    for header in SPANISH_HEADERS:
        assert header in by_column.index
        assert by_column.loc[header, "Formato"]
    for canonical in schema.REQUIRED_COLUMNS:
        assert by_column.loc[schema.ALIASES[canonical][0], "¿Obligatoria?"] == "Sí"
    assert by_column.loc["telefono", "¿Obligatoria?"] == "No"
    assert "celular" in by_column.loc["telefono", "También se acepta"]
    assert "importe" in by_column.loc["monto", "También se acepta"]
    assert "id cliente" in by_column.index


def test_english_template(tmp_path):
    path = template.write_template(tmp_path / "template.xlsx", lang="en")
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["Beneficiaries", "Instructions"]
    raw = sheets.read_table(path)
    assert list(raw.columns)[:3] == ["name", "email", "phone"]
    assert schema.validate(raw)["valid"].all()


def test_csv_template_has_headers_and_example(tmp_path):
    raw = sheets.read_table(template.write_template(tmp_path / "plantilla.csv"))
    assert list(raw.columns) == SPANISH_HEADERS and len(raw) == 1
