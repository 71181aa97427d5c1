"""What a batch page shows beyond the ledger: the beneficiaries' names and the rows never sent.

The ledger keeps what paying needs (email, amount, reference), not names, and it never holds
the invalid rows: they were never sent.  A finance person checking a batch looks for people by
name and needs to see which rows still have to be fixed, so the batch page reads both from the
results sheet the run wrote (a batch run from the CLI has one too).  Read once per version of
the sheet: a page reload does not parse a workbook of thousands of rows again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from batch_payouts.errors import BatchError
from batch_payouts.files.read import read_table
from batch_payouts.report import RESULT_COLUMNS
from batch_payouts.rules.headers import resolve_headers
from batch_payouts.states import INVALID

INVALID_SHOWN = 500


@dataclass(frozen=True)
class SheetFacts:
    names: dict[int, str] = field(default_factory=dict)  # row number -> the beneficiary's name
    invalid: tuple[dict[str, object], ...] = ()  # row, name, error (as the results sheet words it)
    invalid_total: int = 0


def sheet_facts(path: Path | None) -> SheetFacts:
    """Names and invalid rows of a results sheet; nothing when there is none or it cannot be read
    (the page still shows the ledger: the sheet only adds to it)."""
    if path is None or not path.is_file():
        return SheetFacts()
    stat = path.stat()
    return _read(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _read(path: str, _mtime_ns: int, _size: int) -> SheetFacts:
    try:
        frame = read_table(path)
        headers = resolve_headers([c for c in frame.columns if c not in RESULT_COLUMNS])
    except (BatchError, OSError, ValueError):
        return SheetFacts()
    if "row" not in frame.columns or "status" not in frame.columns:
        return SheetFacts()
    name_column = headers.canonical.get("name")
    numbers = [int(float(value)) if str(value).strip() else 0 for value in frame["row"].tolist()]
    names_in_order = frame[name_column].tolist() if name_column else [""] * len(numbers)
    names = {number: str(name or "") for number, name in zip(numbers, names_in_order)}
    errors = frame["error_message"].tolist() if "error_message" in frame.columns else [""] * len(numbers)
    invalid = [
        {"row": number, "name": names[number], "error": str(error or "")}
        for number, status, error in zip(numbers, frame["status"].tolist(), errors)
        if status == INVALID
    ]
    return SheetFacts(names=names, invalid=tuple(invalid[:INVALID_SHOWN]), invalid_total=len(invalid))
