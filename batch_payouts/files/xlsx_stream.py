"""A large worksheet read row by row from its XML, never whole (issue 17: a million rows in < 1 GB).

Why: python-calamine, the fast reader used for every other sheet, loads the
whole sheet into memory before the first row can be read: iterating a
1,000,000-row sheet and keeping nothing peaks at ~780 MiB by itself, so the
table built from it cannot stay under 1 GB.  openpyxl's read-only mode parses
the sheet's XML as a stream (~120 MiB at that size, most of it the cleared
row elements ElementTree keeps), at about eight times calamine's CPU per cell.
So only a sheet whose XML is larger than ``STREAM_ABOVE_BYTES`` (uncompressed,
as the zip's directory says: nothing is read to know it) is streamed; smaller
ones keep calamine's speed.

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
        # Never trust <dimension>: a stale one would cut rows off; calamine reads every cell.
        worksheet.reset_dimensions()
        for row in worksheet.iter_rows():
            yield [_text(cell.value, cell.data_type) for cell in row]
    finally:
        workbook.close()


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
