"""Temp files a killed writer left beside a results sheet, and their cleanup.

A sheet is written to a temp file in its own folder and then ``os.replace``d,
so a crash never leaves half a sheet under the real name -- but a SIGKILL in
the middle leaves the temp file itself (``.pagos.results.xlsx.<pid>-<random>.tmp``).
The name carries the writer's pid, so the next run can tell a leftover from
a sheet another process is writing right now: it removes the temp files of
writers that are gone, and any of ours older than ``STALE_AFTER`` (a sheet
takes seconds to write; that old, the pid has been reused or the file comes
from another machine sharing the folder, or from a version without pids).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

STALE_AFTER = 15 * 60.0  # seconds


def temp_prefix(target: Path) -> str:
    """The start of a temp file's name for ``target``: hidden, the target's name, the writer's pid."""
    return f".{Path(target).name}.{os.getpid()}-"


def remove_leftovers(target: Path, *, now: float | None = None) -> list[Path]:
    """Remove stray temp files of earlier writers of ``target``; return what was removed.

    Never raises: a leftover that cannot be removed is only clutter, not a reason to stop a batch.
    """
    target = Path(target)
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(?:(\d+)-)?[^./]+\.tmp")
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        candidates = [entry for entry in os.scandir(target.parent) if pattern.fullmatch(entry.name)]
    except OSError:
        return removed
    for entry in candidates:
        pid_text = pattern.fullmatch(entry.name).group(1)
        pid = int(pid_text) if pid_text else None
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
            writer_gone = pid is not None and pid != os.getpid() and not _alive(pid)
            if writer_gone or age > STALE_AFTER:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone already (its writer finished), or not ours to remove
            continue
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
