"""write.py: results sheets that are safe to open, keep references as text, and appear all at once."""

from __future__ import annotations

import os
import zipfile

import openpyxl
import pandas as pd
import pytest

from batch_payouts.errors import BatchError
from batch_payouts.files import read, write


DANGEROUS = ["=HYPERLINK(\"http://x\")", "+52 55", "-150", "@SUM(A1)", "\tcmd", "\r=1+1"]


def results_frame():
    return pd.DataFrame(
        {
            "fila": [2, 3, 4],
            "nombre": ["Ana López", "=1+1", "Luis"],
            "referencia": ["1025292250000330", "", None],
            "monto": pd.array([150000, None, 3000], dtype="Int64"),
            "status": ["created", "invalid", "failed"],
            "nota": ["x" * 200, "", "corto"],
        }
    )


def test_xlsx_output_is_styled(tmp_path):
    path = write.write_table(
        results_frame(),
        tmp_path / "r.xlsx",
        text_columns=["referencia"],
        integer_columns=["monto", "fila"],
        row_fills={"invalid": "FFF4CCCC", "failed": "FFFFE0B2"},
    )
    sheet = openpyxl.load_workbook(path)["Resultados"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:F4"
    assert all(cell.font.b for cell in sheet[1])
    assert sheet["C2"].value == "1025292250000330" and sheet["C2"].data_type == "s"
    assert sheet["C2"].number_format == "@"
    assert sheet["D2"].value == 150000 and isinstance(sheet["D2"].value, int)
    assert sheet["D3"].value is None
    assert sheet["A2"].value == 2
    assert sheet["A3"].fill.fgColor.rgb == "FFF4CCCC"
    assert sheet["F4"].fill.fgColor.rgb == "FFFFE0B2"
    assert sheet["A2"].fill.fill_type is None
    assert sheet.column_dimensions["F"].width == write.MAX_COLUMN_WIDTH
    assert 10 <= sheet.column_dimensions["B"].width < 20


def test_xlsx_output_never_holds_formulas(tmp_path):
    frame = pd.DataFrame({"texto": DANGEROUS, "status": ["invalid"] * len(DANGEROUS)})
    path = write.write_table(frame, tmp_path / "r.xlsx", text_columns=["texto"], extra_sheets={"Otra": frame})
    workbook = openpyxl.load_workbook(path)
    for sheet in workbook.worksheets:
        cells = [row[0] for row in sheet.iter_rows(min_row=2)]
        # XML itself turns a lone CR into LF when read; the text is otherwise intact.
        assert [c.value for c in cells] == [d.replace("\r", "\n") for d in DANGEROUS]
        assert all(c.data_type == "s" for c in cells)
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in archive.read(name) and b"<f " not in archive.read(name)


def test_xlsx_output_plain_columns_too(tmp_path):
    frame = pd.DataFrame({"a": ["=1+1", "ok", "@x"], "b": [1.5, 2.0, float("nan")]})
    sheet = openpyxl.load_workbook(write.write_table(frame, tmp_path / "r.xlsx")).active
    assert [sheet.cell(row=r, column=1).data_type for r in (2, 3, 4)] == ["s", "s", "s"]
    assert sheet["B2"].value == 1.5 and sheet["B4"].value is None


def test_csv_output_is_formula_safe_with_bom(tmp_path):
    frame = pd.DataFrame({"texto": DANGEROUS, "monto": pd.array([100, None, 3, 4, 5, 6], dtype="Int64")})
    path = write.write_table(frame, tmp_path / "r.csv", integer_columns=["monto"])
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    lines = text.split("\r\n")
    assert lines[0] == "texto,monto"
    assert lines[1] == "\"'=HYPERLINK(\"\"http://x\"\")\",100"
    assert lines[2] == "'+52 55,"
    assert lines[3].startswith("'-150,")
    assert lines[4].startswith("'@SUM(A1)")
    back = read.read_table(path)
    assert all(value.startswith("'") for value in back["texto"])


def test_roundtrip_xlsx(tmp_path):
    frame = pd.DataFrame({"nombre": ["José", "Ana"], "telefono": ["0055123456", "5512345678"], "monto": ["3000", ""]})
    path = write.write_table(frame, tmp_path / "r.xlsx", text_columns=["telefono"], integer_columns=["monto"])
    back = read.read_table(path)
    assert back.to_dict("list") == frame.to_dict("list")


def test_extra_sheets(tmp_path):
    path = write.write_table(
        pd.DataFrame({"a": [1]}), tmp_path / "r.xlsx", sheet_name="Datos", extra_sheets={"Resumen": pd.DataFrame({"total": [1]})}
    )
    assert openpyxl.load_workbook(path).sheetnames == ["Datos", "Resumen"]


def test_money_columns_are_pesos_excel_can_sum_in_every_sheet(tmp_path):
    """Pesos as numbers with a currency format (not "$7,800.00" text), also once read back as text,
    and in a TypedSheet; CSV gets plain two-decimal figures an importer reads as numbers."""
    from decimal import Decimal

    frame = pd.DataFrame({"monto": [Decimal("7800.00"), "1500.5", None, "n/d"], "moneda": ["MXN"] * 4})
    resumen = pd.DataFrame({"Filas": [7, None], "Monto": [Decimal("10.10"), None]})
    path = write.write_table(frame, tmp_path / "r.xlsx", money_columns=["monto"],
                             extra_sheets={"Resumen": write.TypedSheet(resumen, ("Filas",), ("Monto",))})
    book = openpyxl.load_workbook(path)
    cells = [row[0] for row in book.active.iter_rows(min_row=2)]
    assert [c.value for c in cells] == [7800, 1500.5, None, "n/d"]  # unreadable text kept as it was
    assert [c.number_format for c in cells[:2]] == ["$#,##0.00", "$#,##0.00"] and cells[0].data_type == "n"
    filas, monto = book["Resumen"]["A2"], book["Resumen"]["B2"]
    assert (filas.value, filas.data_type, monto.value, monto.number_format) == (7, "n", 10.1, "$#,##0.00")
    csv_text = write.write_table(frame, tmp_path / "r.csv", money_columns=["monto"]).read_text(encoding="utf-8-sig")
    assert csv_text.splitlines() == ["monto,moneda", "7800.00,MXN", "1500.50,MXN", ",MXN", "n/d,MXN"]


def test_illegal_characters_are_replaced(tmp_path):
    frame = pd.DataFrame({"a": ["bell\x07here"]})
    sheet = openpyxl.load_workbook(write.write_table(frame, tmp_path / "r.xlsx")).active
    assert sheet["A2"].value == "bell\ufffdhere"


@pytest.mark.parametrize("name", ["r.xlsx", "r.csv"])
def test_atomic_write_leaves_no_temp_file(tmp_path, name):
    write.write_table(results_frame(), tmp_path / name)
    write.write_table(results_frame(), tmp_path / name)  # replacing works too
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_written_file_has_normal_permissions(tmp_path):
    path = write.write_table(results_frame(), tmp_path / "r.csv")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("name", ["r.xlsx", "r.csv"])
def test_failed_write_keeps_previous_file(tmp_path, monkeypatch, name):
    target = tmp_path / name
    target.write_bytes(b"previous")

    def broken(*args, **kwargs):
        temp = args[-1]
        temp.write_bytes(b"half written")
        raise RuntimeError("disk full")

    monkeypatch.setattr(write, "_write_xlsx" if name.endswith("xlsx") else "_write_csv", broken)
    with pytest.raises(RuntimeError):
        write.write_table(results_frame(), target)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_write_to_missing_folder_is_explained(tmp_path):
    with pytest.raises(BatchError) as excinfo:
        write.write_table(results_frame(), tmp_path / "no" / "r.xlsx")
    assert "Excel" in excinfo.value.message("es")


def test_write_unsupported_extension(tmp_path):
    with pytest.raises(ValueError):
        write.write_table(results_frame(), tmp_path / "r.ods")


def test_csv_text_columns_are_always_quoted_and_read_back_unchanged(tmp_path):
    frame = pd.DataFrame({"referencia": ["1025292250000330", "", "0055"], "monto": [1, 2, 3],
                          "nota": ['dice "hola"', "x", "=1"]})
    path = write.write_table(frame, tmp_path / "r.csv", text_columns=["referencia", "nota"], integer_columns=["monto"])
    lines = path.read_bytes().decode("utf-8-sig").split("\r\n")
    assert lines[1:4] == ['"1025292250000330",1,"dice ""hola"""', ',2,"x"', '"0055",3,"\'=1"']
    back = read.read_table(path)
    assert back["referencia"].tolist() == ["1025292250000330", "", "0055"]
    assert back["nota"].tolist() == ['dice "hola"', "x", "'=1"]


def test_an_integer_column_too_long_for_excel_keeps_the_text_as_typed(tmp_path):
    huge = "9" * 5000  # more digits than Excel, or even str(int), can take
    frame = pd.DataFrame({"monto": ["150000", huge, "1234567890123456"]})
    sheet = openpyxl.load_workbook(write.write_table(frame, tmp_path / "r.xlsx", integer_columns=["monto"])).active
    assert sheet["A2"].value == 150000
    assert sheet["A3"].value == huge and sheet["A3"].data_type == "s"
    assert sheet["A4"].value == "1234567890123456"  # 16 digits: a number would lose the last one


def test_csv_written_in_blocks_is_the_same_file(tmp_path, monkeypatch):
    frame = pd.concat([results_frame()] * 3, ignore_index=True)
    frame.loc[4, "nombre"] = 'coma, "comillas"'
    options = dict(text_columns=["referencia"], integer_columns=["monto", "fila"])
    whole = write.write_table(frame, tmp_path / "whole.csv", **options).read_bytes()
    monkeypatch.setattr(write, "_CSV_BLOCK_ROWS", 2)  # 9 rows: five blocks, the last one short
    assert write.write_table(frame, tmp_path / "blocks.csv", **options).read_bytes() == whole


def test_xlsx_written_in_blocks_is_the_same_workbook(tmp_path, monkeypatch):
    """Rows go to the sheet a block at a time (a million rows' columns as lists would not fit the
    memory goal); the sheets' XML is exactly the one written in one go, cell clean-up, fills,
    styles and their indices included, even when only some blocks need the clean-up."""
    frame = pd.concat([results_frame()] * 3, ignore_index=True)
    frame.loc[4, "nombre"] = "línea\r\ncon\x01control"  # only the third block of two needs _xml_safe
    options = dict(text_columns=["referencia"], integer_columns=["monto", "fila"],
                   row_fills={"invalid": "FFF4CCCC", "failed": "FFFFE0B2"}, fill_column="status")

    def parts(path):
        with zipfile.ZipFile(path) as archive:
            return {name: archive.read(name) for name in archive.namelist() if not name.startswith("docProps/")}

    whole = parts(write.write_table(frame, tmp_path / "whole.xlsx", **options))
    monkeypatch.setattr(write, "_WRITE_BLOCK_ROWS", 2)  # 9 rows: five blocks, the last one short
    assert parts(write.write_table(frame, tmp_path / "blocks.xlsx", **options)) == whole
    assert read.read_table(tmp_path / "blocks.xlsx").loc[6, "nombre"] == "línea\ncon\ufffdcontrol"


@pytest.mark.parametrize("values", [
    [2, 3, 1_000_004], [-12, 5], pd.array([None, 150000, -3], dtype="Int64"), pd.array([None, None], dtype="Int64"),
    [True, False], [1.5, 2.25, 1e20], ["a", None, 3], ["corto", "x" * 30], [],
])
def test_fitted_width_is_the_longest_cell_text(monkeypatch, values):
    """Integers measured by their least and greatest, the rest a block at a time: the same width
    as every cell's text measured at once."""
    from batch_payouts.files.cells import cell_text

    series = pd.Series(values, dtype=values.dtype if hasattr(values, "dtype") else None)
    expected = float(min(max([len("col"), *(len(cell_text(v)) for v in series.tolist())]) + 2, write.MAX_COLUMN_WIDTH))
    monkeypatch.setattr(write, "_WRITE_BLOCK_ROWS", 2)
    assert write._fitted_width("col", series) == expected
