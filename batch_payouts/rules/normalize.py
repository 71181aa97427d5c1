"""Normalisation: typed values beside the text they came from.

Amount text becomes exact integer cents (``Decimal``), phones digits, dates unix
seconds; the raw text stays beside each parsed value so a parse failure is just
another failed check of the schema.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from datetime import time as clock
from decimal import Decimal

import numpy as np
import pandas as pd

from batch_payouts.files.cells import flagged_positions
from batch_payouts.rules.columns import CANONICAL_COLUMNS, DEFAULT_CURRENCY, LOCAL_TIMEZONE, MAX_AMOUNT_CENTS
from batch_payouts.rules.headers import HeaderMap

_PHONE_SEPARATORS = r"[\s\-.()]+"
_AMOUNT_SYNTAX = r"[+-]?(?=\.?[0-9])(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]*)(?:\.[0-9]*)?"
_PHONE_SEPARATOR = re.compile(_PHONE_SEPARATORS)
_PHONE_MARK = re.compile(r"[\s\-.()+]")
_AMOUNT = re.compile(_AMOUNT_SYNTAX)
_WHITESPACE = re.compile(r"\s+")
_PESO_SIGN = re.compile(r"^([+-]?)\$([+-]?)")

# Normalisation works on plain lists of str, one per column: C-level
# ``map(str.strip, ...)`` and one check of a whole column joined into one
# string ("is any cell not NFC?") instead of a pandas string method per cell;
# parsing runs once per distinct text (a batch shares a few amounts, dates and
# currencies).  Every step gives exactly the text the pandas methods gave.


def _cells(raw: pd.DataFrame, header: str | None) -> list[str]:
    """A column as stripped text ("" for empty), one str per row in order."""
    if header is None:
        return [""] * len(raw)
    values = raw[header].tolist()
    try:  # the usual case: read_table gives text only
        return list(map(str.strip, values))
    except TypeError:  # another type somewhere (str.strip refuses it): cell by cell
        return [_cell_text(value) for value in values]


def _cell_text(value: object) -> str:
    if type(value) is str:
        return value.strip()
    if value is None or value is pd.NA:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value).strip()


def canonical_cells(raw: pd.DataFrame, headers: HeaderMap) -> dict[str, list[str]]:
    """Every canonical column as stripped text, as the user typed it."""
    return {column: _cells(raw, headers.canonical.get(column)) for column in CANONICAL_COLUMNS}


def _nfc(texts: list[str]) -> list[str]:
    """``unicodedata.normalize("NFC", ...)`` of every text; one check of the whole
    column first (NUL is a stable code point, so the joined text is NFC exactly
    when every part is)."""
    if unicodedata.is_normalized("NFC", "\x00".join(texts)):
        return texts
    return [unicodedata.normalize("NFC", text) for text in texts]


def _int64(texts: list[str], parsed: dict[str, int | None]) -> pd.Series:
    """A nullable Int64 column (``None`` -> <NA>) holding ``parsed[text]`` for
    every text, built from the distinct texts without converting cell by cell."""
    order = {text: position for position, text in enumerate(parsed)}
    codes = np.fromiter(map(order.__getitem__, texts), dtype=np.intp, count=len(texts))
    values = list(parsed.values())
    mask = np.array([value is None for value in values], dtype=bool)
    data = np.array([0 if value is None else value for value in values], dtype=np.int64)
    return pd.Series(pd.arrays.IntegerArray(data[codes], mask[codes]))


def _parse_amount(text: str, pesos: bool) -> Decimal | None:
    """One amount text -> exact cents, or None when it is not a well-formed amount."""
    cleaned = _WHITESPACE.sub("", text)
    if pesos:
        cleaned = _PESO_SIGN.sub(r"\1\2", cleaned)
    if _AMOUNT.fullmatch(cleaned) is None:
        return None
    value = Decimal(cleaned.replace(",", "")) * (Decimal(100) if pesos else Decimal(1))
    return None if abs(value) >= MAX_AMOUNT_CENTS else value


def _parse_amounts(texts: list[str], amount_unit: str) -> tuple[pd.Series, pd.Series, list[str]]:
    """Amount text -> (readable: a well-formed amount, whole cents as Int64
    (<NA> unless readable and whole), the amount as the duplicate-row key
    compares it).

    Accepts "3000", "3000.0", "3,000" (comma = thousands separator, as Excel
    in Mexico shows it); in pesos also "$1,500.00" and "$ 30".  In cents a "$"
    is refused: "$1,500" in a cents column is almost surely pesos, and
    guessing would pay 100 times less.  Each distinct text is parsed once;
    plain ASCII digits (the usual cell) need no ``Decimal``.
    """
    pesos = amount_unit == "pesos"
    readable: dict[str, bool] = {}
    whole: dict[str, int | None] = {}
    key: dict[str, str] = {}
    for text in dict.fromkeys(texts):
        if len(text) <= 16 and text.isascii() and text.isdigit():  # longer: leading zeros, or over the limit
            cents = int(text) * 100 if pesos else int(text)
            if cents < MAX_AMOUNT_CENTS:
                readable[text], whole[text], key[text] = True, cents, str(cents)
                continue
        value = _parse_amount(text, pesos)
        cents = int(value) if value is not None and value == value.to_integral_value() else None
        readable[text], whole[text] = value is not None, cents
        key[text] = "?" + text if cents is None else str(cents)
    is_readable = pd.Series(np.fromiter(map(readable.__getitem__, texts), dtype=bool, count=len(texts)))
    return is_readable, _int64(texts, whole), list(map(key.__getitem__, texts))


def _expiry_seconds(text: str) -> int | None:
    """ISO date or datetime -> unix seconds.  A bare date means the end of that
    day; a time without offset is Mexico City time."""
    try:
        try:
            moment = datetime.combine(date.fromisoformat(text), clock(23, 59, 59), LOCAL_TIMEZONE)
        except ValueError:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=LOCAL_TIMEZONE)
        return int(moment.timestamp())
    except (ValueError, OverflowError, OSError):
        return None


def _parse_expiries(texts: list[str]) -> pd.Series:
    """Distinct values only: a batch usually shares one or two expiry dates."""
    seconds = {text: _expiry_seconds(text) if text else None for text in dict.fromkeys(texts)}
    return _int64(texts, seconds)


def _currencies(texts: list[str]) -> list[str]:
    """Upper case; empty means ``DEFAULT_CURRENCY``."""
    upper = {text: text.upper() if text != "" else DEFAULT_CURRENCY for text in dict.fromkeys(texts)}
    return list(map(upper.__getitem__, texts))


def _phones(texts: list[str]) -> list[str]:
    """Separators (spaces, - . ( )) and one leading + removed; only the cells
    that hold one of them are rewritten."""
    phones = texts
    for position in flagged_positions(_PHONE_MARK, texts):
        if phones is texts:
            phones = list(texts)
        digits = _PHONE_SEPARATOR.sub("", texts[position])
        phones[position] = digits[1:] if digits.startswith("+") else digits
    return phones


def _metadata(raw: pd.DataFrame, headers: HeaderMap) -> tuple[list[dict[str, str]], list[list[str]]]:
    """Per-row metadata dicts (non-empty cells only) and what the duplicate-row
    key compares of them: each metadata column's cells, in the file's column order
    (every row of a file has the same columns, so the names add nothing).

    Rows with the same metadata share one dict (nothing changes a row's metadata:
    a request body copies it): a million rows of a few departments hold a few
    dicts, not a million (~180 bytes each)."""
    keys = list(headers.metadata)
    empty: dict[str, str] = {}
    if not keys:
        return [empty] * len(raw), []
    columns = [_cells(raw, headers.metadata[key]) for key in keys]
    if len(keys) == 1:
        (key,), (column,) = keys, columns
        made = {value: {key: value} if value else empty for value in dict.fromkeys(column)}
        return list(map(made.__getitem__, column)), columns
    shared: dict[tuple[str, ...], dict[str, str]] = {}
    records = []
    for values in zip(*columns):
        record = shared.get(values)
        if record is None:
            record = shared[values] = {k: v for k, v in zip(keys, values) if v} or empty
        records.append(record)
    return records, columns


def _casefolded(texts: list[str]) -> list[str]:
    """``str.casefold`` of every text, where it changes the text: ASCII without a capital (the
    usual address) is its own case fold, so a block of those is kept as it is rather than
    copied (a million addresses' copies were ~80 MB, issue 17)."""
    folded: list[str] = []
    for start in range(0, len(texts), _FOLD_BLOCK):
        block = texts[start:start + _FOLD_BLOCK]
        joined = "\x00".join(block)
        if joined.isascii() and (joined.islower() or joined.lower() == joined):
            folded.extend(block)
        else:
            folded.extend(text if text.isascii() and text.islower() else text.casefold() for text in block)
    return folded


_FOLD_BLOCK = 65_536


def _group_ids(columns: list[list[str]]) -> np.ndarray:
    """One int64 per row, equal exactly when the rows are equal in every column: what
    ``duplicated`` compares, without a joined key string per row (100 bytes each)."""
    ids = np.zeros(len(columns[0]) if columns else 0, dtype=np.int64)
    distinct = 1  # ids are < distinct
    for column in columns:
        codes, uniques = pd.factorize(np.asarray(column, dtype=object))
        if distinct * max(len(uniques), 1) >= _ID_LIMIT:  # renumbered densely first (< rows): never overflows
            ids, kept = pd.factorize(ids)
            distinct = max(len(kept), 1)
        ids = ids * len(uniques) + codes
        distinct *= max(len(uniques), 1)
    return ids.astype(np.int64, copy=False)


_ID_LIMIT = 2**62  # combined ids stay below it: int64 with room


def normalize(
    raw: pd.DataFrame, headers: HeaderMap, amount_unit: str = "cents", cells: dict[str, list[str]] | None = None
) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """The table ``build_schema`` validates (positional index), one column each
    for the parsed value and, where parsing can fail, the text it came from;
    and each row's metadata, which no rule looks into (so it stays out of the table).
    ``cells`` (from ``canonical_cells``) saves reading the columns twice."""
    if cells is None:
        cells = canonical_cells(raw, headers)
    amount_readable, amount, amount_key = _parse_amounts(cells["amount"], amount_unit)
    currency = _currencies(cells["currency"])
    reason = _nfc(cells["reason"])
    metadata, metadata_columns = _metadata(raw, headers)
    compared = [_casefolded(cells["email"]), amount_key, currency, reason, *metadata_columns]
    duplicate_key = _group_ids(compared)  # rows equal in email (any case), amount, currency, reason and metadata
    del compared

    def text(values: list[str]) -> pd.Series:
        # Plain Python str in an object column: what pandera's ``str`` accepts
        # (tests/rules/test_schema.py runs its dtype checks on this table), without
        # pandas' per-cell conversion into its string dtype.
        return pd.Series(values, dtype=object)

    table = pd.DataFrame(
        {
            "name": text(_nfc(cells["name"])),
            "email": text(cells["email"]),
            "phone": text(_phones(cells["phone"])),
            "amount_text": text(cells["amount"]),
            "amount_readable": amount_readable,
            "amount": amount,
            "currency": text(currency),
            "reason": text(reason),
            "customer_id": text(cells["customer_id"]),
            "external_id": text(cells["external_id"]),
            "expires_text": text(cells["expires_at"]),
            "expires_at": _parse_expiries(cells["expires_at"]),
            "duplicate_key": pd.Series(duplicate_key),
        },
        copy=False,  # the columns were just built for this frame
    )
    return table, metadata
