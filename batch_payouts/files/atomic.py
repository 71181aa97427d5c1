"""Replacing a file all at once or not at all: a temp file beside it, then ``os.replace``.

Why: a results sheet half-written when the process dies (kill, power cut, disk
full) would look like a finished one with rows missing.  Writing to a temp file
in the target's own folder (same filesystem, so the rename is atomic) means the
reader sees the old file or the new one, never a mix; the temp file's name comes
from ``leftovers.temp_prefix``, so a later run can remove one a killed writer left.
The result keeps the old file's permissions (``mkstemp`` would make it private).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from batch_payouts.errors import BatchError
from batch_payouts.files.cells import short_detail
from batch_payouts.files.leftovers import temp_prefix
from batch_payouts.i18n import catalogue

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


def atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """Write through a temp file in the target's folder, then ``os.replace``."""
    try:
        handle, temp_name = tempfile.mkstemp(prefix=temp_prefix(target), suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise BatchError(TEXT.CANNOT_WRITE, path=str(target), detail=exc.strerror or short_detail(exc)) from exc
    os.close(handle)
    temp = Path(temp_name)
    try:
        write(temp)
        _match_permissions(temp, target)
        os.replace(temp, target)
    except OSError as exc:
        _remove_quietly(temp)
        raise BatchError(TEXT.CANNOT_WRITE, path=str(target), detail=exc.strerror or short_detail(exc)) from exc
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
