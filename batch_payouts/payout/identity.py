"""Row and batch identity: the hashes a rerun finds its batch, its rows and its requests by.

These values are stored in ledgers and sent to Conekta (metadata, Idempotency-Keys), so
they must never change between versions: the same file gives the same batch id, the same
row gives the same row key, and every retry of a request the same Idempotency-Key.  Only
normalised content counts (email case, missing cells, metadata order), never how the
sheet was laid out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd

IDENTITY_COLUMNS = ("name", "email", "phone", "amount", "currency", "reason", "customer_id", "expires_at", "metadata")


def _canonical_row(row: Mapping[str, Any]) -> list[Any]:
    values: list[Any] = []
    for column in IDENTITY_COLUMNS:
        value = row.get(column)
        if column == "email" and isinstance(value, str):
            value = value.lower()
        if column == "metadata":
            value = sorted((value or {}).items())
        elif isinstance(value, (str, int)):  # the usual cell (bool too): kept as it is, without pd.isna's dispatch
            pass
        elif value is None or (not isinstance(value, (list, dict)) and pd.isna(value)):
            value = None
        elif hasattr(value, "item"):
            value = value.item()
        values.append(value)
    return values


def rows_of(validated: pd.DataFrame) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, row as a dict of Python values): built from whole columns (``tolist`` gives
    Python ints, bools, str and ``pd.NA``), not a Series per row (iterrows is ~10x slower) nor
    ``to_dict("records")``, which boxes every cell one by one."""
    columns, values = column_values(validated)
    return zip(validated.index.tolist(), (dict(zip(columns, row)) for row in zip(*values)))


def column_values(validated: pd.DataFrame) -> tuple[list[str], list[list[Any]]]:
    """The column names as text and each column's cells as Python values: what ``rows_of``
    builds its dicts from (``pipeline`` builds one only for a row it sends)."""
    columns = [str(column) for column in validated.columns]
    return columns, [_python_values(validated[column]) for column in validated.columns]


def _python_values(column: pd.Series) -> list[Any]:
    """A column's cells as ``to_dict`` gives them: an extension column's missing values as None."""
    if isinstance(column.dtype, pd.api.extensions.ExtensionDtype) and column.hasnans:
        return column.to_numpy(dtype=object, na_value=None).tolist()
    return column.tolist()


def batch_identity(validated: pd.DataFrame, key_fp: str) -> str:
    """SHA-256 of the normalised rows and the key's fingerprint.

    The same file gives the same batch, so a rerun resumes it; the key's
    fingerprint keeps a test run and a live run of one file apart.
    """
    digest = hashlib.sha256(key_fp.encode())
    for number, row in rows_of(validated):
        digest.update(json.dumps([int(number), *_canonical_row(row)], ensure_ascii=False, default=str).encode())
    return digest.hexdigest()


def row_keys(validated: pd.DataFrame) -> pd.Series:
    """Each row's identity: ``x:<external_id>``, else a content hash plus its occurrence number."""
    keys: dict[Any, str] = {}
    seen: dict[str, int] = {}
    for number, row in rows_of(validated):
        external = (row.get("external_id") or "").strip() if isinstance(row.get("external_id"), str) else ""
        if external:
            keys[number] = f"x:{external}"
            continue
        content = hashlib.sha256(json.dumps(_canonical_row(row), ensure_ascii=False, default=str).encode()).hexdigest()[:20]
        seen[content] = seen.get(content, 0) + 1
        keys[number] = f"h:{content}.{seen[content]}"
    return pd.Series(keys, dtype=object)


def payout_fingerprint(email: str, amount: int, currency: str, reason: str) -> str:
    """What makes two payouts 'the same payment' for the repeat guard."""
    text = json.dumps([email.strip().lower(), int(amount), currency.upper(), reason.strip()], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def idempotency_key(batch_id: str, row_key: str, operation: str) -> str:
    """Deterministic, so every retry and every rerun sends the same key."""
    return "bp-" + hashlib.sha256(f"{batch_id}\0{row_key}\0{operation}".encode()).hexdigest()[:40]
