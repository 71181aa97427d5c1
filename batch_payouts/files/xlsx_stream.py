"""A large worksheet read row by row from its XML, never whole (issue 17: a million rows in < 1 GB).

Why: python-calamine, the fast reader used for every other sheet, loads the
whole sheet into memory before the first row can be read: iterating a
1,000,000-row sheet and keeping nothing peaks at ~780 MiB by itself, so the
table built from it cannot stay under 1 GB.  openpyxl's read-only mode reads
the workbook (shared strings, which styles are dates, the epoch) and its cells'
values are the reference here; the sheet's XML itself is parsed as a stream by
our own ElementTree loop (``_fast_rows``), which gives the values openpyxl's
cells have at half its time (openpyxl's per-cell dicts, cell objects and
rich-text classes made a million-row validate 1.6x its floor).  That is still
~3x calamine's time per cell, so only a sheet whose XML is larger than
``STREAM_ABOVE_BYTES`` (uncompressed, as the zip's directory says: nothing is
read to know it) is streamed; smaller ones keep calamine's speed.

The rows must be the ones calamine gives (tests/files/test_xlsx_stream.py reads
the same workbooks both ways), so openpyxl's values are brought to calamine's
conventions before they become text with ``cell_text``:

* numbers are floats (openpyxl gives an int for "12345678901234567", calamine
  a float, and the text of the two differs past 2**53);
* a date-formatted whole serial is a date ("2025-01-31", not "…T00:00:00");
* an error cell (``#N/A``, ``#DIV/0!``) is empty, as calamine gives it, while
  the text "#N/A" typed in a cell stays text;
* the ``_xHHHH_`` escapes Excel writes for control characters ("_x000D_" for a
  carriage return) are decoded.

Known differences, all outside what a payout sheet holds: a shared string that
literally contains "_xHHHH_" (openpyxl has already removed the "_x005F" that
escapes it), a date-formatted serial outside Excel's dates (calamine gives the
number, openpyxl an error) or negative, and ``t="d"`` ISO cells.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

from batch_payouts.files.cells import cell_text

# Sheets whose XML is larger than this are streamed.  64 MiB of XML is ~140,000 rows of a
# nine-column payout sheet: calamine's whole-sheet copy of that is ~110 MiB, well inside the
# budget, and everything up to the 100,000-row benchmark keeps calamine's speed.
STREAM_ABOVE_BYTES = 64 << 20

_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_MIDNIGHT = dt.time()


def sheet_xml_bytes(path: Path, sheet: str) -> int | None:
    """The uncompressed size of worksheet ``sheet``'s XML in the zip, or None when unknown."""
    from batch_payouts.files.formats import sheet_part

    try:
        with zipfile.ZipFile(path) as archive:
            part = sheet_part(archive, sheet)
            return None if part is None else archive.getinfo(part).file_size
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def should_stream(path: Path, sheet: str) -> bool:
    """Is ``sheet`` large enough that only a streaming read keeps the memory bounded?"""
    size = sheet_xml_bytes(path, sheet)
    return size is not None and size > STREAM_ABOVE_BYTES


def text_rows(path: Path, sheet: str) -> Iterator[list[str]]:
    """Every row of worksheet ``sheet`` from row 1 and column A, each cell as calamine's text
    (a row missing from the XML is ``[]``; a row ends at its last cell)."""
    import openpyxl

    # data_only: a formula cell gives its cached value, as calamine does.
    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    try:
        worksheet = workbook[sheet]
        if _FAST and all(hasattr(o, n) for o, n in ((workbook, "_date_formats"), (workbook, "_timedelta_formats"),
                                                    (workbook, "_archive"), (worksheet, "_worksheet_path"),
                                                    (worksheet, "_shared_strings"))):
            yield from _fast_rows(workbook, worksheet)
            return
        # Never trust <dimension>: a stale one would cut rows off; calamine reads every cell.
        worksheet.reset_dimensions()
        for row in worksheet.iter_rows():
            yield [_text(cell.value, cell.data_type) for cell in row]
    finally:
        workbook.close()


# The sheet's cells read from its XML here, with what openpyxl read of the workbook (shared
# strings, which styles are dates, the epoch): openpyxl's own cell parsing (a dict and a cell
# object per cell, its rich-text classes for inline strings) was two thirds of a million-row
# validate and put it over 1.5x its floor.  False: openpyxl's public rows only (the tests run both).
_FAST = True
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_ROW, _V, _IS, _T, _R = (_MAIN + tag for tag in ("row", "v", "is", "t", "r"))
_DIGITS = "0123456789"


def _fast_rows(workbook, worksheet) -> Iterator[list[str]]:
    """``text_rows`` from the sheet's XML: the same values openpyxl's read-only cells have
    (its ``WorkSheetParser.parse_cell`` with ``data_only``), turned into text by ``_text``."""
    import xml.etree.ElementTree as ET

    from openpyxl.utils.cell import column_index_from_string
    from openpyxl.utils.datetime import from_ISO8601, from_excel

    strings = worksheet._shared_strings
    dates, durations, epoch = workbook._date_formats, workbook._timedelta_formats, workbook.epoch
    columns: dict[str, int] = {}
    parser = ET.XMLPullParser(events=("end",))
    number = 0  # the row last given
    with workbook._archive.open(worksheet._worksheet_path) as xml:
        while True:
            data = xml.read(1 << 16)
            if data:
                parser.feed(data)
            else:
                parser.close()
            for _, element in parser.read_events():
                if element.tag != _ROW:
                    continue
                at = element.get("r")
                index = int(at) if at else number + 1
                while number + 1 < index:  # rows missing from the XML
                    number += 1
                    yield []
                cells: list[str] = []
                for cell in element:
                    where = cell.get("r")
                    if where:
                        letters = where.rstrip(_DIGITS)
                        column = columns.get(letters)
                        if column is None:
                            column = columns[letters] = column_index_from_string(letters)
                        if column > len(cells) + 1:
                            cells.extend([""] * (column - 1 - len(cells)))
                        elif column <= len(cells):  # out of order: as openpyxl, the later cell wins
                            cells[column - 1] = _cell(cell, strings, dates, durations, epoch, from_excel, from_ISO8601)
                            continue
                    cells.append(_cell(cell, strings, dates, durations, epoch, from_excel, from_ISO8601))
                element.clear()
                number = max(number, index)
                yield cells
            if not data:
                break


def _cell(cell, strings, dates, durations, epoch, from_excel, from_iso) -> str:
    """One ``<c>`` element as ``_text`` gives openpyxl's value of it."""
    kind = cell.get("t")
    if kind == "inlineStr":
        inline = cell.find(_IS)
        if inline is None:
            return ""
        plain = inline.findtext(_T)
        if plain is not None and len(inline) == 1:  # the usual inline string: one <t>, no runs
            return _ESCAPE.sub(_unescaped, plain) if "_x" in plain else plain
        parts = [] if plain is None else [plain]
        parts.extend(run.findtext(_T) or "" for run in inline.iterfind(_R))
        return _text("".join(parts), "s")
    value = cell.findtext(_V)
    if not value:
        return ""
    if kind is None or kind == "n":
        style = cell.get("s")
        if style and int(style) in dates:
            number = float(value) if "." in value or "E" in value or "e" in value else int(value)
            try:
                return _text(from_excel(number, epoch, timedelta=int(style) in durations), "d")
            except (OverflowError, ValueError):
                return ""  # openpyxl's "#VALUE!" error cell
        return cell_text(float(value))
    if kind == "s":
        return _text(strings[int(value)], "s")
    if kind == "b":
        return "TRUE" if int(value) else "FALSE"
    if kind == "e":
        return ""
    if kind == "d":
        return _text(from_iso(value), "d")
    return _text(value, "s")  # "str", a formula's text


def _text(value: object, kind: str) -> str:
    """One openpyxl cell as the text ``cell_text`` gives for calamine's value of the same cell."""
    cls = type(value)
    if cls is str:
        if kind == "e":
            return ""
        return _ESCAPE.sub(_unescaped, value) if "_x" in value else value
    if value is None:
        return ""
    if cls is int:
        return cell_text(float(value))
    if cls is dt.datetime and value.time() == _MIDNIGHT:
        return value.date().isoformat()
    return cell_text(value)


def _unescaped(match: re.Match) -> str:
    return chr(int(match.group(1), 16))
