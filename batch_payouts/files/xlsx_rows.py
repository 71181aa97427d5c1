"""The cells of a constant-memory XlsxWriter sheet, written as the XML XlsxWriter itself writes.

Why: XlsxWriter spends ~15 µs of Python per cell (argument checks, a named
tuple per cell, attribute lists, three escaping passes), which made writing a
100,000-row results sheet most of ``validate``'s time, and a million-row one
over a minute.  ``RowWriter`` writes each row's ``<row>`` element straight into
the worksheet's row-data file, with exactly the bytes XlsxWriter's
``_write_single_row`` would write for the same cells (the same ``r=``, ``s=``
and ``t=`` attributes, the same escaping, ``xml:space`` and number format); the
style indices are assigned in the same order, and the sheet's dimensions are
kept, so the workbook is byte for byte the one the public API would write
(tests/files/test_xlsx_rows.py compares the two on every kind of cell).

It handles text, numbers and styled blanks; a row with anything else (a
boolean, a date, text XlsxWriter would take for rich-text markup) returns
False from ``write`` and the caller writes it through the public API.  It
relies on XlsxWriter internals (the row-data file, ``_write_single_row``,
``_check_dimensions``), so ``for_sheet`` gives None -- the public API is used
for the whole sheet -- unless they are all there.
"""

from __future__ import annotations

import re

from xlsxwriter.utility import xl_col_to_name

try:  # private: another XlsxWriter may not have it, and then the public API writes every cell
    from xlsxwriter.utility import _preserve_whitespace
except ImportError:  # pragma: no cover - depends on the installed XlsxWriter
    _preserve_whitespace = None

# A cell whose text needs one of XlsxWriter's escapes: control characters and
# the non-characters (_xHHHH_), a literal "_x" that could read as one, "&<>"
# (XML), and a leading or trailing whitespace character (xml:space) is checked
# apart.  Cells without any are written as they are.
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f&<>\ufffe\uffff]|_x')
_SURELY_SHORT = 32_767 // 2  # UTF-16 units are at most twice the characters
_INTERNALS = ("_write_single_row", "_check_dimensions", "_escape_control_characters", "_escape_data")


class RowWriter:
    """Write the rows of one constant-memory worksheet as XlsxWriter's XML."""

    @classmethod
    def for_sheet(cls, sheet) -> RowWriter | None:
        """A writer for ``sheet``, or None when it cannot promise XlsxWriter's exact output."""
        try:
            if _preserve_whitespace is None or not getattr(sheet, "constant_memory", False) \
                    or not all(hasattr(sheet, n) for n in _INTERNALS):
                return None
            if sheet.excel_version != 2007 or sheet.row_info or sheet.comments \
                    or sheet.default_row_height != sheet.original_row_height:
                return None
            return cls(sheet)
        except (AttributeError, TypeError):  # another XlsxWriter's internals: its public API instead
            return None

    def __init__(self, sheet) -> None:
        self._sheet = sheet
        self._xf: dict[int, str] = {}  # id(format) -> ' s="N"' ('' for no index)
        self._column_formats = {col: info.column_format for col, info in sheet.col_info.items()
                                if info.column_format is not None}
        self._letters: list[str] = []
        self._rows: tuple[int, int] | None = None  # the first and last row written here
        self._cols: tuple[int, int] | None = None

    def _style(self, cell_format, col: int) -> str:
        """The ``s`` attribute XlsxWriter's ``_write_cell`` gives a cell: its own format's
        index, else its column's format (indices are assigned on first use, as there)."""
        if cell_format is None:
            cell_format = self._column_formats.get(col)
            if cell_format is None:
                return ""
        key = id(cell_format)
        found = self._xf.get(key)
        if found is None:
            index = cell_format._get_xf_index()
            found = self._xf[key] = f' s="{index}"' if index else ""
        return found

    def _letter(self, col: int) -> str:
        letters = self._letters
        while len(letters) <= col:
            letters.append(xl_col_to_name(len(letters)))
        return letters[col]

    def write(self, row: int, cells: list[tuple[int, object, object]]) -> bool:
        """Write ``cells`` -- (column, value, format) in column order, value a str, an int or
        float, or None for a styled blank -- as row ``row`` (0-based).  False, and nothing
        written, when a cell needs the public API (see the module's docstring)."""
        sheet = self._sheet
        # First flush what an earlier write_* call left in XlsxWriter's table: its cells take
        # their style indices before this row's, as they would there.
        sheet._write_single_row(row)
        parts = []
        written = []
        number = str(row + 1)
        letters, xf = self._letters, self._xf
        for col, value, cell_format in cells:
            if value is None and cell_format is None:
                continue  # XlsxWriter writes no cell for an unstyled blank (nor gives its column format an index)
            if col >= len(letters):
                self._letter(col)
            style = xf.get(id(cell_format)) if cell_format is not None else None
            if style is None:
                style = self._style(cell_format, col)
            kind = type(value)
            if kind is str:
                if len(value) > _SURELY_SHORT:  # XlsxWriter cuts at 32,767 UTF-16 units: its own path
                    return False
                escaped = needs = _NEEDS_ESCAPE.search(value) is not None
                text = sheet._escape_control_characters(value) if needs else value
                if text.startswith("<r>") and text.endswith("</r>"):
                    return False
                space = ' xml:space="preserve"' if (text[:1].isspace() or text[-1:].isspace()) \
                    and _preserve_whitespace(text) else ""
                if escaped:
                    text = sheet._escape_data(text)
                parts.append(f'<c r="{letters[col]}{number}"{style} t="inlineStr">'
                             f'<is><t{space}>{text}</t></is></c>')
            elif kind is int or kind is float:
                if kind is float and (value != value or value in (float("inf"), float("-inf"))):
                    return False
                parts.append(f'<c r="{letters[col]}{number}"{style}>'
                             f'<v>{value:.16G}</v></c>')
            elif value is None:
                parts.append(f'<c r="{letters[col]}{number}"{style}/>')
            else:
                return False
            written.append(col)
        if not parts:
            return True
        sheet.fh.write(f'<row r="{number}">{"".join(parts)}</row>')
        self._rows = (row, row) if self._rows is None else (min(self._rows[0], row), max(self._rows[1], row))
        first, last = written[0], written[-1]
        self._cols = (first, last) if self._cols is None else (min(self._cols[0], first), max(self._cols[1], last))
        return True

    def finish(self) -> None:
        """Give the sheet the dimensions of the rows written here, as ``_check_dimensions``
        would have kept them (its ``<dimension>`` and the autofilter's range read them)."""
        if self._rows is None:
            return
        sheet = self._sheet
        for name, low, high in (("row", *self._rows), ("col", *self._cols)):
            if getattr(sheet, f"dim_{name}min") is None or low < getattr(sheet, f"dim_{name}min"):
                setattr(sheet, f"dim_{name}min", low)
            if getattr(sheet, f"dim_{name}max") is None or high > getattr(sheet, f"dim_{name}max"):
                setattr(sheet, f"dim_{name}max", high)
