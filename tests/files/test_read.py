"""read.py: what finance staff's real files look like, read as text without losing anything."""

from __future__ import annotations

import datetime as dt

import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_payouts.errors import InputFileError
from batch_payouts.files import read
from conftest import write_workbook

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
    frame = read.read_table(path)
    assert list(frame.columns) == ["nombre", "correo", "telefono", "monto"]
    assert list(frame.index) == [2, 3]
    assert frame.loc[2, "telefono"] == "5512345678"
    assert frame.loc[3, "telefono"] == ""
    assert all(isinstance(v, str) for v in frame.to_numpy().ravel())


def test_csv_utf8_with_bom(tmp_path):
    path = write_bytes(tmp_path, "b.csv", b"\xef\xbb\xbf" + "nombre,motivo\nJosé,Nómina\n".encode())
    frame = read.read_table(path)
    assert list(frame.columns) == ["nombre", "motivo"]
    assert frame.loc[2, "nombre"] == "José"


def test_csv_windows_1252_with_accents(tmp_path):
    text = "nombre;motivo\nJosé Ñúñez;Pago de nómina\nMaría Peña;Bonificación\n"
    path = write_bytes(tmp_path, "b.csv", text.encode("cp1252"))
    frame = read.read_table(path)
    assert frame["nombre"].tolist() == ["José Ñúñez", "María Peña"]
    assert frame.loc[2, "motivo"] == "Pago de nómina"


def test_csv_semicolon_with_decimal_commas_inside(tmp_path):
    text = 'nombre;monto;motivo\nAna;"3,000";Pago, quincena 1\nLuis;1,500;Pago\n'
    frame = read.read_table(write_bytes(tmp_path, "b.csv", text.encode()))
    assert list(frame.columns) == ["nombre", "monto", "motivo"]
    assert frame.loc[2, "monto"] == "3,000"
    assert frame.loc[2, "motivo"] == "Pago, quincena 1"


@pytest.mark.parametrize("name", ["b.tsv", "b.txt", "b.csv"])
def test_csv_tab_delimited(tmp_path, name):
    text = "nombre\tcorreo\tmonto\nAna López\tana@x.com\t3,000\n"
    frame = read.read_table(write_bytes(tmp_path, name, text.encode()))
    assert list(frame.columns) == ["nombre", "correo", "monto"]
    assert frame.loc[2, "monto"] == "3,000"


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        pytest.param("sep=;\nnombre;monto\nAna;3000\n", "3000", id="excel_sep_hint_line"),
        pytest.param(" nombre , monto \nAna\nLuis,3000\n", "", id="headers_stripped_and_ragged_rows_padded"),
    ],
)
def test_csv_columns_and_first_row(tmp_path, text, amount):
    frame = read.read_table(write_bytes(tmp_path, "b.csv", text.encode()))
    assert list(frame.columns) == ["nombre", "monto"]
    assert frame.loc[2, "monto"] == amount


def test_csv_utf16_unicode_text_from_excel(tmp_path):
    text = "nombre\tmonto\r\nÁngel\t3000\r\n"
    frame = read.read_table(write_bytes(tmp_path, "b.txt", text.encode("utf-16")))
    assert frame.loc[2, "nombre"] == "Ángel"


def test_csv_single_column_and_header_only(tmp_path):
    one = read.read_table(write_bytes(tmp_path, "one.csv", b"nombre\nAna\n"))
    assert one["nombre"].tolist() == ["Ana"]
    empty = read.read_table(write_bytes(tmp_path, "h.csv", HEADER.encode()))
    assert len(empty) == 0
    assert list(empty.columns) == ["nombre", "correo", "telefono", "monto"]


def test_csv_blank_rows_skipped_and_row_numbers_kept(tmp_path):
    text = HEADER + "Ana,a@x.com,,3000\n,,,\n\nLuis,l@x.com,,3000\n ,  ,,\n\n\n"
    frame = read.read_table(write_bytes(tmp_path, "b.csv", text.encode()))
    assert list(frame.index) == [2, 5]


def test_csv_blank_header_with_data_is_kept_by_letter(tmp_path):
    text = "nombre,,monto,\nAna,nota suelta,3000,\n"
    frame = read.read_table(write_bytes(tmp_path, "b.csv", text.encode()))
    assert list(frame.columns) == ["nombre", "(B)", "monto"]


def test_csv_duplicate_headers_are_named(tmp_path):
    path = write_bytes(tmp_path, "b.csv", b"nombre,monto,Monto,monto\nAna,1,2,3\n")
    with pytest.raises(InputFileError) as excinfo:
        read.read_table(path)
    message = error_text(excinfo)
    assert "«monto» (B, D)" in message
    assert "repeated headers" in error_text(excinfo, "en")


@pytest.mark.parametrize("data", [b"", b"   \r\n\r\n", b",,,\n"])
def test_empty_file_is_an_error(tmp_path, data):
    with pytest.raises(InputFileError) as excinfo:
        read.read_table(write_bytes(tmp_path, "b.csv", data))
    assert "vacío" in error_text(excinfo)
    assert "empty" in error_text(excinfo, "en")


def test_undecodable_bytes(tmp_path):
    path = write_bytes(tmp_path, "b.csv", b"nombre\n\x81\x8d\x90\xc3\n")
    with pytest.raises(InputFileError) as excinfo:
        read.read_table(path)
    assert "UTF-8" in error_text(excinfo)


def test_binary_file_with_csv_name(tmp_path):
    with pytest.raises(InputFileError):
        read.read_table(write_bytes(tmp_path, "b.csv", b"nombre\x00\x00\x01\x02"))


def test_xlsx_saved_with_csv_extension(tmp_path):
    real = make_xlsx(tmp_path / "real.xlsx", [["nombre"], ["Ana"]])
    path = write_bytes(tmp_path, "b.csv", real.read_bytes())
    with pytest.raises(InputFileError) as excinfo:
        read.read_table(path)
    assert ".xlsx" in error_text(excinfo)


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError) as excinfo:
        read.read_table(tmp_path / "no-existe.xlsx")
    assert "no-existe.xlsx" in error_text(excinfo)
    assert "not found" in error_text(excinfo, "en")


def test_folder_instead_of_file(tmp_path):
    folder = tmp_path / "carpeta.csv"
    folder.mkdir()
    with pytest.raises(InputFileError):
        read.read_table(folder)


@pytest.mark.parametrize("name", ["b.xls", "b.pdf", "b.ods", "b"])
def test_wrong_extension(tmp_path, name):
    with pytest.raises(InputFileError) as excinfo:
        read.read_table(write_bytes(tmp_path, name, b"nombre\nAna\n"))
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
    row = read.read_table(path).loc[2]
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
    frame = read.read_table(path)
    assert list(frame.columns) == ["nombre", "monto"]
    assert list(frame.index) == [4, 6]
    assert frame["monto"].tolist() == ["3000", "150000"]


def test_xlsx_header_only(tmp_path):
    frame = read.read_table(make_xlsx(tmp_path / "b.xlsx", [["nombre", "correo"]]))
    assert len(frame) == 0 and list(frame.columns) == ["nombre", "correo"]


def test_xlsx_empty_workbook(tmp_path):
    with pytest.raises(InputFileError):
        read.read_table(make_xlsx(tmp_path / "b.xlsx", []))


def test_xlsx_sheet_selection(tmp_path):
    path = make_xlsx(tmp_path / "b.xlsm", [["nombre"], ["Ana"]], title="Pagos", more_sheets=["Marzo"])
    assert read.read_table(path).loc[2, "nombre"] == "Ana"
    assert list(read.read_table(path, sheet="Marzo").columns) == ["otra"]
    assert list(read.read_table(path, sheet="marzo ").columns) == ["otra"]
    with pytest.raises(InputFileError) as excinfo:
        read.read_table(path, sheet="Abril")
    assert "«Abril»" in error_text(excinfo) and "«Pagos», «Marzo»" in error_text(excinfo)


def test_xlsx_duplicate_headers(tmp_path):
    path = make_xlsx(tmp_path / "b.xlsx", [["correo", "nombre", "correo"], ["a", "b", "c"]])
    with pytest.raises(InputFileError) as excinfo:
        read.read_table(path)
    assert "«correo» (A, C)" in error_text(excinfo)


def test_xlsx_corrupt_and_truncated(tmp_path):
    good = make_xlsx(tmp_path / "good.xlsx", [["nombre"], ["Ana"]]).read_bytes()
    for cut in (10, len(good) // 3, len(good) // 2, len(good) - 20):
        with pytest.raises(InputFileError) as excinfo:
            read.read_table(write_bytes(tmp_path, f"cut{cut}.xlsx", good[:cut]))
        assert "Excel" in error_text(excinfo)
    with pytest.raises(InputFileError):
        read.read_table(write_bytes(tmp_path, "text.xlsx", b"nombre,monto\nAna,3000\n"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2048), extension=st.sampled_from([".csv", ".txt", ".tsv", ".xlsx", ".xlsm"]))
def test_random_bytes_never_escape_as_a_traceback(tmp_path, data, extension):
    path = write_bytes(tmp_path, "fuzz" + extension, data)
    try:
        frame = read.read_table(path)
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
        read.read_table(write_bytes(tmp_path, "damaged.xlsx", bytes(damaged)))
    except InputFileError:
        pass


def test_nul_bytes_are_called_a_non_text_file(tmp_path):
    path = tmp_path / "raro.csv"
    path.write_bytes(b"nombre,correo\x00,monto\n")
    with pytest.raises(InputFileError) as info:
        read.read_table(path)
    assert "nulos" in info.value.message("es") and "NUL" in info.value.message("en")


# --------------------------------------------------------------------------- which sheet of a workbook


PAYMENTS = [["nombre", "monto"], ["Ana", 3000]]


@pytest.mark.parametrize("state", ["hidden", "veryHidden"])
def test_a_hidden_first_sheet_is_skipped(tmp_path, state):
    path = write_workbook(tmp_path / "b.xlsx", [("Catálogo", [["clave", "valor"], ["x", 1]], state),
                                           ("Pagos", PAYMENTS, "visible")])
    frame = read.read_table(path)
    assert list(frame.columns) == ["nombre", "monto"] and frame.loc[2, "nombre"] == "Ana"
    assert frame.attrs == {"sheet": "Pagos", "sheets": ["Catálogo", "Pagos"], "letters": {"nombre": "A", "monto": "B"},
                           "header_row": 1}  # where the amount's cell formats are (files/formats.py)
    # Named explicitly, a hidden sheet is still read: the user asked for it.
    assert list(read.read_table(path, sheet="Catálogo").columns) == ["clave", "valor"]


def test_an_empty_first_sheet_is_skipped(tmp_path):
    path = write_workbook(tmp_path / "b.xlsx", [("Portada", [], "visible"), ("Blanca", [["  ", None]], "visible"),
                                           ("Marzo", PAYMENTS, "visible")])
    frame = read.read_table(path)
    assert frame.attrs["sheet"] == "Marzo" and frame["monto"].tolist() == ["3000"]


def test_no_visible_sheet_with_data_names_the_sheets_and_the_hidden_ones(tmp_path):
    path = write_workbook(tmp_path / "b.xlsx", [("Portada", [], "visible"), ("Datos", PAYMENTS, "hidden")])
    with pytest.raises(InputFileError) as excinfo:
        read.read_table(path)
    assert "«Portada»" in error_text(excinfo) and "«Datos»" in error_text(excinfo)
    assert "--sheet" in error_text(excinfo) and "Unhide" in error_text(excinfo, "en")
    empty = write_workbook(tmp_path / "e.xlsx", [("Hoja1", [], "visible"), ("Hoja2", [], "visible")])
    with pytest.raises(InputFileError) as excinfo:
        read.read_table(empty)
    assert "ninguna hoja visible («Hoja1», «Hoja2»)" in error_text(excinfo)


def test_errors_about_a_sheets_content_name_the_sheet_and_suggest_sheet(tmp_path):
    path = write_workbook(tmp_path / "b.xlsx", [("Notas", [["texto"], ["hola"]], "hidden"),
                                           ("Pagos", [["correo", "nombre", "correo"], ["a", "b", "c"]], "visible")])
    with pytest.raises(read.SheetContentError) as excinfo:
        read.read_table(path)
    assert isinstance(excinfo.value, InputFileError) and excinfo.value.exit_code == 2
    assert "«correo» (A, C)" in error_text(excinfo)
    assert "Hoja leída: «Pagos»" in error_text(excinfo) and "«Notas», «Pagos»" in error_text(excinfo)
    assert "--sheet" in error_text(excinfo) and "Sheet read: «Pagos»" in error_text(excinfo, "en")
    blank = write_workbook(tmp_path / "c.xlsx", [("Pagos", PAYMENTS, "visible"), ("Abril", [], "visible")])
    with pytest.raises(InputFileError) as excinfo:
        read.read_table(blank, sheet="Abril")
    assert "vacío" in error_text(excinfo) and "Hoja leída: «Abril»" in error_text(excinfo)


def test_in_sheet_leaves_csv_errors_alone(tmp_path):
    frame = read.read_table(write_bytes(tmp_path, "b.csv", HEADER.encode()))
    error = InputFileError(read.TEXT.EMPTY_FILE, path="b.csv")
    assert frame.attrs == {} and read.in_sheet(error, frame.attrs) is error


@pytest.mark.parametrize("block_rows", [65_536, 3, 1])
def test_xlsx_read_in_blocks_is_the_whole_sheet_from_a1(tmp_path, monkeypatch, block_rows):
    """Row by row, in blocks, the cells are exactly calamine's whole sheet from A1 (empty area
    included), whatever the layout: data away from A1, ragged rows, numbers, an empty sheet."""
    import xlsxwriter
    from python_calamine import CalamineWorkbook

    from batch_payouts.files.cells import cell_text

    path = tmp_path / "odd.xlsx"
    book = xlsxwriter.Workbook(str(path))
    far, book_empty, ragged = book.add_worksheet("far"), book.add_worksheet("empty"), book.add_worksheet("ragged")
    far.write(0, 0, "x")
    far.write(40, 7, "far")
    for r in range(30):
        ragged.write(r + 4, r % 5 + 1, f"v{r}" if r % 3 else r * 1.5)
    book.close()
    monkeypatch.setattr(read, "_XLSX_BLOCK_ROWS", block_rows)
    workbook = CalamineWorkbook.from_path(str(path))
    for name in workbook.sheet_names:
        whole = workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
        expected = read._rows_to_columns([[v if type(v) is str else cell_text(v) for v in row] for row in whole])
        got = read._sheet_columns(workbook, name)
        assert [c.tolist() for c in got] == [c.tolist() for c in expected], name


@pytest.mark.parametrize("block_bytes", [8 << 20, 64, 7])
def test_amount_cell_formats_are_counted_the_same_in_small_blocks(tmp_path, monkeypatch, block_bytes):
    """The sheet's XML is scanned a block at a time: no cell is missed or counted twice at a cut."""
    import xlsxwriter

    from batch_payouts.files import formats

    path = tmp_path / "money.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Pagos")
    money = book.add_format({"num_format": "$#,##0.00"})
    sheet.write_row(0, 0, ["nombre", "correo", "telefono", "monto"])
    for row in range(1, 60):
        sheet.write_number(row, 3, 1500 + row, money if row % 4 else None)
        sheet.write_string(row, 0, f"Persona {row}")
    book.close()
    monkeypatch.setattr(formats, "_XML_BLOCK_BYTES", block_bytes)
    found = formats.column_formats(path, "Pagos", "D", 2)
    assert (found.money, found.plain) == (45, 14)


@pytest.mark.parametrize("block_rows", [65_536, 8])
def test_xlsx_texts_repeated_in_a_column_are_held_once(tmp_path, monkeypatch, block_rows):
    """A million "MXN" are one str, not a million (issue 17: half of a large table's memory);
    mostly unique columns are left as they are, and the cells do not change either way."""
    rows = [["nombre", "moneda", "monto"]] + [[f"Persona {n}", "MXN" if n % 5 else "USD", 3000 + n % 2]
                                              for n in range(40)]
    path = make_xlsx(tmp_path / "b.xlsx", rows)
    monkeypatch.setattr(read, "_XLSX_BLOCK_ROWS", block_rows)
    frame = read.read_table(path)
    currencies = frame["moneda"].tolist()
    assert currencies == [row[1] for row in rows[1:]]
    assert len({id(text) for text in currencies}) == 2
    assert len({id(text) for text in frame["monto"].tolist()}) == 2
    assert frame["nombre"].tolist() == [row[0] for row in rows[1:]]
