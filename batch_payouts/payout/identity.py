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
from collections.abc import Iterator
from typing import Any

import pandas as pd

IDENTITY_COLUMNS = ("name", "email", "phone", "amount", "currency", "reason", "customer_id", "expires_at", "metadata")


def _canonical_cell(value: Any) -> Any:
    """A cell as the identities see it: text and integers (bools too) as they are, any missing
    value as None, a NumPy scalar as its Python value."""
    if isinstance(value, (str, int)):  # the usual cell: kept as it is, without pd.isna's dispatch
        return value
    if value is None or (not isinstance(value, (list, dict)) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _canonical_columns(validated: pd.DataFrame) -> list[list[Any]]:
    """Each of ``IDENTITY_COLUMNS`` as a list of canonical cells (a column the frame lacks: all
    None): the email lower-cased, the metadata as sorted (key, value) pairs.  Column by column,
    so a 100k-row batch builds no dict per row to read nine cells of it."""
    count = len(validated)
    out = []
    for column in IDENTITY_COLUMNS:
        cells = _python_values(validated[column]) if column in validated.columns else [None] * count
        if column == "metadata":
            out.append([sorted((value or {}).items()) for value in cells])
        elif column == "email":
            out.append([value.lower() if isinstance(value, str) else _canonical_cell(value) for value in cells])
        else:
            out.append([value if type(value) is str else _canonical_cell(value) for value in cells])
    return out


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


# What ``json.dumps(value, ensure_ascii=False, default=str)`` builds on every call, built once:
# the same text (every id below is pinned), without an encoder per row of a 100k-row batch.
_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode


def identities(validated: pd.DataFrame, key_fp: str) -> tuple[str, pd.Series]:
    """``batch_identity`` and ``row_keys`` in one pass: each row is made canonical and encoded once.

    A row's text for the batch digest is ``[number, *canonical]``, which is its row-key text
    ``[*canonical]`` with ``number, `` spliced in after the bracket (the list is never empty);
    a tuple encodes as the list it stands for."""
    digest = hashlib.sha256(key_fp.encode())
    keys: dict[Any, str] = {}
    seen: dict[str, int] = {}
    numbers = validated.index.tolist()
    externals = _python_values(validated["external_id"]) if "external_id" in validated.columns else [None] * len(numbers)
    for number, external, canonical in zip(numbers, externals, zip(*_canonical_columns(validated))):
        text = _ENCODE(canonical)
        digest.update(f"[{int(number)}, {text[1:]}".encode())
        external = external.strip() if isinstance(external, str) else ""
        if external:
            keys[number] = f"x:{external}"
            continue
        content = hashlib.sha256(text.encode()).hexdigest()[:20]
        seen[content] = seen.get(content, 0) + 1
        keys[number] = f"h:{content}.{seen[content]}"
    return digest.hexdigest(), pd.Series(keys, dtype=object)


def batch_identity(validated: pd.DataFrame, key_fp: str) -> str:
    """SHA-256 of the normalised rows and the key's fingerprint.

    The same file gives the same batch, so a rerun resumes it; the key's
    fingerprint keeps a test run and a live run of one file apart.
    """
    return identities(validated, key_fp)[0]


def row_keys(validated: pd.DataFrame) -> pd.Series:
    """Each row's identity: ``x:<external_id>``, else a content hash plus its occurrence number."""
    return identities(validated, "")[1]


def payout_fingerprint(email: str, amount: int, currency: str, reason: str) -> str:
    """What makes two payouts 'the same payment' for the repeat guard."""
    text = json.dumps([email.strip().lower(), int(amount), currency.upper(), reason.strip()], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def idempotency_key(batch_id: str, row_key: str, operation: str) -> str:
    """Deterministic, so every retry and every rerun sends the same key."""
    return "bp-" + hashlib.sha256(f"{batch_id}\0{row_key}\0{operation}".encode()).hexdigest()[:40]
