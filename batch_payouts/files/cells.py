"""Cell helpers shared by reading, writing and the rules: values as text, and fast column scans.

Reading (``read.py``), writing (``write.py``) and validation (``rules/schema.py``)
all look at whole columns of text cells.  The helpers that make that fast and
exact live here, once: ``cell_text`` (a value as the text Excel shows),
``joined_cells`` / ``flagged_positions`` (one C-level scan per column instead of
a Python call per cell), ``is_formula_like`` (CSV/formula injection) and
``paused_gc`` (no cyclic collections during a bulk step).
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import math
import re
from contextlib import contextmanager
from decimal import Decimal

import numpy as np
import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


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


def is_formula_like(text: str) -> bool:
    """True when a spreadsheet could run ``text`` as a formula (CSV injection)."""
    return text.startswith(FORMULA_PREFIXES)


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


def short_detail(exc: BaseException, limit: int = 160) -> str:
    """An exception as one short line for a message's "(Detalle: …)": enough to
    search for, never a traceback."""
    text = str(exc).strip().replace("\n", " ") or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def column_letter(position: int) -> str:
    """0-based column position -> Excel letters (0 -> A, 27 -> AB)."""
    letters = ""
    position += 1
    while position:
        position, rest = divmod(position - 1, 26)
        letters = chr(65 + rest) + letters
    return letters
