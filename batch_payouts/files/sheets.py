"""Spreadsheets in and out: CSV and XLSX, exactly as finance staff save them.

This module knows nothing about payouts or rules.  Its promises:

* ``read_table`` gives every cell as text, so nothing is lost before the rules
  look at it: a phone typed as a number stays ``"5512345678"`` (not
  ``5512345678.0`` or ``5.51E+09``), ``3000.0`` becomes ``"3000"``, dates
  become ISO 8601, and the index is the row number Excel shows, so a message
  can say "row 7" and the user finds row 7.
* ``write_table`` writes a sheet people can open safely: text never turns into
  a formula (CSV/formula injection), 16-digit references stay text, amounts stay
  whole numbers, and the file appears all at once or not at all (temp file plus
  ``os.replace``), so a crash never leaves half a results sheet behind.
* Bad input never escapes as a traceback: it becomes ``InputFileError`` with a
  Spanish and English explanation of what to do.
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from batch_payouts.errors import BatchError, InputFileError
from batch_payouts.i18n import Text

CSV_EXTENSIONS = (".csv", ".txt", ".tsv")
XLSX_EXTENSIONS = (".xlsx", ".xlsm")
ACCEPTED_EXTENSIONS = CSV_EXTENSIONS + XLSX_EXTENSIONS
CSV_DELIMITERS = ",;\t"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
MAX_COLUMN_WIDTH = 60
_SNIFF_BYTES = 8_192
_XLSX_MAX_CELL_CHARS = 32_767
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.0*)?")
_SEP_HINT = re.compile(r"sep=([,;\t])\r?\n", re.IGNORECASE)

FILE_NOT_FOUND = Text(
    es="No se encontró el archivo «{path}». Revisa el nombre y la carpeta.",
    en="File «{path}» was not found. Check the name and the folder.",
)
NOT_A_FILE = Text(
    es="«{path}» es una carpeta, no un archivo. Indica el archivo .xlsx o .csv.",
    en="«{path}» is a folder, not a file. Give the .xlsx or .csv file.",
)
WRONG_EXTENSION = Text(
    es="No se puede leer «{path}»: la extensión «{ext}» no es compatible. "
    "Guarda el archivo como Excel (.xlsx) o CSV (.csv).",
    en="Cannot read «{path}»: extension «{ext}» is not supported. "
    "Save the file as Excel (.xlsx) or CSV (.csv).",
)
EMPTY_FILE = Text(
    es="El archivo «{path}» está vacío: no tiene ni la fila de encabezados. "
    "Usa la plantilla (comando «template») y llena una fila por beneficiario.",
    en="File «{path}» is empty: it has no header row. "
    "Use the template (the «template» command) and fill one row per beneficiary.",
)
UNREADABLE_FILE = Text(
    es="No se puede leer «{path}»: el archivo está dañado o no es {kind_es}. "
    "Ábrelo en Excel y vuelve a guardarlo como .xlsx o CSV UTF-8. (Detalle: {detail})",
    en="Cannot read «{path}»: the file is damaged or is not {kind_en}. "
    "Open it in Excel and save it again as .xlsx or CSV UTF-8. (Detail: {detail})",
)
EXCEL_WITH_CSV_EXTENSION = Text(
    es="«{path}» es un libro de Excel aunque su nombre termina en «{ext}». "
    "Cámbiale la extensión a .xlsx o guárdalo desde Excel como CSV.",
    en="«{path}» is an Excel workbook although its name ends in «{ext}». "
    "Rename it to .xlsx or save it from Excel as CSV.",
)
UNDECODABLE_TEXT = Text(
    es="No se puede leer «{path}»: no es texto en UTF-8 ni en Windows-1252. "
    "En Excel usa «Guardar como» > «CSV UTF-8 (delimitado por comas)».",
    en="Cannot read «{path}»: it is neither UTF-8 nor Windows-1252 text. "
    "In Excel use «Save as» > «CSV UTF-8 (Comma delimited)».",
)
BINARY_FILE = Text(
    es="No se puede leer «{path}»: no es un archivo de texto (tiene bytes nulos; quizá es otro tipo de "
    "archivo renombrado). Ábrelo en Excel y usa «Guardar como» > «CSV UTF-8 (delimitado por comas)» o .xlsx.",
    en="Cannot read «{path}»: it is not a text file (it has NUL bytes; perhaps another kind of file renamed). "
    "Open it in Excel and use «Save as» > «CSV UTF-8 (Comma delimited)» or .xlsx.",
)
PASSWORD_PROTECTED = Text(
    es="«{path}» está protegido con contraseña. Quita la contraseña en Excel "
    "(Archivo > Información > Proteger libro) y vuelve a intentarlo.",
    en="«{path}» is password protected. Remove the password in Excel "
    "(File > Info > Protect Workbook) and try again.",
)
UNKNOWN_SHEET = Text(
    es="El libro «{path}» no tiene una hoja llamada «{sheet}». Hojas disponibles: {sheets}.",
    en="Workbook «{path}» has no sheet named «{sheet}». Available sheets: {sheets}.",
)
DUPLICATE_HEADERS = Text(
    es="Hay encabezados repetidos en «{path}»: {duplicates}. "
    "Cada columna debe tener un nombre distinto; cambia o borra las repetidas.",
    en="«{path}» has repeated headers: {duplicates}. "
    "Every column needs a different name; rename or delete the repeated ones.",
)
_CSV = {"kind_es": "un CSV de texto", "kind_en": "a text CSV"}
_EXCEL = {"kind_es": "un libro de Excel", "kind_en": "an Excel workbook"}
CANNOT_WRITE = Text(
    es="No se pudo guardar «{path}»: {detail}. Si el archivo está abierto en Excel, "
    "ciérralo; revisa también que la carpeta exista y tengas permiso de escritura.",
    en="Could not save «{path}»: {detail}. If the file is open in Excel, close it; "
    "also check that the folder exists and that you may write to it.",
)


@contextmanager
def paused_gc():
    """Pause the cyclic garbage collector for a bulk step.

    A 100,000-row table means hundreds of thousands of short-lived lists and
    tuples; each allocation burst triggers collections that walk every live
    object, which cost a third of the reading time.  Nothing in these steps
    makes reference cycles that must be reclaimed before they end.  Only the
    caller that found the collector enabled enables it again.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# ---------------------------------------------------------------------------
# Cell values as text
# ---------------------------------------------------------------------------


def cell_text(value: object) -> str:
    """One cell as the text a person sees in Excel, without float noise.

    Integral numbers print as integers (``3000.0`` -> ``"3000"``,
    ``5512345678.0`` -> ``"5512345678"``), never in scientific notation; other
    floats keep Excel's 15 significant digits (``0.1 + 0.2`` -> ``"0.3"``);
    dates and datetimes become ISO 8601.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds" if not value.microsecond else "auto")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, sort_keys=isinstance(value, dict))
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    if hasattr(value, "item"):  # numpy scalar
        return cell_text(value.item())
    return str(value)


def _float_text(value: float) -> str:
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "-inf" if value < 0 else "inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return _decimal_text(Decimal(format(value, ".15g")))


def _decimal_text(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


def read_table(path: str | os.PathLike[str], sheet: str | None = None) -> pd.DataFrame:
    """Read a CSV or XLSX sheet as text; see ARCHITECTURE.md for the contract.

    Columns are the header cells (stripped); the index is the spreadsheet row
    number (header = 1 when it is the first row); blank rows are dropped.  A file
    with only a header gives zero rows; a file without a header raises.
    ``sheet`` picks an XLSX sheet by name (default: the first) and is ignored
    for CSV.
    """
    file = Path(path)
    ext = file.suffix.lower()
    if not file.exists():
        raise InputFileError(FILE_NOT_FOUND, path=str(file))
    if file.is_dir():
        raise InputFileError(NOT_A_FILE, path=str(file))
    if ext not in ACCEPTED_EXTENSIONS:
        raise InputFileError(WRONG_EXTENSION, path=str(file), ext=file.suffix or "—")
    with paused_gc():
        if ext in XLSX_EXTENSIONS:
            return _rows_to_frame(_read_xlsx_rows(file, sheet), file)
        return _columns_to_frame(_read_csv_columns(file, ext), file)


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
        raise InputFileError(UNREADABLE_FILE, path=str(file), **_CSV, detail=exc.strerror or _short(exc)) from exc
    if data.startswith(b"PK\x03\x04"):
        raise InputFileError(EXCEL_WITH_CSV_EXTENSION, path=str(file), ext=ext)
    text, encoding = _decode(data, file)
    if not text or text.isspace():  # only whitespace (strip() would copy the whole file to say so)
        raise InputFileError(EMPTY_FILE, path=str(file))
    hint = _SEP_HINT.match(text)
    if hint:  # Excel's own "sep=;" first line: it names the delimiter and is not a row
        delimiter, text = hint.group(1), text[hint.end():]
    else:
        delimiter = _detect_delimiter(text, default="\t" if ext == ".tsv" else ",")
    # The tokenizer reads UTF-8 bytes: the file's own when they are exactly that.
    payload = data if encoding == "utf-8" and not hint else text.encode("utf-8")
    columns = _tokenized_columns(payload, delimiter)
    if columns is not None:
        return columns
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise InputFileError(UNREADABLE_FILE, path=str(file), **_CSV, detail=exc) from exc
    return _rows_to_columns(rows)


def _tokenized_columns(payload: bytes, delimiter: str) -> list[np.ndarray] | None:
    """``csv.reader``'s records through pandas' C tokenizer, or None where the two
    could differ (a row longer than the first, an unclosed quote, a byte-order mark
    left at the start, which pandas would drop)."""
    if payload.startswith(b"\xef\xbb\xbf"):
        return None
    try:
        frame = pd.read_csv(
            io.BytesIO(payload), sep=delimiter, header=None, dtype=object, na_filter=False,
            skip_blank_lines=False, engine="c", quoting=csv.QUOTE_MINIMAL, doublequote=True, quotechar='"',
            escapechar=None, comment=None, encoding="utf-8", low_memory=False,
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
            raise InputFileError(BINARY_FILE, path=str(file))
        return text, encoding
    raise InputFileError(UNDECODABLE_TEXT, path=str(file))


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


def _read_xlsx_rows(file: Path, sheet: str | None) -> list[list[str]]:
    try:
        from python_calamine import CalamineWorkbook, PasswordError
    except ImportError as exc:  # pragma: no cover - a broken install, not bad input
        raise InputFileError(UNREADABLE_FILE, path=str(file), **_EXCEL, detail=exc) from exc
    try:
        workbook = CalamineWorkbook.from_path(str(file))
        names = list(workbook.sheet_names)
        name = _pick_sheet(names, sheet, file)
        cells = workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except InputFileError:
        raise
    except PasswordError as exc:
        raise InputFileError(PASSWORD_PROTECTED, path=str(file)) from exc
    except Exception as exc:
        raise InputFileError(UNREADABLE_FILE, path=str(file), **_EXCEL, detail=_short(exc)) from exc
    except BaseException as exc:
        # The Rust reader reports internal panics as pyo3's PanicException,
        # which derives from BaseException; a damaged file must not crash us.
        if type(exc).__name__ != "PanicException":
            raise
        raise InputFileError(UNREADABLE_FILE, path=str(file), **_EXCEL, detail=_short(exc)) from None
    # Most cells are already text: skip the call for them (this runs on every cell).
    return [[value if type(value) is str else cell_text(value) for value in row] for row in cells]


def _pick_sheet(names: Sequence[str], wanted: str | None, file: Path) -> str:
    if not names:
        raise InputFileError(UNREADABLE_FILE, path=str(file), **_EXCEL, detail="no sheets")
    if wanted is None:
        return names[0]
    if wanted in names:
        return wanted
    loose = [n for n in names if n.strip().casefold() == wanted.strip().casefold()]
    if len(loose) == 1:
        return loose[0]
    raise InputFileError(
        UNKNOWN_SHEET, path=str(file), sheet=wanted, sheets=", ".join(f"«{n}»" for n in names)
    )


def _short(exc: BaseException, limit: int = 160) -> str:
    text = str(exc).strip().replace("\n", " ") or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _column_letter(position: int) -> str:
    """0-based column position -> Excel letters (0 -> A, 27 -> AB)."""
    letters = ""
    position += 1
    while position:
        position, rest = divmod(position - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _rows_to_frame(rows: list[list[str]], file: Path) -> pd.DataFrame:
    """Header = first non-blank row; index = 1-based row number in the sheet."""
    return _columns_to_frame(_rows_to_columns(rows), file)


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


def _columns_to_frame(columns: list[np.ndarray], file: Path) -> pd.DataFrame:
    """Header = first non-blank record; index = 1-based record number in the sheet."""
    numbers = np.flatnonzero(~_blank_rows(columns)) + 1
    if not len(numbers):
        raise InputFileError(EMPTY_FILE, path=str(file))
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
            names.append(f"({_column_letter(position)})")

    seen: dict[str, list[int]] = {}
    for position, name in zip(keep, names):
        seen.setdefault(name, []).append(position)
    repeated = {name: spots for name, spots in seen.items() if len(spots) > 1}
    if repeated:
        described = "; ".join(
            f"«{name}» ({', '.join(_column_letter(p) for p in spots)})" for name, spots in repeated.items()
        )
        raise InputFileError(DUPLICATE_HEADERS, path=str(file), duplicates=described)

    index = pd.Index(numbers.astype("int64"), dtype="int64")
    return pd.DataFrame({name: body[p] for p, name in zip(keep, names)}, index=index, columns=names, dtype="str")


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------


def write_table(
    frame: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    text_columns: Iterable[str] = (),
    integer_columns: Iterable[str] = (),
    row_fills: Mapping[str, str] | None = None,
    fill_column: str = "status",
    sheet_name: str = "Resultados",
    extra_sheets: Mapping[str, pd.DataFrame] | None = None,
) -> Path:
    """Write ``frame`` to ``.csv`` (UTF-8 with BOM, comma) or ``.xlsx``.

    XLSX: bold frozen header, autofilter, fitted widths (capped at
    ``MAX_COLUMN_WIDTH``), rows whose ``fill_column`` value is a key of
    ``row_fills`` (``{"invalid": "FFF4CCCC"}``) filled with that ARGB colour,
    ``text_columns`` stored as text (format ``@``), ``integer_columns`` as whole
    numbers (empty stays empty).  ``extra_sheets`` (name -> frame) follow the
    main sheet in the same style; CSV holds one table, so they are skipped there.

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
        _SheetSpec(sheet_name, frame, frozenset(text_columns), frozenset(integer_columns), dict(row_fills or {}), fill_column)
    ]
    for name, extra in (extra_sheets or {}).items():
        sheets.append(_SheetSpec(name, extra))

    def write(temp: Path) -> None:
        if ext == ".csv":
            _write_csv(sheets[0], temp)
        else:
            _write_xlsx(sheets, temp)

    _atomic_write(target, write)
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


def _atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """Write through a temp file in the target's folder, then ``os.replace``."""
    try:
        handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise BatchError(CANNOT_WRITE, path=str(target), detail=exc.strerror or _short(exc)) from exc
    os.close(handle)
    temp = Path(temp_name)
    try:
        write(temp)
        _match_permissions(temp, target)
        os.replace(temp, target)
    except OSError as exc:
        _remove_quietly(temp)
        raise BatchError(CANNOT_WRITE, path=str(target), detail=exc.strerror or _short(exc)) from exc
    except BaseException:
        _remove_quietly(temp)
        raise


def _match_permissions(temp: Path, target: Path) -> None:
    """mkstemp creates files readable only by the owner; give the result the
    permissions the old file had, or the usual ones for a new file.  (Reading
    the umask means setting it briefly: call from one thread at a time.)"""
    if target.exists():
        mode = target.stat().st_mode & 0o777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        os.chmod(temp, mode)
    except OSError:  # pragma: no cover - e.g. filesystems without modes
        pass


def _remove_quietly(temp: Path) -> None:
    try:
        temp.unlink()
    except OSError:  # already gone, or the original error matters more
        pass


def is_formula_like(text: str) -> bool:
    """True when a spreadsheet could run ``text`` as a formula (CSV injection)."""
    return text.startswith(FORMULA_PREFIXES)


def _write_csv(spec: _SheetSpec, temp: Path) -> None:
    header = [_csv_cell(str(name)) for name in spec.frame.columns]
    # Column by column, each column's cells checked in one scan of its joined
    # text (see ``flagged_positions``): per-cell Python calls were most of the
    # time of a 100,000-row sheet.
    columns = [(spec.frame.iloc[:, i].tolist(), name in spec.integer_columns) for i, name in enumerate(spec.frame.columns)]
    with open(temp, "w", encoding="utf-8-sig", newline="") as out:
        if len(header) < 2:
            # The csv module quotes a row that is one empty field; keep it for such sheets.
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow(header)
            writer.writerows(zip(*(_csv_column(values, integer)[0] for values, integer in columns)))
            return
        # What csv.writer (QUOTE_MINIMAL, doublequote, "\r\n") writes for rows
        # of two or more text fields, built by joins.
        fields = [_csv_fields(values, integer) for values, integer in columns]
        lines = [",".join(_csv_quoted(header)), *map(",".join, zip(*fields))]
        out.write("\r\n".join(lines))
        out.write("\r\n")


# Cells csv.writer puts in quotes (QUOTE_MINIMAL): the delimiter, the quote
# character, or a line-ending character.
_CSV_QUOTE_CHARACTERS = (",", '"', "\r", "\n")
_CSV_NEEDS_QUOTES = re.compile(r'[,"\r\n]')
_CSV_FORMULA_START = re.compile(r"\x00[=+\-@\t\r]")  # FORMULA_PREFIXES right after a cell's NUL
# Not what _integer_or_text prints unchanged: a non-digit, an empty cell, or a leading zero.
_CSV_NOT_CANONICAL = re.compile(r"[^0-9\x00]|\x00(?=0[^\x00]|\x00)")


def joined_cells(texts: list[str]) -> str:
    """``"\\0" + "\\0".join(texts) + "\\0"``: a column as one string, so one C-level
    scan (``in``, a regex) looks at every cell; see ``flagged_positions``.
    Raises ``TypeError`` unless every cell is a str."""
    return "\x00".join(["", *texts, ""])


def _nul_positions(joined: str, texts: list[str]) -> np.ndarray:
    """The offsets of the NULs in ``joined_cells(texts)``: read from its bytes when
    every character is one Latin-1 byte (the usual column: offsets in bytes are
    offsets in characters, and that copy is a memcpy), else summed from the texts' lengths."""
    try:
        return np.flatnonzero(np.frombuffer(joined.encode("latin-1"), dtype=np.uint8) == 0)
    except UnicodeEncodeError:
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        return np.concatenate(([0], np.cumsum(lengths + 1)))


def flagged_positions(pattern: re.Pattern, texts: list[str], joined: str | None = None) -> list[int]:
    """The positions of the texts in which ``pattern`` matches, from one scan
    of ``joined_cells(texts)`` (NUL never occurs in a cell).

    A match inside a text flags that text, and so does a match starting at the
    NUL just before it: ``"\\0="`` flags the texts that start with "=".  When a
    text holds NUL after all, each text is searched on its own, between NULs.
    """
    if not texts:
        return []
    if joined is None:
        joined = joined_cells(texts)
    if pattern.search(joined) is None:
        return []
    if joined.count("\x00") != len(texts) + 1:
        return [position for position, text in enumerate(texts) if pattern.search("\x00" + text + "\x00")]
    starts = _nul_positions(joined, texts)  # where each text's leading NUL is (and the last NUL)
    found = np.fromiter((match.start() for match in pattern.finditer(joined)), dtype=np.int64)
    return np.unique(np.searchsorted(starts, found, side="right") - 1).tolist()


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
        "text" if name in spec.text_columns else "int" if name in spec.integer_columns else "auto"
        for name in frame.columns
    ]
    columns = [frame.iloc[:, i].tolist() for i in range(frame.shape[1])]
    # Constant-memory mode: column settings and panes before the first row.
    for position, name in enumerate(frame.columns):
        width = _fitted_width(name, frame.iloc[:, position])
        # Pixels chosen so the stored width is exactly ``width`` characters.
        column_format = styles.get("@", None) if kinds[position] == "text" else None  # new typing stays text
        sheet.set_column_pixels(position, position, round(width * _PIXELS_PER_CHARACTER), column_format)
    sheet.freeze_panes(1, 0)

    for position, name in enumerate(names):
        _write_text(sheet, styles, 0, position, _xml_safe(name), styles.get(None, None, is_formula_like(name), bold=True))

    fills = dict(spec.row_fills)
    status = frame[spec.fill_column].tolist() if fills and spec.fill_column in frame.columns else None
    # Most cells are ordinary strings: check the whole column once for
    # characters an XLSX cannot hold or an over-long cell, and skip the
    # per-cell clean-up when there are none.
    clean = [_strings_are_xml_safe(values) for values in columns]
    write_string, write_number, write_blank = sheet.write_string, sheet.write_number, sheet.write_blank
    for row, values in enumerate(zip(*columns), start=1):
        fill = None
        if status is not None:
            key = status[row - 1]
            fill = fills.get(key) if isinstance(key, str) else None
        for position, value in enumerate(values):
            kind = kinds[position]
            if type(value) is str and kind == "auto":
                plain, number_format = (value if clean[position] else _xml_safe(value)) or None, None
            else:
                plain, number_format = _typed(value, kind)
            if plain is None:
                style = styles.get(number_format, fill)
                if style is not None:
                    write_blank(row, position, None, style)
            elif isinstance(plain, str):
                style = styles.get(number_format, fill, is_formula_like(plain))
                if plain.startswith("<r>") and plain.endswith("</r>"):
                    _write_text(sheet, styles, row, position, plain, style)
                else:
                    write_string(row, position, plain, style)
            elif isinstance(plain, bool):
                sheet.write_boolean(row, position, plain, styles.get(number_format, fill))
            elif isinstance(plain, (int, float)):
                write_number(row, position, plain, styles.get(number_format, fill))
            else:  # a naive date or datetime
                default = _DATETIME_FORMAT if isinstance(plain, dt.datetime) else _DATE_FORMAT
                sheet.write_datetime(row, position, plain, styles.get(number_format or default, fill))
    if names:
        sheet.autofilter(0, 0, len(frame), len(names) - 1)


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
    if kind == "text":
        text = cell_text(value)
        return (_xml_safe(text) if text else None), "@"
    if kind == "int":
        value = _integer_or_text(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value, "0"
    if hasattr(value, "item") and not isinstance(value, (str, pd.Timestamp)):
        value = value.item()  # numpy scalar -> Python
    if value is None or (not isinstance(value, str) and _is_missing(value)):
        return None, None
    if isinstance(value, bool) or (isinstance(value, int) and abs(value) < 10**15):
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
    longest = len(str(name))
    if len(values):
        texts = values.map(cell_text)
        longest = max(longest, int(texts.str.len().max()))
    return float(min(longest + 2, MAX_COLUMN_WIDTH))
