"""Every published contract file, rendered from the code; written by `batch-payouts schemas write`.

Why one catalogue: the drift test and the command must agree on the exact bytes of every file,
so both call ``render()``; nothing else decides a file's name, order of keys or formatting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from batch_payouts.contracts import documents, inputs, records

REGENERATE = "batch-payouts schemas write schemas/"
# The hand-written file in the folder, never generated or compared.
HAND_WRITTEN = ("README.md",)


def _json(builder: Callable[[], dict]) -> Callable[[], str]:
    return lambda: json.dumps(builder(), indent=2, ensure_ascii=False) + "\n"


CATALOGUE: dict[str, Callable[[], str]] = {
    "beneficiaries.yaml": inputs.pandera_yaml,
    "beneficiaries.schema.json": _json(inputs.beneficiary_row_schema),
    **{name: _json(builder) for name, builder in documents.DOCUMENTS.items()},
    **{name: _json(builder) for name, builder in records.RECORDS.items()},
}


def render() -> dict[str, str]:
    """File name -> its exact text."""
    return {name: build() for name, build in CATALOGUE.items()}


def write(folder: Path) -> list[Path]:
    """Write every file (atomically, each through a temp file) and remove stale generated ones."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        target = folder / name
        temp = target.with_name(f".{name}.{os.getpid()}.tmp")
        temp.write_text(text, encoding="utf-8", newline="\n")
        os.replace(temp, target)
        written.append(target)
    for stale in _stale(folder):
        stale.unlink()
    return written


def _stale(folder: Path) -> list[Path]:
    """Generated-looking files no longer in the catalogue (a schema that was renamed or dropped)."""
    return sorted(path for path in folder.glob("*.schema.json") if path.name not in CATALOGUE)


def differences(folder: Path) -> list[str]:
    """Names of the files in ``folder`` that differ from what the code generates (missing, changed, stale)."""
    folder = Path(folder)
    found = []
    for name, text in render().items():
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            found.append(name)
    return found + [path.name for path in _stale(folder)]
