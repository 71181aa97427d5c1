"""sheets.py: what finance staff's real files look like, and safe output."""

from __future__ import annotations

import datetime as dt
import os
import zipfile

import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_payouts.files import sheets
from batch_payouts.errors import BatchError, InputFileError

HEADER = "nombre,correo,telefono,monto\n"


def write_bytes(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def make_xlsx(path, rows, title="Hoja1", more_sheets=()):
    """An XLSX built the way Excel users produce them (cells typed as numbers, dates...)."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = title
    for row in rows:
        sheet.append(row)
    for name in more_sheets:
        workbook.create_sheet(name).append(["otra"])
    workbook.save(path)
    return path


def error_text(excinfo, lang="es"):
    return excinfo.value.message(lang)


# --------------------------------------------------------------------------- CSV


def test_csv_cells_are_text_and_index_is_the_row_number(tmp_path):
    path = write_bytes(tmp_path, "b.csv", (HEADER + "Ana,ana@x.com,5512345678,3000\nLuis,l@x.com,,150000\n").encode())
    frame = sheets.read_table(path)
    assert list(frame.columns) == ["nombre", "correo", "telefono", "monto"]
    assert list(frame.index) == [2, 3]
    assert frame.loc[2, "telefono"] == "5512345678"
    assert frame.loc[3, "telefono"] == ""
    assert all(isinstance(v, str) for v in frame.to_numpy().ravel())


def test_csv_utf8_with_bom(tmp_path):
    path = write_bytes(tmp_path, "b.csv", b"\xef\xbb\xbf" + "nombre,motivo\nJosé,Nómina\n".encode())
    frame = sheets.read_table(path)
    assert list(frame.columns) == ["nombre", "motivo"]
    assert frame.loc[2, "nombre"] == "José"


def test_csv_windows_1252_with_accents(tmp_path):
    text = "nombre;motivo\nJosé Ñúñez;Pago de nómina\nMaría Peña;Bonificación\n"
    path = write_bytes(tmp_path, "b.csv", text.encode("cp1252"))
    frame = sheets.read_table(path)
    assert frame["nombre"].tolist() == ["José Ñúñez", "María Peña"]
    assert frame.loc[2, "motivo"] == "Pago de nómina"


def test_csv_semicolon_with_decimal_commas_inside(tmp_path):
    text = 'nombre;monto;motivo\nAna;"3,000";Pago, quincena 1\nLuis;1,500;Pago\n'
    frame = sheets.read_table(write_bytes(tmp_path, "b.csv", text.encode()))
    assert list(frame.columns) == ["nombre", "monto", "motivo"]
    assert frame.loc[2, "monto"] == "3,000"
    assert frame.loc[2, "motivo"] == "Pago, quincena 1"


@pytest.mark.parametrize("name", ["b.tsv", "b.txt", "b.csv"])
def test_csv_tab_delimited(tmp_path, name):
    text = "nombre\tcorreo\tmonto\nAna López\tana@x.com\t3,000\n"
    frame = sheets.read_table(write_bytes(tmp_path, name, text.encode()))
    assert list(frame.columns) == ["nombre", "correo", "monto"]
    assert frame.loc[2, "monto"] == "3,000"


def test_csv_excel_sep_hint_line(tmp_path):
    text = "sep=;\nnombre;monto\nAna;3000\n"
    frame = sheets.read_table(write_bytes(tmp_path, "b.csv", text.encode()))
    assert list(frame.columns) == ["nombre", "monto"]
    assert frame.loc[2, "monto"] == "3000"


def test_csv_utf16_unicode_text_from_excel(tmp_path):
    text = "nombre\tmonto\r\nÁngel\t3000\r\n"
    frame = sheets.read_table(write_bytes(tmp_path, "b.txt", text.encode("utf-16")))
    assert frame.loc[2, "nombre"] == "Ángel"


def test_csv_single_column_and_header_only(tmp_path):
    one = sheets.read_table(write_bytes(tmp_path, "one.csv", b"nombre\nAna\n"))
    assert one["nombre"].tolist() == ["Ana"]
    empty = sheets.read_table(write_bytes(tmp_path, "h.csv", HEADER.encode()))
    assert len(empty) == 0
    assert list(empty.columns) == ["nombre", "correo", "telefono", "monto"]


def test_csv_blank_rows_skipped_and_row_numbers_kept(tmp_path):
    text = HEADER + "Ana,a@x.com,,3000\n,,,\n\nLuis,l@x.com,,3000\n ,  ,,\n\n\n"
    frame = sheets.read_table(write_bytes(tmp_path, "b.csv", text.encode()))
    assert list(frame.index) == [2, 5]


def test_csv_headers_stripped_and_ragged_rows_padded(tmp_path):
    text = " nombre , monto \nAna\nLuis,3000\n"
    frame = sheets.read_table(write_bytes(tmp_path, "b.csv", text.encode()))
    assert list(frame.columns) == ["nombre", "monto"]
    assert frame.loc[2, "monto"] == ""


def test_csv_blank_header_with_data_is_kept_by_letter(tmp_path):
    text = "nombre,,monto,\nAna,nota suelta,3000,\n"
    frame = sheets.read_table(write_bytes(tmp_path, "b.csv", text.encode()))
    assert list(frame.columns) == ["nombre", "(B)", "monto"]


def test_csv_duplicate_headers_are_named(tmp_path):
    path = write_bytes(tmp_path, "b.csv", b"nombre,monto,Monto,monto\nAna,1,2,3\n")
    with pytest.raises(InputFileError) as excinfo:
        sheets.read_table(path)
    message = error_text(excinfo)
    assert "«monto» (B, D)" in message
    assert "repeated headers" in error_text(excinfo, "en")


@pytest.mark.parametrize("data", [b"", b"   \r\n\r\n", b",,,\n"])
def test_empty_file_is_an_error(tmp_path, data):
    with pytest.raises(InputFileError) as excinfo:
        sheets.read_table(write_bytes(tmp_path, "b.csv", data))
    assert "vacío" in error_text(excinfo)
    assert "empty" in error_text(excinfo, "en")


def test_undecodable_bytes(tmp_path):
    path = write_bytes(tmp_path, "b.csv", b"nombre\n\x81\x8d\x90\xc3\n")
    with pytest.raises(InputFileError) as excinfo:
        sheets.read_table(path)
    assert "UTF-8" in error_text(excinfo)


def test_binary_file_with_csv_name(tmp_path):
    with pytest.raises(InputFileError):
        sheets.read_table(write_bytes(tmp_path, "b.csv", b"nombre\x00\x00\x01\x02"))


def test_xlsx_saved_with_csv_extension(tmp_path):
    real = make_xlsx(tmp_path / "real.xlsx", [["nombre"], ["Ana"]])
    path = write_bytes(tmp_path, "b.csv", real.read_bytes())
    with pytest.raises(InputFileError) as excinfo:
        sheets.read_table(path)
    assert ".xlsx" in error_text(excinfo)


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError) as excinfo:
        sheets.read_table(tmp_path / "no-existe.xlsx")
    assert "no-existe.xlsx" in error_text(excinfo)
    assert "not found" in error_text(excinfo, "en")


def test_folder_instead_of_file(tmp_path):
    folder = tmp_path / "carpeta.csv"
    folder.mkdir()
    with pytest.raises(InputFileError):
        sheets.read_table(folder)


@pytest.mark.parametrize("name", ["b.xls", "b.pdf", "b.ods", "b"])
def test_wrong_extension(tmp_path, name):
    with pytest.raises(InputFileError) as excinfo:
        sheets.read_table(write_bytes(tmp_path, name, b"nombre\nAna\n"))
    assert ".xlsx" in error_text(excinfo)


# --------------------------------------------------------------------------- XLSX


def test_xlsx_cells_become_text_without_float_noise(tmp_path):
    path = make_xlsx(
        tmp_path / "b.xlsx",
        [
            ["nombre", "telefono", "monto", "ref", "codigo", "grande", "fraccion", "fecha", "hora", "activo"],
            ["Ana", 5512345678, 3000.0, 1025292250000330, "0055", 1e20, 30.1,
             dt.date(2025, 1, 31), dt.datetime(2025, 1, 31, 10, 30), True],
        ],
    )
    row = sheets.read_table(path).loc[2]
    assert row["telefono"] == "5512345678"
    assert row["monto"] == "3000"
    assert row["ref"] == "1025292250000330"
    assert row["codigo"] == "0055"
    assert row["grande"] == "100000000000000000000"
    assert row["fraccion"] == "30.1"
    assert row["fecha"] == "2025-01-31"
    assert row["hora"] == "2025-01-31T10:30:00"
    assert row["activo"] == "TRUE"


def test_xlsx_blank_rows_and_offset_header(tmp_path):
    path = tmp_path / "b.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet["B3"] = "nombre"
    sheet["C3"] = "monto"
    sheet["B4"] = "Ana"
    sheet["C4"] = 3000
    sheet["B6"] = "Luis"
    sheet["C6"] = 150000
    sheet["B9"] = "   "  # trailing rows that only look empty
    sheet["C12"] = ""
    workbook.save(path)
    frame = sheets.read_table(path)
    assert list(frame.columns) == ["nombre", "monto"]
    assert list(frame.index) == [4, 6]
    assert frame["monto"].tolist() == ["3000", "150000"]


def test_xlsx_header_only(tmp_path):
    frame = sheets.read_table(make_xlsx(tmp_path / "b.xlsx", [["nombre", "correo"]]))
    assert len(frame) == 0 and list(frame.columns) == ["nombre", "correo"]


def test_xlsx_empty_workbook(tmp_path):
    with pytest.raises(InputFileError):
        sheets.read_table(make_xlsx(tmp_path / "b.xlsx", []))


def test_xlsx_sheet_selection(tmp_path):
    path = make_xlsx(tmp_path / "b.xlsm", [["nombre"], ["Ana"]], title="Pagos", more_sheets=["Marzo"])
    assert sheets.read_table(path).loc[2, "nombre"] == "Ana"
    assert list(sheets.read_table(path, sheet="Marzo").columns) == ["otra"]
    assert list(sheets.read_table(path, sheet="marzo ").columns) == ["otra"]
    with pytest.raises(InputFileError) as excinfo:
        sheets.read_table(path, sheet="Abril")
    assert "«Abril»" in error_text(excinfo) and "«Pagos», «Marzo»" in error_text(excinfo)


def test_xlsx_duplicate_headers(tmp_path):
    path = make_xlsx(tmp_path / "b.xlsx", [["correo", "nombre", "correo"], ["a", "b", "c"]])
    with pytest.raises(InputFileError) as excinfo:
        sheets.read_table(path)
    assert "«correo» (A, C)" in error_text(excinfo)


def test_xlsx_corrupt_and_truncated(tmp_path):
    good = make_xlsx(tmp_path / "good.xlsx", [["nombre"], ["Ana"]]).read_bytes()
    for cut in (10, len(good) // 3, len(good) // 2, len(good) - 20):
        with pytest.raises(InputFileError) as excinfo:
            sheets.read_table(write_bytes(tmp_path, f"cut{cut}.xlsx", good[:cut]))
        assert "Excel" in error_text(excinfo)
    with pytest.raises(InputFileError):
        sheets.read_table(write_bytes(tmp_path, "text.xlsx", b"nombre,monto\nAna,3000\n"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2048), extension=st.sampled_from([".csv", ".txt", ".tsv", ".xlsx", ".xlsm"]))
def test_random_bytes_never_escape_as_a_traceback(tmp_path, data, extension):
    path = write_bytes(tmp_path, "fuzz" + extension, data)
    try:
        frame = sheets.read_table(path)
    except InputFileError as error:
        assert error.message("es") and error.message("en")
    else:
        assert isinstance(frame, pd.DataFrame)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=4000), flip=st.integers(min_value=0, max_value=4000))
def test_damaged_xlsx_never_escapes_as_a_traceback(tmp_path, cut, flip):
    good = make_xlsx(tmp_path / "good.xlsx", [["nombre", "monto"], ["Ana", 3000], ["Luis", 150000]]).read_bytes()
    damaged = bytearray(good[: max(cut, 1)] if cut < len(good) else good)
    damaged[flip % len(damaged)] ^= 0xFF
    try:
        sheets.read_table(write_bytes(tmp_path, "damaged.xlsx", bytes(damaged)))
    except InputFileError:
        pass


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("  x ", "  x "),
        (3000.0, "3000"),
        (-0.0, "0"),
        (5512345678.0, "5512345678"),
        (0.1 + 0.2, "0.3"),
        (1e-7, "0.0000001"),
        (1.2345678901234567e18, "1234567890123460000"),
        (12, "12"),
        (float("nan"), ""),
        (False, "FALSE"),
        (dt.date(2030, 5, 1), "2030-05-01"),
        (dt.datetime(2030, 5, 1, 8, 0, 5), "2030-05-01T08:00:05"),
        (dt.time(8, 30), "08:30:00"),
        ({"b": 1, "a": "ñ"}, '{"a": "ñ", "b": 1}'),
        (pd.NA, ""),
    ],
)
def test_cell_text(value, text):
    assert sheets.cell_text(value) == text


# --------------------------------------------------------------------------- writing

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
    path = sheets.write_table(
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
    assert sheet.column_dimensions["F"].width == sheets.MAX_COLUMN_WIDTH
    assert 10 <= sheet.column_dimensions["B"].width < 20


def test_xlsx_output_never_holds_formulas(tmp_path):
    frame = pd.DataFrame({"texto": DANGEROUS, "status": ["invalid"] * len(DANGEROUS)})
    path = sheets.write_table(frame, tmp_path / "r.xlsx", text_columns=["texto"], extra_sheets={"Otra": frame})
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
    sheet = openpyxl.load_workbook(sheets.write_table(frame, tmp_path / "r.xlsx")).active
    assert [sheet.cell(row=r, column=1).data_type for r in (2, 3, 4)] == ["s", "s", "s"]
    assert sheet["B2"].value == 1.5 and sheet["B4"].value is None


def test_csv_output_is_formula_safe_with_bom(tmp_path):
    frame = pd.DataFrame({"texto": DANGEROUS, "monto": pd.array([100, None, 3, 4, 5, 6], dtype="Int64")})
    path = sheets.write_table(frame, tmp_path / "r.csv", integer_columns=["monto"])
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    lines = text.split("\r\n")
    assert lines[0] == "texto,monto"
    assert lines[1] == "\"'=HYPERLINK(\"\"http://x\"\")\",100"
    assert lines[2] == "'+52 55,"
    assert lines[3].startswith("'-150,")
    assert lines[4].startswith("'@SUM(A1)")
    back = sheets.read_table(path)
    assert all(value.startswith("'") for value in back["texto"])


def test_roundtrip_xlsx(tmp_path):
    frame = pd.DataFrame({"nombre": ["José", "Ana"], "telefono": ["0055123456", "5512345678"], "monto": ["3000", ""]})
    path = sheets.write_table(frame, tmp_path / "r.xlsx", text_columns=["telefono"], integer_columns=["monto"])
    back = sheets.read_table(path)
    assert back.to_dict("list") == frame.to_dict("list")


def test_extra_sheets(tmp_path):
    path = sheets.write_table(
        pd.DataFrame({"a": [1]}), tmp_path / "r.xlsx", sheet_name="Datos", extra_sheets={"Resumen": pd.DataFrame({"total": [1]})}
    )
    assert openpyxl.load_workbook(path).sheetnames == ["Datos", "Resumen"]


def test_illegal_characters_are_replaced(tmp_path):
    frame = pd.DataFrame({"a": ["bell\x07here"]})
    sheet = openpyxl.load_workbook(sheets.write_table(frame, tmp_path / "r.xlsx")).active
    assert sheet["A2"].value == "bell\ufffdhere"


@pytest.mark.parametrize("name", ["r.xlsx", "r.csv"])
def test_atomic_write_leaves_no_temp_file(tmp_path, name):
    sheets.write_table(results_frame(), tmp_path / name)
    sheets.write_table(results_frame(), tmp_path / name)  # replacing works too
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_written_file_has_normal_permissions(tmp_path):
    path = sheets.write_table(results_frame(), tmp_path / "r.csv")
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

    monkeypatch.setattr(sheets, "_write_xlsx" if name.endswith("xlsx") else "_write_csv", broken)
    with pytest.raises(RuntimeError):
        sheets.write_table(results_frame(), target)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_write_to_missing_folder_is_explained(tmp_path):
    with pytest.raises(BatchError) as excinfo:
        sheets.write_table(results_frame(), tmp_path / "no" / "r.xlsx")
    assert "Excel" in excinfo.value.message("es")


def test_write_unsupported_extension(tmp_path):
    with pytest.raises(ValueError):
        sheets.write_table(results_frame(), tmp_path / "r.ods")


def test_nul_bytes_are_called_a_non_text_file(tmp_path):
    path = tmp_path / "raro.csv"
    path.write_bytes(b"nombre,correo\x00,monto\n")
    with pytest.raises(InputFileError) as info:
        sheets.read_table(path)
    assert "nulos" in info.value.message("es") and "NUL" in info.value.message("en")
