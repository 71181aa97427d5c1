"""Reading spreadsheets exactly as finance staff save them: CSV and XLSX, every cell as text.

Promises of ``read_table`` (see ARCHITECTURE.md):

* every cell is text, so nothing is lost before the rules look at it: a phone
  typed as a number stays ``"5512345678"`` (not ``5512345678.0`` or
  ``5.51E+09``), ``3000.0`` becomes ``"3000"``, dates become ISO 8601;
* the index is the row number Excel shows, so a message can say "row 7" and
  the user finds row 7;
* bad input never escapes as a traceback: it becomes ``InputFileError`` with a
  Spanish and English explanation of what to do.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from batch_payouts.errors import BatchError, InputFileError
from batch_payouts.files import xlsx_stream
from batch_payouts.files.cells import cell_text, column_letter, paused_gc, short_detail
from batch_payouts.i18n import DEFAULT_LANG, catalogue

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

CSV_EXTENSIONS = (".csv", ".txt", ".tsv")
XLSX_EXTENSIONS = (".xlsx", ".xlsm")
ACCEPTED_EXTENSIONS = CSV_EXTENSIONS + XLSX_EXTENSIONS
CSV_DELIMITERS = ",;\t"
_SNIFF_BYTES = 8_192
_SEP_HINT = re.compile(r"sep=([,;\t])\r?\n", re.IGNORECASE)


def read_table(path: str | os.PathLike[str], sheet: str | None = None) -> pd.DataFrame:
    """Read a CSV or XLSX sheet as text; see ARCHITECTURE.md for the contract.

    Columns are the header cells (stripped); the index is the spreadsheet row
    number (header = 1 when it is the first row); blank rows are dropped.  A file
    with only a header gives zero rows; a file without a header raises.
    ``sheet`` picks an XLSX sheet by name and is ignored for CSV.  Without it,
    the first *visible* sheet with any data is read: a hidden first sheet (a
    lookup table someone hid) or an empty one (a cover page left blank) must not
    be taken for the payments.  For XLSX, ``frame.attrs`` holds ``sheet`` (the
    sheet read) and ``sheets`` (all of them), and every error about the
    content names the sheet and how to pick another (``SheetContentError``).
    """
    file = Path(path)
    ext = file.suffix.lower()
    if not file.exists():
        raise InputFileError(TEXT.FILE_NOT_FOUND, path=str(file))
    if file.is_dir():
        raise InputFileError(TEXT.NOT_A_FILE, path=str(file))
    if ext not in ACCEPTED_EXTENSIONS:
        raise InputFileError(TEXT.WRONG_EXTENSION, path=str(file), ext=file.suffix or "—")
    with paused_gc():
        if ext in XLSX_EXTENSIONS:
            columns, name, names = _read_xlsx_rows(file, sheet)
            try:
                frame = _columns_to_frame(columns, file, locate=True)
            except InputFileError as error:
                raise in_sheet(error, {"sheet": name, "sheets": names}) from error
            frame.attrs.update(sheet=name, sheets=names)
            return frame
        return _columns_to_frame(_read_csv_columns(file, ext), file)


class SheetContentError(InputFileError):
    """An error about what a workbook's sheet holds, told with the sheet's name.

    A workbook can have several sheets and the one read may not be the one the
    user looked at (the first visible sheet with data is read by default), so
    every such message says which sheet was read and how to choose another.
    """

    def __init__(self, error: BatchError, sheet: str, sheets: Sequence[str]) -> None:
        super().__init__(error.text, **error.params)
        self.exit_code = error.exit_code
        self.sheet = sheet
        self.sheets = list(sheets)

    def message(self, lang: str = DEFAULT_LANG) -> str:
        listed = ", ".join(f"«{name}»" for name in self.sheets)
        return f"{super().message(lang)} {TEXT.SHEET_NOTE.format(lang, sheet=self.sheet, sheets=listed)}"


def in_sheet(error: BatchError, where: Mapping[str, object]) -> BatchError:
    """``error`` naming the workbook sheet it is about; ``where`` is a frame's
    ``attrs`` from ``read_table`` (unchanged for a CSV, which has no sheets)."""
    sheet = where.get("sheet")
    if sheet is None or isinstance(error, SheetContentError):
        return error
    return SheetContentError(error, str(sheet), list(where.get("sheets") or [sheet]))


def _read_csv_columns(file: Path, ext: str) -> list[np.ndarray]:
    """The CSV's records as columns (object arrays of str, short rows padded with "").

    pandas' C tokenizer reads a 100,000-row file in about half the time of the
    ``csv`` module and gives columns, not rows.  It refuses a row longer than
    the first one (a ragged file) and a quote left open at the end; those files
    go through ``csv.reader``, which takes every record as it is.  Both read the
    same quoting the same way (tests/test_fast_paths.py pits them against each other).
    """
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InputFileError(TEXT.UNREADABLE_FILE, path=str(file), **TEXT._CSV, detail=exc.strerror or short_detail(exc)) from exc
    if data.startswith(b"PK\x03\x04"):
        raise InputFileError(TEXT.EXCEL_WITH_CSV_EXTENSION, path=str(file), ext=ext)
    text, encoding = _decode(data, file)
    if not text or text.isspace():  # only whitespace (strip() would copy the whole file to say so)
        raise InputFileError(TEXT.EMPTY_FILE, path=str(file))
    hint = _SEP_HINT.match(text)
    if hint:  # Excel's own "sep=;" first line: it names the delimiter and is not a row
        delimiter, text = hint.group(1), text[hint.end():]
    else:
        delimiter = _detect_delimiter(text, default="\t" if ext == ".tsv" else ",")
    # The tokenizer reads UTF-8 bytes: the file's own when they are exactly that (and then the
    # decoded copy is dropped while it runs: a million rows are ~100 MB of it).
    own_bytes = encoding == "utf-8" and not hint
    payload = data if own_bytes else text.encode("utf-8")
    if own_bytes:
        del text
    columns = _tokenized_columns(payload, delimiter)
    if columns is not None:
        return columns
    if own_bytes:
        text = data.decode(encoding)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise InputFileError(TEXT.UNREADABLE_FILE, path=str(file), **TEXT._CSV, detail=exc) from exc
    return _rows_to_columns(rows)


def _tokenized_columns(payload: bytes, delimiter: str) -> list[np.ndarray] | None:
    """``csv.reader``'s records through pandas' C tokenizer, or None where the two
    could differ (a row longer than the first, an unclosed quote, a byte-order mark
    left at the start, which pandas would drop).

    In blocks of rows (``low_memory``): the whole file as one block took twice as long
    at a million rows (1.9 s against 1.0 s), for the same columns; what sits on a
    block's edge reads the same (tests/rules/test_fast_paths.py)."""
    if payload.startswith(b"\xef\xbb\xbf"):
        return None
    try:
        frame = pd.read_csv(
            io.BytesIO(payload), sep=delimiter, header=None, dtype=object, na_filter=False,
            skip_blank_lines=False, engine="c", quoting=csv.QUOTE_MINIMAL, doublequote=True, quotechar='"',
            escapechar=None, comment=None, encoding="utf-8", low_memory=True,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):
        return None
    return [frame[column].to_numpy(dtype=object) for column in frame.columns]


def _decode(data: bytes, file: Path) -> tuple[str, str]:
    """UTF-8 (with or without BOM), UTF-16 with BOM (Excel's "Unicode text"),
    else Windows-1252, which is what Excel in Mexico writes for plain "CSV"."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = ("utf-16",)
    elif data.startswith(b"\xef\xbb\xbf"):
        candidates = ("utf-8-sig",)
    else:
        candidates = ("utf-8", "cp1252")
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:  # NUL never occurs in a text file: this is binary
            raise InputFileError(TEXT.BINARY_FILE, path=str(file))
        return text, encoding
    raise InputFileError(TEXT.UNDECODABLE_TEXT, path=str(file))


def _detect_delimiter(text: str, default: str) -> str:
    """Sniff `,` `;` or tab from the first lines; fall back to counting them in
    the header line (the Sniffer gives up on one-column or header-only files)."""
    sample = text[:_SNIFF_BYTES]
    if len(text) > _SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # never sniff a cut-off line
    header = next((line for line in sample.splitlines() if line.strip()), "")
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:
        sniffed = None
    if sniffed and len(sniffed) == 1 and sniffed in CSV_DELIMITERS and sniffed in header:
        return sniffed
    counts = {d: header.count(d) for d in CSV_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else default


def _read_xlsx_rows(file: Path, sheet: str | None) -> tuple[list[np.ndarray], str, list[str]]:
    """(the sheet's columns as text, its name, every sheet's name)."""
    try:
        from python_calamine import CalamineWorkbook, PasswordError
    except ImportError as exc:  # pragma: no cover - a broken install, not bad input
        raise InputFileError(TEXT.UNREADABLE_FILE, path=str(file), **TEXT._EXCEL, detail=exc) from exc
    try:
        book = _Workbook(file, CalamineWorkbook.from_path(str(file)))
        names = list(book.calamine.sheet_names)
        if sheet is not None:
            name = _pick_sheet(names, sheet, file)
            return book.columns(name), name, names
        return (*_first_sheet_with_data(book, file), names)
    except InputFileError:
        raise
    except PasswordError as exc:
        raise InputFileError(TEXT.PASSWORD_PROTECTED, path=str(file)) from exc
    except Exception as exc:
        raise InputFileError(TEXT.UNREADABLE_FILE, path=str(file), **TEXT._EXCEL, detail=short_detail(exc)) from exc
    except BaseException as exc:
        # The Rust reader reports internal panics as pyo3's PanicException,
        # which derives from BaseException; a damaged file must not crash us.
        if type(exc).__name__ != "PanicException":
            raise
        raise InputFileError(TEXT.UNREADABLE_FILE, path=str(file), **TEXT._EXCEL, detail=short_detail(exc)) from None


_XLSX_BLOCK_ROWS = 65_536


class _Workbook:
    """One workbook read by python-calamine, except its large sheets (files/xlsx_stream.py).

    calamine keeps the workbook's shared strings while it is open, so it is closed
    before a large sheet is streamed, and opened again only if another sheet is read.
    """

    def __init__(self, file: Path, calamine) -> None:
        self.file = file
        self._calamine = calamine

    @property
    def calamine(self):
        if self._calamine is None:
            from python_calamine import CalamineWorkbook

            self._calamine = CalamineWorkbook.from_path(str(self.file))
        return self._calamine

    def columns(self, name: str) -> list[np.ndarray]:
        """Sheet ``name``'s cells as text columns from A1, streamed when the sheet is large."""
        if xlsx_stream.should_stream(self.file, name):
            if self._calamine is not None:
                self._calamine.close()
                self._calamine = None
            return _columns_in_blocks(xlsx_stream.text_rows(self.file, name))
        return _sheet_columns(self.calamine, name)


def _columns_in_blocks(rows: Iterable[list[str]]) -> list[np.ndarray]:
    """Rows of text (any lengths) as equally long columns, turned into columns a block at a
    time: the whole sheet as Python lists beside its columns would be twice the table."""
    blocks: list[tuple[int, list[np.ndarray]]] = []  # (its rows, its columns): a block of empty rows has none
    block: list[list[str]] = []
    seen: dict[int, dict[str, str]] = {}
    for row in rows:
        block.append(row)
        if len(block) == _XLSX_BLOCK_ROWS:
            blocks.append((len(block), _shared_repeats(_rows_to_columns(block), seen)))
            block = []
    if block or not blocks:
        blocks.append((len(block), _shared_repeats(_rows_to_columns(block), seen)))
    width = max(len(columns) for _, columns in blocks)
    return [np.concatenate([columns[position] if position < len(columns) else _blank(count)
                            for count, columns in blocks]) for position in range(width)]


def _shared_repeats(columns: list[np.ndarray], seen: dict[int, dict[str, str]]) -> list[np.ndarray]:
    """``columns`` with each text that repeats in a column held once (by position, ``seen`` keeps
    every column's texts across blocks).

    A payout sheet repeats most of its columns ("MXN" on every row, a few reasons, amounts and
    departments): one str per cell is ~60 bytes each, half of a million-row table's memory (issue
    17).  Columns mostly unique (names, emails) are left alone: a dict of them would cost more.
    """
    shared = []
    for position, column in enumerate(columns):
        # Copies of the columns kept as they are: views would keep the block's whole 2-D array
        # alive, and with it every repeated text this drops.
        texts = seen.get(position)
        if len(column) < 2 and texts is None:
            shared.append(column.copy())
            continue
        codes, distinct = pd.factorize(column)
        # A short block (the last one) of a column that repeats is too small to judge.
        if len(distinct) > len(column) // 2 and (texts is None or len(column) > 1024):
            shared.append(column.copy())
            continue
        if texts is None:
            texts = seen[position] = {}
        once = np.empty(len(distinct), dtype=object)
        once[:] = [texts.setdefault(text, text) for text in distinct]
        shared.append(once[codes])
    return shared


def _sheet_columns(workbook, name: str) -> list[np.ndarray]:
    """The sheet's cells as text columns, from A1 (what ``to_python(skip_empty_area=False)`` gives).

    Read row by row and turned into columns a block at a time: calamine's whole sheet as
    Python lists (a list per row, a float per number cell) plus our text copy of it was
    twice the memory of the table itself, over 1 GB for a million rows.
    """
    sheet = workbook.get_sheet_by_name(name)
    # Most cells are already text: skip the call for them (this runs on every cell).
    columns = _columns_in_blocks([value if type(value) is str else cell_text(value) for value in row]
                                 for row in sheet.iter_rows())
    width = len(columns)
    count = len(columns[0]) if columns else 0
    # iter_rows starts at the first column with data (its rows start at row 1): pad what
    # to_python(skip_empty_area=False) would have to its left (and above, for another layout).
    start = sheet.start
    if start is not None and columns:
        end = sheet.end
        left, above = (end[1] + 1) - width, (end[0] + 1) - count
        if left > 0:
            columns = [_blank(count) for _ in range(left)] + columns
        if above > 0:
            columns = [np.concatenate([_blank(above), column]) for column in columns]
    return columns


def _blank(count: int) -> np.ndarray:
    column = np.empty(count, dtype=object)
    column[:] = ""
    return column


def _first_sheet_with_data(book: _Workbook, file: Path) -> tuple[list[np.ndarray], str]:
    """The first visible worksheet with a non-blank cell, and its name.

    Hidden sheets (and chart sheets) are skipped: Excel does not show them, so
    the user never meant them.  An empty workbook is the empty file error,
    naming the sheets looked at and any hidden ones.
    """
    from python_calamine import SheetTypeEnum, SheetVisibleEnum

    metadata = list(book.calamine.sheets_metadata)
    if not metadata:
        raise InputFileError(TEXT.UNREADABLE_FILE, path=str(file), **TEXT._EXCEL, detail="no sheets")
    worksheets = [m for m in metadata if m.typ == SheetTypeEnum.WorkSheet]
    visible = [m.name for m in worksheets if m.visible == SheetVisibleEnum.Visible]
    hidden = [m.name for m in worksheets if m.visible != SheetVisibleEnum.Visible]
    for name in visible:
        columns = book.columns(name)
        if any(cell and not cell.isspace() for column in columns for cell in column):
            return columns, name
    listed = ", ".join(f"«{name}»" for name in visible) or "—"
    if hidden:
        raise InputFileError(
            TEXT.ONLY_HIDDEN_DATA, path=str(file), sheets=listed, hidden=", ".join(f"«{name}»" for name in hidden)
        )
    raise InputFileError(TEXT.NO_SHEET_WITH_DATA, path=str(file), sheets=listed)


def _pick_sheet(names: Sequence[str], wanted: str, file: Path) -> str:
    if not names:
        raise InputFileError(TEXT.UNREADABLE_FILE, path=str(file), **TEXT._EXCEL, detail="no sheets")
    if wanted in names:
        return wanted
    loose = [n for n in names if n.strip().casefold() == wanted.strip().casefold()]
    if len(loose) == 1:
        return loose[0]
    raise InputFileError(
        TEXT.UNKNOWN_SHEET, path=str(file), sheet=wanted, sheets=", ".join(f"«{n}»" for n in names)
    )


def _rows_to_frame(rows: list[list[str]], file: Path) -> pd.DataFrame:
    """Header = first non-blank row; index = 1-based row number in the sheet."""
    return _columns_to_frame(_rows_to_columns(rows), file, locate=True)


def _rows_to_columns(rows: list[list[str]]) -> list[np.ndarray]:
    """Rows (of any lengths) as equally long object columns, short rows padded with ""."""
    width = max(map(len, rows), default=0)
    if rows and min(map(len, rows)) < width:
        rows = [row if len(row) == width else row + [""] * (width - len(row)) for row in rows]
    # One 2-D object array, sliced per column.
    grid = np.array(rows, dtype=object) if rows and width else np.empty((len(rows), width), dtype=object)
    return [grid[:, position] for position in range(width)]


def _blank_rows(columns: list[np.ndarray]) -> np.ndarray:
    """Per record: are all its cells only whitespace?  Only the records whose
    first cell is blank are looked at further (this runs on every row)."""
    if not columns:
        return np.ones(0, dtype=bool)
    first = columns[0]
    blank = np.fromiter(map(str.isspace, first), dtype=bool, count=len(first)) | (first == "")
    candidates = np.flatnonzero(blank)
    for column in columns[1:]:
        if not len(candidates):
            break
        cells = column[candidates]
        still = np.fromiter((not cell or cell.isspace() for cell in cells), dtype=bool, count=len(cells))
        candidates = candidates[still]
    blank[:] = False
    blank[candidates] = True
    return blank


def _columns_to_frame(columns: list[np.ndarray], file: Path, *, locate: bool = False) -> pd.DataFrame:
    """Header = first non-blank record; index = 1-based record number in the sheet.  ``locate`` (a
    worksheet): ``attrs`` also hold each column's letter and the header's row number."""
    numbers = np.flatnonzero(~_blank_rows(columns)) + 1
    if not len(numbers):
        raise InputFileError(TEXT.EMPTY_FILE, path=str(file))
    header_number, numbers = int(numbers[0]), numbers[1:]
    header = [str(column[header_number - 1]).strip() for column in columns]
    if len(numbers) == len(columns[0]) - header_number:
        body = [column[header_number:] for column in columns]  # no blank row after the header
    else:
        body = [column[numbers - 1] for column in columns]

    keep, names = [], []
    for position, title in enumerate(header):
        if title:
            keep.append(position)
            names.append(title)
        elif "".join(body[position]).strip():
            # Data under a blank header: keep it (as an extra column) under
            # its column letter rather than dropping what the user typed.
            keep.append(position)
            names.append(f"({column_letter(position)})")

    seen: dict[str, list[int]] = {}
    for position, name in zip(keep, names):
        seen.setdefault(name, []).append(position)
    repeated = {name: spots for name, spots in seen.items() if len(spots) > 1}
    if repeated:
        described = "; ".join(
            f"«{name}» ({', '.join(column_letter(p) for p in spots)})" for name, spots in repeated.items()
        )
        raise InputFileError(TEXT.DUPLICATE_HEADERS, path=str(file), duplicates=described)

    index = pd.Index(numbers.astype("int64"), dtype="int64")
    frame = pd.DataFrame({name: body[p] for p, name in zip(keep, names)}, index=index, columns=names, dtype="str")
    if locate:  # where each column sits in the sheet, for what only the workbook tells (files/formats.py)
        frame.attrs.update(letters={name: column_letter(p) for p, name in zip(keep, names)}, header_row=header_number)
    return frame

