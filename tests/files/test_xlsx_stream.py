"""xlsx_stream.py: a large sheet streamed through openpyxl reads exactly as calamine reads it.

Every workbook here is read twice, once with the streaming threshold lowered to
nothing and once raised out of reach, and the two frames (and the results
sheets ``validate`` writes from them) must be identical.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import xlsxwriter
from python_calamine import CalamineWorkbook

from batch_payouts.errors import InputFileError
from batch_payouts.files import read, xlsx_stream
from conftest import write_workbook

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True, params=[True, False], ids=["own-xml-loop", "openpyxl-rows"])
def both_streams(request, monkeypatch):
    """Every test runs with the sheet's XML read by our loop and by openpyxl's public rows."""
    monkeypatch.setattr(xlsx_stream, "_FAST", request.param)
    return request.param
NEVER = 1 << 62
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def both(monkeypatch, path: Path, sheet: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(calamine's frame, the streamed frame) of the same workbook."""
    streamed: list[str] = []
    real = xlsx_stream.text_rows

    def spy(file, name):
        streamed.append(name)
        return real(file, name)

    monkeypatch.setattr(xlsx_stream, "text_rows", spy)
    monkeypatch.setattr(xlsx_stream, "STREAM_ABOVE_BYTES", NEVER)
    whole = read.read_table(path, sheet=sheet)
    assert streamed == []
    monkeypatch.setattr(xlsx_stream, "STREAM_ABOVE_BYTES", -1)
    stream = read.read_table(path, sheet=sheet)
    assert streamed, "the streaming path was not taken"
    return whole, stream


def assert_same(monkeypatch, path: Path, sheet: str | None = None) -> pd.DataFrame:
    whole, stream = both(monkeypatch, path, sheet)
    pd.testing.assert_frame_equal(stream, whole)
    assert stream.attrs == whole.attrs
    return stream


def every_kind_of_cell(path: Path, *, constant_memory: bool) -> Path:
    """Cells of every kind a payout sheet may hold, as Excel stores them (XlsxWriter writes the
    XML Excel does: shared strings, or inline strings in constant-memory mode)."""
    book = xlsxwriter.Workbook(str(path), {"constant_memory": constant_memory, "strings_to_numbers": False})
    sheet = book.add_worksheet("Pagos")
    formats = {code: book.add_format({"num_format": code}) for code in (
        "yyyy-mm-dd", "dd/mm/yyyy hh:mm", "hh:mm:ss", "[h]:mm:ss", "0.00", "$#,##0.00", "@", "mm:ss", "d-mmm",
        "0%", "0.00E+00", "[$-F800]dddd, mmmm dd, yyyy", "h:mm AM/PM", "yyyy-mm-dd hh:mm:ss.000", '0 "días"')}
    sheet.write_row(0, 0, ["caso", "valor", "nombre"])
    numbers = [
        ("fecha", 45688, "yyyy-mm-dd"), ("fecha con hora", 45688.4375, "dd/mm/yyyy hh:mm"),
        ("fecha entera con hora", 45688, "dd/mm/yyyy hh:mm"), ("fecha fraccion", 45688.75, "yyyy-mm-dd"),
        ("hora", 0.4375, "hh:mm:ss"), ("duracion", 1.5, "[h]:mm:ss"), ("duracion corta", 0.5, "[h]:mm:ss"),
        ("moneda", 1500.5, "$#,##0.00"), ("dos decimales", 3000, "0.00"), ("texto", 55123, "@"),
        ("mm:ss", 0.01, "mm:ss"), ("d-mmm", 45688, "d-mmm"), ("porcentaje", 0.25, "0%"),
        ("cientifico", 1.5e20, "0.00E+00"), ("fecha larga", 45688, "[$-F800]dddd, mmmm dd, yyyy"),
        ("am/pm", 0.75, "h:mm AM/PM"), ("milisegundos", 45688.123456789, "yyyy-mm-dd hh:mm:ss.000"),
        ("cero fecha", 0, "yyyy-mm-dd"), ("1900-02-28", 59, "yyyy-mm-dd"), ("serial 60", 60, "yyyy-mm-dd"),
        ("serial 61", 61, "yyyy-mm-dd"), ("serial 1", 1, "yyyy-mm-dd"), ("dias", 12, '0 "días"'),
    ]
    row = 1
    for case, value, code in numbers:
        sheet.write_string(row, 0, case)
        sheet.write_number(row, 1, value, formats[code])
        sheet.write_string(row, 2, f"Persona {row}")
        row += 1
    plain = [
        ("telefono", 5512345678), ("monto", 3000.0), ("referencia", 1025292250000330), ("grande", 12345678901234567),
        ("muy grande", 1e20), ("fraccion", 30.1), ("flotante", 0.1 + 0.2), ("menos cero", -0.0), ("negativo", -150),
        ("pequeño", 1e-7),
    ]
    for case, value in plain:
        sheet.write_string(row, 0, case)
        sheet.write_number(row, 1, value)
        row += 1
    cells = [
        ("verdadero", lambda r: sheet.write_boolean(r, 1, True)),
        ("falso", lambda r: sheet.write_boolean(r, 1, False)),
        ("formula", lambda r: sheet.write_formula(r, 1, "=1+1", None, 2)),
        ("formula texto", lambda r: sheet.write_formula(r, 1, '="a"&"b"', None, "ab")),
        ("formula error", lambda r: sheet.write_formula(r, 1, "=NA()", None, "#N/A")),
        ("formula div0", lambda r: sheet.write_formula(r, 1, "=1/0", None, "#DIV/0!")),
        ("formula booleana", lambda r: sheet.write_formula(r, 1, "=TRUE()", None, True)),
        ("formula fecha", lambda r: sheet.write_formula(r, 1, "=DATE(2025,1,31)", formats["yyyy-mm-dd"], 45688)),
        ("formula sin valor", lambda r: sheet.write_formula(r, 1, "=A1")),
        ("texto #N/A", lambda r: sheet.write_string(r, 1, "#N/A")),
        ("espacios", lambda r: sheet.write_string(r, 1, "  x  ")),
        ("control", lambda r: sheet.write_string(r, 1, "a\x01b\tc\r\nd")),
        ("retorno", lambda r: sheet.write_string(r, 1, "línea 1\r\nlínea 2")),
        ("acentos", lambda r: sheet.write_string(r, 1, "Núñez & <Hijos> \"Peña\" 'ñ' €")),
        ("rico", lambda r: sheet.write_rich_string(r, 1, "Ana ", book.add_format({"bold": True}), "López")),
        ("vacio con formato", lambda r: sheet.write_blank(r, 1, None, formats["0.00"])),
        ("cadena vacia", lambda r: sheet.write_string(r, 1, "")),
        ("parece formula", lambda r: sheet.write_string(r, 1, "=HYPERLINK(\"x\")")),
        ("ceros", lambda r: sheet.write_string(r, 1, "0055")),
        ("emoji", lambda r: sheet.write_string(r, 1, "pago 💸")),
    ]
    for case, write in cells:
        sheet.write_string(row, 0, case)
        write(row)
        row += 1
    sheet.write_string(row + 3, 0, "tras filas vacias")  # blank rows keep the row numbers after them
    sheet.write_string(row + 3, 4, "lejos")  # and a cell under no header is kept under its letter
    book.close()
    return path


@pytest.mark.parametrize("constant_memory", [False, True], ids=["shared-strings", "inline-strings"])
def test_every_kind_of_cell_reads_the_same(tmp_path, monkeypatch, constant_memory):
    frame = assert_same(monkeypatch, every_kind_of_cell(tmp_path / "c.xlsx", constant_memory=constant_memory))
    values = dict(zip(frame["caso"], frame["valor"]))
    # What calamine gives, so what both must give (a few of them spelled out).
    assert values["fecha"] == "2025-01-31" and values["telefono"] == "5512345678"
    assert values["formula error"] == "" and values["texto #N/A"] == "#N/A"
    assert values["control"] == "a\x01b\tc\r\nd" and values["grande"] == "12345678901234600"


def test_workbooks_saved_by_openpyxl_read_the_same(tmp_path, monkeypatch):
    path = tmp_path / "o.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Hoja1"
    sheet.append(["nombre", "telefono", "monto", "ref", "codigo", "grande", "fraccion", "fecha", "hora", "activo"])
    sheet.append(["Ana", 5512345678, 3000.0, 1025292250000330, "0055", 1e20, 30.1,
                  dt.date(2025, 1, 31), dt.datetime(2025, 1, 31, 10, 30), True])
    sheet.append(["Luis", 5512345679, 150000, 12345678901234567, "_x000D_", -7, 1 / 3,
                  dt.datetime(2025, 2, 1), dt.time(8, 15), False])
    sheet["B7"] = "fuera"
    sheet["M2"] = "extra"
    workbook.save(path)
    assert_same(monkeypatch, path)


def test_1904_dates_read_the_same(tmp_path, monkeypatch):
    path = tmp_path / "mac.xlsx"
    book = xlsxwriter.Workbook(str(path), {"date_1904": True})
    sheet = book.add_worksheet("Pagos")
    sheet.write_row(0, 0, ["nombre", "fecha"])
    sheet.write_string(1, 0, "Ana")
    sheet.write_datetime(1, 1, dt.datetime(2025, 1, 31), book.add_format({"num_format": "yyyy-mm-dd"}))
    book.close()
    assert assert_same(monkeypatch, path).loc[2, "fecha"] == "2025-01-31"


def test_the_sample_and_the_benchmarks_workbook_read_the_same(tmp_path, monkeypatch):
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from common import beneficiaries, write_xlsx

    assert_same(monkeypatch, ROOT / "samples" / "beneficiaries.xlsx")
    assert_same(monkeypatch, write_xlsx(tmp_path / "bench.xlsx", beneficiaries(300, invalid_every=7)))


def test_sheet_selection_and_hidden_sheets_are_the_same(tmp_path, monkeypatch):
    payments = [["nombre", "monto"], ["Ana", 3000], ["Luis", 150000]]
    path = write_workbook(tmp_path / "b.xlsx", [("Catálogo", [["clave", "valor"], ["x", 1]], "hidden"),
                                                ("Portada", [["  ", None]], "visible"),
                                                ("Pagos & más", payments, "visible")])
    assert assert_same(monkeypatch, path).attrs["sheet"] == "Pagos & más"
    assert list(assert_same(monkeypatch, path, sheet="catálogo ").columns) == ["clave", "valor"]
    monkeypatch.setattr(xlsx_stream, "STREAM_ABOVE_BYTES", -1)
    with pytest.raises(InputFileError) as excinfo:
        read.read_table(path, sheet="Portada")
    assert "Portada" in excinfo.value.message("es")


def test_rows_after_a_block_of_empty_rows_keep_their_numbers(tmp_path, monkeypatch):
    """A missing row is an empty list; a whole block of them must still count as rows."""
    path = tmp_path / "gap.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Pagos")
    sheet.write_row(0, 0, ["nombre", "monto"])
    sheet.write_row(1, 0, ["Ana", 3000])
    sheet.write_row(40, 0, ["Luis", 150000])
    book.close()
    monkeypatch.setattr(read, "_XLSX_BLOCK_ROWS", 4)
    frame = assert_same(monkeypatch, path)
    assert list(frame.index) == [2, 41]


def test_a_stale_dimension_does_not_cut_rows(tmp_path, monkeypatch):
    """calamine reads every cell whatever <dimension> says; so does the stream."""
    source = write_workbook(tmp_path / "b.xlsx", [("Pagos", [["nombre", "monto"], ["Ana", 1], ["Luis", 2],
                                                             ["Eva", 3]], "visible")])
    stale = with_sheet_xml(source, tmp_path / "stale.xlsx", lambda xml: xml.replace(
        b'<dimension ref="A1:B4"', b'<dimension ref="A1:B2"'))
    assert assert_same(monkeypatch, stale)["nombre"].tolist() == ["Ana", "Luis", "Eva"]


def with_sheet_xml(source: Path, target: Path, change) -> Path:
    """A copy of workbook ``source`` whose worksheets' XML went through ``change`` (which must change it)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            data = old.read(item)
            if item.filename.startswith("xl/worksheets/"):
                changed = change(data)
                assert changed != data
                data = changed
            new.writestr(item, data)
    return target


def test_cells_as_excel_itself_writes_them_read_the_same(tmp_path, monkeypatch):
    """What openpyxl and XlsxWriter never write but Excel does: a whole number past 2**53 without
    a decimal point, an error cell without a formula, escapes in inline text, cells without r=."""
    source = write_workbook(tmp_path / "b.xlsx", [("Pagos", [["nombre", "ref", "error", "texto"],
                                                             ["Ana", 1, 2, 3], ["Luis", 4, 5, 6]], "visible")])
    cells = (b'<row r="2"><c r="A2" t="inlineStr"><is><t>Ana</t></is></c><c r="B2"><v>12345678901234567</v></c>'
             b'<c r="C2" t="e"><v>#REF!</v></c><c r="D2" t="inlineStr"><is><t>_x0041__x005F_x0042_ _x000d_</t></is></c>'
             b'</row><row r="3"><c t="inlineStr"><is><t>Luis</t></is></c><c><v>7E+2</v></c><c t="str"><v>#N/A</v></c>'
             b'<c t="inlineStr"><is><r><t>Ri</t></r><r><rPr><b/></rPr><t>co</t></r></is></c></row>')
    path = with_sheet_xml(source, tmp_path / "excel.xlsx",
                          lambda xml: re.sub(rb'<row r="2".*</row>', cells, xml, flags=re.S))
    frame = assert_same(monkeypatch, path)
    assert frame.loc[2].tolist() == ["Ana", "12345678901234600", "", "A_x0042_ \r"]
    assert frame.loc[3].tolist() == ["Luis", "700", "#N/A", "Rico"]


def test_only_sheets_above_the_threshold_are_streamed(tmp_path, monkeypatch):
    path = write_workbook(tmp_path / "b.xlsx", [("Pagos", [["nombre"], ["Ana"]], "visible")])
    size = xlsx_stream.sheet_xml_bytes(path, "Pagos")
    with zipfile.ZipFile(path) as archive:
        assert size == archive.getinfo("xl/worksheets/sheet1.xml").file_size
    assert not xlsx_stream.should_stream(path, "Pagos")  # the default keeps calamine for small sheets
    monkeypatch.setattr(xlsx_stream, "STREAM_ABOVE_BYTES", size - 1)
    assert xlsx_stream.should_stream(path, "Pagos")
    monkeypatch.setattr(xlsx_stream, "STREAM_ABOVE_BYTES", size)
    assert not xlsx_stream.should_stream(path, "Pagos")
    assert xlsx_stream.sheet_xml_bytes(path, "Otra") is None
    assert xlsx_stream.sheet_xml_bytes(tmp_path / "missing.xlsx", "Pagos") is None


def test_a_damaged_streamed_sheet_is_an_input_error(tmp_path, monkeypatch):
    source = write_workbook(tmp_path / "b.xlsx", [("Pagos", [["nombre"], ["Ana"]], "visible")])
    broken = with_sheet_xml(source, tmp_path / "broken.xlsx", lambda xml: xml.replace(b"</sheetData>", b"<row>"))
    monkeypatch.setattr(xlsx_stream, "STREAM_ABOVE_BYTES", -1)
    with pytest.raises(InputFileError) as excinfo:
        read.read_table(broken, sheet="Pagos")
    assert "Excel" in excinfo.value.message("es")


def results_sheets(path: Path) -> dict[str, list[list[object]]]:
    """Every sheet of a results workbook, without the summary's start and end times (they differ per run)."""
    workbook = CalamineWorkbook.from_path(str(path))
    sheets = {name: workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
              for name in workbook.sheet_names}
    sheets["Resumen"] = [row for row in sheets["Resumen"]
                         if not any(isinstance(cell, str) and TIME.match(cell) for cell in row)]
    return sheets


def test_validate_writes_the_same_results_sheet_either_way(tmp_path, monkeypatch, cli):
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from common import beneficiaries, write_xlsx

    source = write_xlsx(tmp_path / "pagos.xlsx", beneficiaries(400, invalid_every=9))
    outputs = {}
    for label, threshold in (("whole", NEVER), ("stream", -1)):
        monkeypatch.setattr(xlsx_stream, "STREAM_ABOVE_BYTES", threshold)
        outputs[label] = tmp_path / f"{label}.results.xlsx"
        result = cli("validate", source, "--output", outputs[label])
        assert result.exit_code == 1, result.output  # some rows are invalid on purpose
    assert results_sheets(outputs["stream"]) == results_sheets(outputs["whole"])
