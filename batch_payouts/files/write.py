"""Writing sheets people can open safely: CSV and XLSX results, atomically.

Promises of ``write_table``:

* text never turns into a formula (CSV/formula injection): string cells in
  XLSX, a leading ``'`` in CSV;
* references, phones and ids stay text (XLSX text cells formatted ``@``) and
  amounts whole numbers, so Excel neither rounds a 16-digit reference to 15
  significant digits nor drops a phone's leading zero;
* the file appears all at once or not at all (a temp file in the same folder
  plus ``os.replace``, see ``atomic``), so a crash never leaves half a
  results sheet behind.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pandas as pd

from batch_payouts.files.amounts import MONEY_FORMAT, money_number, money_text
from batch_payouts.files.atomic import atomic_write
from batch_payouts.files.cells import (
    FORMULA_PREFIXES,
    cell_text,
    flagged_positions,
    is_formula_like,
    joined_cells,
)

MAX_COLUMN_WIDTH = 60
_XLSX_MAX_CELL_CHARS = 32_767
_EXCEL_EXACT_INTEGERS = 10**15  # Excel keeps 15 significant digits
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.0*)?")


def write_table(
    frame: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    text_columns: Iterable[str] = (),
    integer_columns: Iterable[str] = (),
    row_fills: Mapping[str, str] | None = None,
    fill_column: str = "status",
    sheet_name: str = "Resultados",
    extra_sheets: Mapping[str, pd.DataFrame | TypedSheet] | None = None,
    money_columns: Iterable[str] = (),
) -> Path:
    """Write ``frame`` to ``.csv`` (UTF-8 with BOM, comma) or ``.xlsx``.

    XLSX: bold frozen header, autofilter, fitted widths (capped at
    ``MAX_COLUMN_WIDTH``), rows whose ``fill_column`` value is a key of
    ``row_fills`` (``{"invalid": "FFF4CCCC"}``) filled with that ARGB colour,
    ``text_columns`` stored as text (format ``@``), ``integer_columns`` as whole
    numbers (empty stays empty), ``money_columns`` (pesos) as numbers formatted
    ``MONEY_FORMAT`` so Excel sums them (two decimals, no symbol, in CSV).
    ``extra_sheets`` (name -> frame, or a ``TypedSheet``) follow the main sheet
    in the same style; CSV holds one table, so they are skipped there.
    In CSV, ``text_columns``' cells are always in quotes: a CSV cannot type a
    cell, and a quoted field is what import tools read as text (Excel still
    turns long digit runs into numbers on opening: the CLI warns about that).

    Strings starting with ``= + - @``, tab or CR are never formulas: string
    cells in XLSX, a leading ``'`` in CSV.  The file is written to a temporary
    file in the same folder and moved into place, so the previous file survives
    any failure.  OS failures (e.g. the file is open in Excel on Windows) raise
    ``BatchError`` with an explanation.  The frame's index is not written.
    """
    target = Path(path)
    ext = target.suffix.lower()
    if ext not in (".csv", ".xlsx"):
        # .xlsm would need the macro project openpyxl does not write.
        raise ValueError(f"write_table: unsupported extension {target.suffix!r} (use .csv or .xlsx)")
    sheets = [
        _SheetSpec(sheet_name, frame, frozenset(text_columns), frozenset(integer_columns), dict(row_fills or {}), fill_column,
                   frozenset(money_columns))
    ]
    for name, extra in (extra_sheets or {}).items():
        if isinstance(extra, TypedSheet):
            sheets.append(_SheetSpec(name, extra.frame, integer_columns=frozenset(extra.integer_columns),
                                     money_columns=frozenset(extra.money_columns)))
        else:
            sheets.append(_SheetSpec(name, extra))

    def write(temp: Path) -> None:
        if ext == ".csv":
            _write_csv(sheets[0], temp)
        else:
            _write_xlsx(sheets, temp)

    atomic_write(target, write)
    return target


@dataclass
class _SheetSpec:
    """One sheet to write and how to type its columns."""

    name: str
    frame: pd.DataFrame
    text_columns: frozenset[str] = frozenset()
    integer_columns: frozenset[str] = frozenset()
    row_fills: Mapping[str, str] = field(default_factory=dict)
    fill_column: str = "status"
    money_columns: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TypedSheet:
    """An extra sheet whose counts and amounts must stay numbers (the "Resumen"), not text."""

    frame: pd.DataFrame
    integer_columns: tuple[str, ...] = ()
    money_columns: tuple[str, ...] = ()


def _write_csv(spec: _SheetSpec, temp: Path) -> None:
    header = [_csv_cell(str(name)) for name in spec.frame.columns]

    # Column by column, each column's cells checked in one scan of its joined
    # text (see ``flagged_positions``): per-cell Python calls were most of the
    # time of a 100,000-row sheet.
    def block(start: int, stop: int | None) -> list[tuple[list, bool]]:
        """Rows ``start:stop`` as (cells, integer column?) per column."""
        columns = []
        for i, name in enumerate(spec.frame.columns):
            values = spec.frame.iloc[start:stop, i].tolist()
            if name in spec.money_columns:  # pesos as plain two-decimal figures ("1500.50"): what an importer reads as a number
                values = [money_text(v) for v in values]
            columns.append((values, name in spec.integer_columns))
        return columns

    with open(temp, "w", encoding="utf-8-sig", newline="") as out:
        if len(header) < 2:
            # The csv module quotes a row that is one empty field; keep it for such sheets.
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow(header)
            writer.writerows(zip(*(_csv_column(values, integer)[0] for values, integer in block(0, None))))
            return
        # What csv.writer (QUOTE_MINIMAL, doublequote, "\r\n") writes for rows
        # of two or more text fields, built by joins, a block of rows at a time: the
        # lines of a million rows at once would hold the whole file in memory twice.
        out.write(",".join(_csv_quoted(header)) + "\r\n")
        for start in range(0, len(spec.frame), _CSV_BLOCK_ROWS):
            fields = [
                _csv_always_quoted(_csv_column(values, False)[0]) if name in spec.text_columns
                else _csv_fields(values, integer)
                for (values, integer), name in zip(block(start, start + _CSV_BLOCK_ROWS), spec.frame.columns)
            ]
            out.write("\r\n".join(map(",".join, zip(*fields))))
            out.write("\r\n")


_CSV_BLOCK_ROWS = 50_000
# Cells csv.writer puts in quotes (QUOTE_MINIMAL): the delimiter, the quote
# character, or a line-ending character.
_CSV_QUOTE_CHARACTERS = (",", '"', "\r", "\n")
_CSV_NEEDS_QUOTES = re.compile(r'[,"\r\n]')
_CSV_FORMULA_START = re.compile(r"\x00[=+\-@\t\r]")  # FORMULA_PREFIXES right after a cell's NUL
# Not what _integer_or_text prints unchanged: a non-digit, an empty cell, or a leading zero.
_CSV_NOT_CANONICAL = re.compile(r"[^0-9\x00]|\x00(?=0[^\x00]|\x00)")


def _csv_fields(values: list, integer: bool) -> list[str]:
    """A column's cells exactly as csv.writer (QUOTE_MINIMAL) writes them in a
    row of two or more fields: ``_csv_column``, then quotes where needed."""
    cells, joined = _csv_column(values, integer)
    return _csv_quoted(cells, joined)


def _csv_quoted(cells: list[str], joined: str | None = None) -> list[str]:
    """Text cells in quotes, inner quotes doubled, where csv.writer quotes them."""
    if joined is None:
        joined = joined_cells(cells)
    if not any(character in joined for character in _CSV_QUOTE_CHARACTERS):
        return cells
    quoted = list(cells)
    for position in flagged_positions(_CSV_NEEDS_QUOTES, cells, joined):
        quoted[position] = '"' + cells[position].replace('"', '""') + '"'
    return quoted


def _csv_always_quoted(cells: list[str]) -> list[str]:
    """A text column's cells each in quotes (inner quotes doubled), empty cells left empty."""
    if '"' in joined_cells(cells):
        return ['"' + cell.replace('"', '""') + '"' if cell else cell for cell in cells]
    return [f'"{cell}"' if cell else cell for cell in cells]  # the usual column: no quote inside


def _csv_column(values: list, integer: bool) -> tuple[list[str], str | None]:
    """A column's cells as the CSV shows them (formula-like text behind a
    quote, integer columns as whole numbers; every cell a str), and their
    ``joined_cells`` when it is already at hand."""
    try:
        joined = joined_cells(values)
    except TypeError:  # not all text: cell by cell
        joined = None
    if joined is None:
        if integer and set(map(type, values)) == {int}:
            return list(map(str, values)), None
        if integer:
            return [
                v if type(v) is str and _is_canonical_digits(v)
                else str(v) if type(v) is int
                else _csv_cell(_integer_or_text(v))
                for v in values
            ], None
        return [
            ("'" + v if v.startswith(FORMULA_PREFIXES) else v) if type(v) is str else _csv_cell(v)
            for v in values
        ], None
    # Every cell is text (a str subclass prints the same through either path).
    if integer:
        digits = joined.replace("\x00", "")
        if digits.isascii() and digits.isdigit() and "\x00\x00" not in joined and "\x000" not in joined:
            return values, joined  # every cell already a whole number as _integer_or_text prints it
        pattern, fix = _CSV_NOT_CANONICAL, lambda v: _csv_cell(_integer_or_text(v))
    else:
        # Single-character searches are fast; the regex (a prefix right after
        # a NUL) runs only when one of the characters occurs at all.
        if not any(prefix in joined for prefix in FORMULA_PREFIXES):
            return values, joined
        pattern, fix = _CSV_FORMULA_START, lambda v: "'" + v if v.startswith(FORMULA_PREFIXES) else v
    cells = list(values)
    for position in flagged_positions(pattern, values, joined):
        cells[position] = fix(values[position])
    return cells, None


def _is_canonical_digits(text: str) -> bool:
    """"150000" is already what ``_integer_or_text`` would print ("0012" is not)."""
    return text.isascii() and text.isdigit() and (text[0] != "0" or text == "0")


def _csv_cell(value: object) -> str:
    if isinstance(value, str):
        return "'" + value if is_formula_like(value) else value
    return cell_text(value)


def _integer_or_text(value: object) -> object:
    """An integer column's value: ``int`` when it is a whole number, ``None``
    when empty, and unchanged (text) otherwise, so nothing is silently lost."""
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()  # numpy scalar -> Python
    if value is None or _is_missing(value):
        return None
    if isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, str):
        digits = value.strip().replace(",", "")
        if not digits:
            return None
        if _WHOLE_NUMBER.fullmatch(digits):
            return int(Decimal(digits))
    return value


def _is_missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _write_xlsx(sheets: list[_SheetSpec], temp: Path) -> None:
    """XlsxWriter in constant-memory mode: each row is streamed to disk as it
    is written (memory stays flat) and it is about 3x faster than openpyxl's
    write-only mode for the same styling (see benchmarks/)."""
    import xlsxwriter
    from xlsxwriter.exceptions import FileCreateError

    workbook = xlsxwriter.Workbook(
        str(temp),
        {
            "constant_memory": True,
            # Only the explicit write_* calls below decide a cell's type: no
            # string is ever turned into a number, a formula or a link.
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    styles = _Styles(workbook)
    try:
        for spec in sheets:
            _write_sheet(workbook, styles, spec)
    except BaseException:
        try:
            workbook.close()  # removes its own temporary files; the output is discarded
        except Exception:
            pass
        raise
    try:
        workbook.close()
    except FileCreateError as exc:
        cause = exc.args[0] if exc.args and isinstance(exc.args[0], OSError) else None
        raise (cause or OSError(str(exc))) from exc


# Number formats openpyxl gives dates and datetimes, kept so the sheet looks the same.
_DATE_FORMAT = "yyyy-mm-dd"
_DATETIME_FORMAT = "yyyy-mm-dd h:mm:ss"
# XlsxWriter's default column: Calibri 11, 7 pixels per character digit.
_PIXELS_PER_CHARACTER = 7


class _Styles:
    """One XlsxWriter format per distinct (number format, fill, quote prefix, bold)."""

    def __init__(self, workbook) -> None:
        self._workbook = workbook
        self._formats: dict[tuple, object] = {}

    def plain_run(self):
        """A format with nothing set: the default font, for a text run."""
        found = self._formats.get("plain_run")
        if found is None:
            found = self._formats["plain_run"] = self._workbook.add_format()
        return found

    def get(self, number_format: str | None, fill: str | None, quote: bool = False, bold: bool = False):
        key = (number_format, fill, quote, bold)
        if key == (None, None, False, False):
            return None
        found = self._formats.get(key)
        if found is None:
            properties: dict[str, object] = {}
            if number_format is not None:
                properties["num_format"] = number_format
            if fill is not None:
                # Solid fill: XlsxWriter writes bg_color as the pattern's fgColor,
                # as openpyxl's PatternFill(fill_type="solid", fgColor=...) did.
                properties["pattern"] = 1
                properties["bg_color"] = "#" + fill[-6:]
            if quote:
                properties["quote_prefix"] = True  # stays text even if edited in Excel
            if bold:
                properties["bold"] = True
            found = self._formats[key] = self._workbook.add_format(properties)
        return found


def _write_sheet(workbook, styles: _Styles, spec: _SheetSpec) -> None:
    frame = spec.frame
    sheet = workbook.add_worksheet(spec.name)
    names = [str(c) for c in frame.columns]
    kinds = [
        "text" if name in spec.text_columns else "int" if name in spec.integer_columns
        else "money" if name in spec.money_columns else "auto"
        for name in frame.columns
    ]
    # Constant-memory mode: column settings and panes before the first row.
    for position, name in enumerate(frame.columns):
        width = _fitted_width(name, frame.iloc[:, position]) + (4 if kinds[position] == "money" else 0)  # "$" and ",.00"
        # Pixels chosen so the stored width is exactly ``width`` characters.
        column_format = styles.get("@", None) if kinds[position] == "text" else None  # new typing stays text
        sheet.set_column_pixels(position, position, round(width * _PIXELS_PER_CHARACTER), column_format)
    sheet.freeze_panes(1, 0)

    for position, name in enumerate(names):
        _write_text(sheet, styles, 0, position, _xml_safe(name), styles.get(None, None, is_formula_like(name), bold=True))

    fills = dict(spec.row_fills)
    filled = bool(fills) and spec.fill_column in frame.columns
    from batch_payouts.files.xlsx_rows import RowWriter  # imports xlsxwriter, as this function does

    rows = RowWriter.for_sheet(sheet)  # the cells' XML written directly; None: the public API for all
    # A block of rows at a time: every column of a million-row frame as Python lists at once
    # was ~130 MB beside the frame itself (issue 17: < 1 GB for a million rows).
    for start in range(0, len(frame), _WRITE_BLOCK_ROWS):
        block = frame.iloc[start:start + _WRITE_BLOCK_ROWS]
        columns = [block.iloc[:, i].tolist() for i in range(block.shape[1])]
        status = block[spec.fill_column].tolist() if filled else None
        _write_rows(sheet, styles, rows, start + 1, columns, kinds, status, fills)
    if rows is not None:
        rows.finish()
    if names:
        sheet.autofilter(0, 0, len(frame), len(names) - 1)


_WRITE_BLOCK_ROWS = 65_536


def _write_rows(sheet, styles: _Styles, rows, first: int, columns: list[list], kinds: list[str],
                status: list | None, fills: dict) -> None:
    """Rows ``first``, ``first + 1``, ... of a sheet from ``columns`` (one list per column)."""
    # Most cells are ordinary strings: check the whole column once for
    # characters an XLSX cannot hold or an over-long cell, and skip the
    # per-cell clean-up when there are none.
    clean = [_strings_are_xml_safe(values) for values in columns]
    get_style = styles.get
    for row, values in enumerate(zip(*columns), start=first):
        fill = None
        if status is not None:
            key = status[row - first]
            fill = fills.get(key) if isinstance(key, str) else None
        cells = []  # (column, value as stored, format): str, int/float, bool, naive date, or None (a blank)
        for position, value in enumerate(values):
            kind = kinds[position]
            if type(value) is str and kind == "auto":
                plain, number_format = (value if clean[position] else _xml_safe(value)) or None, None
            else:
                plain, number_format = _typed(value, kind)
            if plain is None:
                style = get_style(number_format, fill)
                if style is not None:
                    cells.append((position, None, style))
            elif isinstance(plain, str):
                cells.append((position, plain, get_style(number_format, fill, plain.startswith(FORMULA_PREFIXES))))
            elif isinstance(plain, (bool, int, float)):
                cells.append((position, plain, get_style(number_format, fill)))
            else:  # a naive date or datetime
                default = _DATETIME_FORMAT if isinstance(plain, dt.datetime) else _DATE_FORMAT
                cells.append((position, plain, get_style(number_format or default, fill)))
        if rows is None or not rows.write(row, cells):
            _write_cells(sheet, styles, row, cells)


def _write_cells(sheet, styles: _Styles, row: int, cells: list[tuple[int, object, object]]) -> None:
    """One row's cells through XlsxWriter's public API (what ``RowWriter`` cannot write)."""
    for position, plain, style in cells:
        if plain is None:
            sheet.write_blank(row, position, None, style)
        elif isinstance(plain, str):
            _write_text(sheet, styles, row, position, plain, style)
        elif isinstance(plain, bool):
            sheet.write_boolean(row, position, plain, style)
        elif isinstance(plain, (int, float)):
            sheet.write_number(row, position, plain, style)
        else:
            sheet.write_datetime(row, position, plain, style)


def _write_text(sheet, styles: _Styles, row: int, column: int, text: str, style) -> None:
    """A string cell, whatever it looks like.

    In constant-memory mode XlsxWriter copies a string that starts with
    ``<r>`` and ends with ``</r>`` into the sheet's XML *unescaped* (it takes
    it for its own rich-text markup), which would let a cell inject XML -- a
    formula included.  Such text is written as two plain runs instead, which
    XlsxWriter escapes and every reader joins back into the same text.
    """
    if text.startswith("<r>") and text.endswith("</r>"):
        parts = [text[:1], styles.plain_run(), text[1:]]
        if style is not None:
            parts.append(style)
        sheet.write_rich_string(row, column, *parts)
    else:
        sheet.write_string(row, column, text, style)


def _strings_are_xml_safe(values: list) -> bool:
    """True when no string in ``values`` needs ``_xml_safe`` (the usual case)."""
    texts = [v for v in values if type(v) is str]
    if not texts:
        return True
    if max(map(len, texts)) > _XLSX_MAX_CELL_CHARS:
        return False
    return _XML_UNSAFE.search("".join(texts)) is None


def _typed(value: object, kind: str) -> tuple[object, str | None]:
    """(value as Excel should store it, number format or None).

    Text columns are always text (``@``); integer columns whole numbers
    (``0``) when they are whole; otherwise numbers, booleans and naive dates
    keep their type and everything else becomes text.
    """
    if kind == "int":  # the usual cells first: a row number, an amount typed as digits
        if type(value) is int and abs(value) < _EXCEL_EXACT_INTEGERS:
            return value, "0"
        if type(value) is str and len(value) < 16 and value.isascii() and value.isdigit():
            return int(value), "0"
    if kind == "text":
        text = cell_text(value)
        return (_xml_safe(text) if text else None), "@"
    if kind == "int":
        number = _integer_or_text(value)
        if isinstance(number, int) and not isinstance(number, bool):
            if abs(number) < _EXCEL_EXACT_INTEGERS:
                return number, "0"
            if isinstance(value, str):  # Excel would round it (or cannot hold it): the text as typed
                return _xml_safe(value), None
        value = number
    if kind == "money" and (pesos := money_number(value)) is not None:
        return pesos, MONEY_FORMAT
    if hasattr(value, "item") and not isinstance(value, (str, pd.Timestamp)):
        value = value.item()  # numpy scalar -> Python
    if value is None or (not isinstance(value, str) and _is_missing(value)):
        return None, None
    if isinstance(value, bool) or (isinstance(value, int) and abs(value) < _EXCEL_EXACT_INTEGERS):
        return value, None
    if isinstance(value, float) and math.isfinite(value):
        return value, None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    naive_datetime = isinstance(value, dt.datetime) and value.tzinfo is None
    if naive_datetime or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value, None
    return _xml_safe(cell_text(value)), None


# Characters an XLSX cell cannot hold (openpyxl's ILLEGAL_CHARACTERS_RE), and CR.
_XML_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")
_XML_UNSAFE = re.compile(r"[\000-\010]|[\013-\015]|[\016-\037]")


def _xml_safe(text: str) -> str:
    """Replace characters an XLSX cannot hold; cut to Excel's cell limit.

    CR and CRLF become LF: that is what every XML reader made of the CR that
    openpyxl used to write (XlsxWriter would write ``_x000D_`` instead).
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _XML_ILLEGAL.sub("\ufffd", text)[:_XLSX_MAX_CELL_CHARS]


def _fitted_width(name: object, values: pd.Series) -> float:
    """The header's or the longest cell's text length, plus a margin, capped.

    An integer column's longest text is its least or its greatest number's; any other column is
    measured a block at a time (a million row numbers as text were ~60 MB at once, issue 17)."""
    longest = len(str(name))
    if pd.api.types.is_integer_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        present = values.dropna()
        if len(present):
            longest = max(longest, len(cell_text(present.min())), len(cell_text(present.max())))
        return float(min(longest + 2, MAX_COLUMN_WIDTH))
    for start in range(0, len(values), _WRITE_BLOCK_ROWS):
        cells = values.iloc[start:start + _WRITE_BLOCK_ROWS].tolist()
        if not all(type(cell) is str for cell in cells):  # the usual column is its own text: no call per cell
            cells = list(map(cell_text, cells))
        longest = max(longest, max(map(len, cells)))
    return float(min(longest + 2, MAX_COLUMN_WIDTH))
