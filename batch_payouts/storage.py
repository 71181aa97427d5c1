"""A full disk, said plainly: which file, how much space is left, and that a rerun is safe.

The ledger, the results sheet and the audit log may each live on a disk that
fills up in the middle of a batch.  Whatever was written before is intact
(SQLite rolls the failed transaction back; the sheet is written through a temp
file; each audit line is fsynced), and a row whose order may exist at Conekta
stays ``in_flight`` in the ledger and is looked up by the next run.  So the
message can promise what the user most needs to hear: nothing is paid twice.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


class DiskFull(BatchError):
    """No space left under one of the batch's files: exit 2 with ``DISK_FULL``."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = Path(path)
        self.what = what
        super().__init__(TEXT.DISK_FULL, path=str(path), what=TEXT.WHAT[what].format("en"), free=free_space_text(path))

    def message(self, lang: str = "es") -> str:
        return self.text.format(lang, **{**self.params, "what": TEXT.WHAT[self.what].format(lang)})


@contextmanager
def naming_full_disk(path: Path, what: str) -> Iterator[None]:
    """Turn a full-disk error raised inside the block (a raw ``OSError``, or a ``BatchError``
    caused by one) into ``DiskFull`` for ``path``; a ``DiskFull`` about another file passes as is."""
    try:
        yield
    except DiskFull:
        raise
    except Exception as error:
        if is_disk_full(error):
            raise DiskFull(path, what) from error
        raise


def is_disk_full(error: BaseException | None) -> bool:
    """True for SQLite's "database or disk is full" and for ENOSPC / EDQUOT, also when wrapped."""
    seen = 0
    while error is not None and seen < 5:
        if getattr(error, "sqlite_errorname", "") == "SQLITE_FULL":  # sqlite3.Error, without importing it
            return True
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def free_space_text(path: Path) -> str:
    """The free space of the disk holding ``path`` (or its nearest existing folder), as "12.0 KB"."""
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = float(shutil.disk_usage(folder).free)
    except OSError:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if free < 1024 or unit == "GB":
            return f"{free:.0f} {unit}" if unit == "B" else f"{free:.1f} {unit}"
        free /= 1024
    return "?"  # pragma: no cover - the loop always returns
