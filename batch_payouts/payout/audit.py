"""The audit log: an append-only, hash-chained JSON-lines record of a run.

Why a hash chain: every line carries ``prev``, the SHA-256 of the previous
line's exact bytes, and a ``seq`` number.  Changing one byte of any line
changes its hash, so the next line no longer points at it; removing,
inserting, duplicating or reordering lines breaks ``seq`` and ``prev`` at the
place where it happened.  An auditor can therefore prove, after the fact, that
no API call was edited, dropped or reordered.  A chain alone cannot notice its
*last* lines being cut off (what remains is still a valid chain), so the
ledger keeps the chain's head (last hash and line count, see
``Ledger.set_audit_head``) and ``verify(..., expected_head, expected_lines)``
compares the file with it.

Format: one JSON object per line, UTF-8, keys sorted, no spaces::

    {"duration_ms":212.4,"http_status":200,"idempotency_key":"c0f...","log_id":"6612...","method":"POST",
     "path":"/payout_orders","prev":"<64 hex>","seq":7,"ts":"2026-03-02T18:04:05.123456Z","type":"api_call"}

``prev`` of the first line is 64 zeros.  A rerun of a batch appends to the
same file and continues its chain.  Each line is flushed and fsynced before
``append`` returns, so a crash loses at most the line being written; such a
half-written last line is reported by ``verify`` as ``partial_last_line`` (a
crash, not tampering), and the next run that opens the file terminates it and
continues the chain from it, marking its first entry
``"previous_chain_broken": true`` and ``"recovered_partial_line": N``.  A file
that does not verify is never rewritten: new entries are appended and the first
one says ``"previous_chain_broken": true``.

What is logged: the run's context (file name and SHA-256, tool version,
operator, host, times, options, API base and version, mode, counts and totals)
and, per API call, only method, path, Idempotency-Key, HTTP status, Conekta's
``log_id`` and duration: no request or response bodies, no personal data, and
never the API key: ``scrub_options`` drops every option named like a secret
or holding a key-like value (``key_...``), and key-like text anywhere else in
an entry is replaced by ``[redacted]``.

This module is a library: it never prints and never exits.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from batch_payouts import __version__
from batch_payouts.errors import BatchError
from batch_payouts.i18n import DEFAULT_LANG, Text
from batch_payouts.payout.ledger import Ledger, operator_name

try:  # advisory lock between processes (POSIX); threads use a threading.Lock
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

ZERO_HASH = "0" * 64
REDACTED = "[redacted]"
RESERVED_FIELDS = ("seq", "ts", "prev")
SECRET_NAME_PARTS = ("key", "secret", "token", "password")
CONEKTA_KEY = re.compile(r"(?<![A-Za-z0-9_])key_[A-Za-z0-9_]+")

# Problem codes.  The first group means the file was changed after it was written.
BAD_JSON = "bad_json"
BAD_SEQ = "bad_seq"
BAD_PREV = "bad_prev"
TRUNCATED_TAIL = "truncated_tail"
BAD_HEAD = "bad_head"
LINES_AFTER_HEAD = "lines_after_head"
# ... and these mean a crash in the middle of a write, not tampering.
PARTIAL_LAST_LINE = "partial_last_line"
RECOVERED_PARTIAL_LINE = "recovered_partial_line"
CRASH_CODES = frozenset({PARTIAL_LAST_LINE, RECOVERED_PARTIAL_LINE})

CANNOT_OPEN = Text(
    es="No se pudo abrir el registro de auditoría «{path}»: {error}. Revisa que la carpeta exista y tengas permiso de escritura.",
    en="Could not open the audit log '{path}': {error}. Check that the folder exists and that you may write to it.",
)
CANNOT_WRITE = Text(
    es="No se pudo escribir en el registro de auditoría «{path}»: {error}. Revisa el espacio en disco y los permisos.",
    en="Could not write to the audit log '{path}': {error}. Check the free disk space and the permissions.",
)

MESSAGES: dict[str, Text] = {
    BAD_JSON: Text(
        es="Línea {line}: no es un registro válido (JSON dañado o sin seq, ts o prev): la línea fue modificada.",
        en="Line {line}: not a valid entry (damaged JSON, or no seq, ts or prev): the line was modified.",
    ),
    BAD_SEQ: Text(
        es="Línea {line}: el número de secuencia no sigue al de la línea anterior: falta, sobra, se repite o cambió de orden una línea.",
        en="Line {line}: the sequence number does not follow the previous line's: a line is missing, added, duplicated or out of order.",
    ),
    BAD_PREV: Text(
        es="Línea {line}: la línea fue modificada o falta la anterior (el hash no coincide): la línea anterior fue editada, o se quitó, insertó o movió una línea aquí.",
        en="Line {line}: the line was modified or the previous one is missing (the hash does not match): the previous line was edited, or a line was removed, inserted or moved here.",
    ),
    TRUNCATED_TAIL: Text(
        es="Línea {line}: faltan líneas al final: la bitácora registró {expected_lines} líneas y el archivo tiene {lines}; se quitaron las últimas.",
        en="Line {line}: lines are missing at the end: the ledger recorded {expected_lines} lines and the file has {lines}; the last ones were removed.",
    ),
    BAD_HEAD: Text(
        es="Línea {line}: no es la última línea que registró la bitácora (el hash no coincide): fue modificada, o se quitaron o cambiaron líneas al final.",
        en="Line {line}: not the last line the ledger recorded (the hash does not match): it was modified, or lines at the end were removed or replaced.",
    ),
    LINES_AFTER_HEAD: Text(
        es="Línea {line} en adelante: hay líneas después de la última que registró la bitácora: una ejecución que se interrumpió antes de registrarla, o líneas añadidas después. Revísalas.",
        en="Line {line} onwards: there are lines after the last one the ledger recorded: a run that stopped before recording it, or lines added afterwards. Check them.",
    ),
    PARTIAL_LAST_LINE: Text(
        es="Línea {line}: quedó incompleta porque el programa se interrumpió mientras la escribía (un corte, no una alteración); esa llamada no quedó registrada.",
        en="Line {line}: left incomplete because the program stopped while writing it (a crash, not tampering); that call was not recorded.",
    ),
    RECOVERED_PARTIAL_LINE: Text(
        es="Línea {line}: quedó incompleta por una interrupción al escribirla (un corte, no una alteración); la ejecución siguiente continuó la cadena desde ella.",
        en="Line {line}: left incomplete by a stop while it was written (a crash, not tampering); the next run continued the chain from it.",
    ),
}
VERDICT_OK = Text(
    es="Registro de auditoría íntegro: {lines} líneas, ninguna modificada, quitada, insertada ni reordenada.",
    en="Audit log intact: {lines} lines, none modified, removed, inserted or reordered.",
)
VERDICT_CRASH = Text(
    es="Sin alteraciones en {lines} líneas; solo hubo una interrupción al escribir (ver arriba).",
    en="No tampering in {lines} lines; only an interrupted write (see above).",
)
VERDICT_TAMPERED = Text(
    es="El registro de auditoría NO es íntegro: fue modificado después de escribirse ({count} problemas).",
    en="The audit log is NOT intact: it was changed after it was written ({count} problems).",
)


class Problem(NamedTuple):
    line: int  # 1-based line number in the file
    code: str
    detail: str  # English, technical; ``describe`` gives the user's language


@dataclass
class VerifyResult:
    """``ok``: no sign of tampering (a crash mid-write alone keeps it true; see ``problems``)."""

    ok: bool
    lines: int
    problems: list[Problem] = field(default_factory=list)
    last_hash: str = ZERO_HASH
    expected_head: str | None = None
    expected_lines: int | None = None

    @property
    def crashed(self) -> bool:
        return any(p.code in CRASH_CODES for p in self.problems)


def line_hash(line: bytes) -> str:
    """SHA-256 hex of a line's exact bytes, without its newline."""
    return hashlib.sha256(line).hexdigest()


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- scrubbing ---------------------------------------------------------------
def _secret_name(name: object) -> bool:
    lowered = str(name).lower()
    return any(part in lowered for part in SECRET_NAME_PARTS)


def _looks_like_key(value: object) -> bool:
    return isinstance(value, str) and CONEKTA_KEY.search(value) is not None


_DROP = object()


def _scrub_value(value: Any) -> Any:
    if _looks_like_key(value):
        return _DROP
    if isinstance(value, dict):
        return scrub_options(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [v for v in (_scrub_value(item) for item in value) if v is not _DROP]
    return value


def scrub_options(options: dict) -> dict:
    """A copy without secrets: drops every item whose name contains key/secret/token/password
    and every value that looks like a Conekta key (``key_...``), in nested dicts and lists too."""
    clean: dict = {}
    for name, value in options.items():
        if _secret_name(name):
            continue
        value = _scrub_value(value)
        if value is not _DROP:
            clean[name] = value
    return clean


def _redact(value: Any) -> Any:
    """Entry fields other than options: key-looking text is replaced in place, so a path stays readable."""
    if isinstance(value, str):
        return CONEKTA_KEY.sub(REDACTED, value)
    if isinstance(value, dict):
        return {name: _redact(item) for name, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_redact(item) for item in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy / pandas scalars
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable in an audit entry: {type(value).__name__}")


def encode_line(record: dict) -> bytes:
    return json.dumps(
        record, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_json_default
    ).encode("utf-8")


# -- reading and verifying ---------------------------------------------------
@dataclass
class _Scan:
    lines: list[bytes]  # newline-terminated lines, newline removed
    partial: bytes | None  # bytes after the last newline, if any
    entries: list[dict | None]  # parsed entry per complete line, None if not an entry


_HASH = re.compile(r"[0-9a-f]{64}")  # compiled once: this runs on every line of every reopened log


def _parse(line: bytes) -> dict | None:
    try:
        entry = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(entry, dict):
        return None
    seq, prev, ts = entry.get("seq"), entry.get("prev"), entry.get("ts")
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(ts, str):
        return None
    if not isinstance(prev, str) or not _HASH.fullmatch(prev):
        return None
    # Keep only what the chain checks read: a log of a 100,000-row batch has 200,000+
    # lines, and whole entries held at once would cost hundreds of MB on every reopen.
    return {"seq": seq, "prev": prev, "recovered_partial_line": entry.get("recovered_partial_line")}


def _scan(data: bytes) -> _Scan:
    parts = data.split(b"\n")
    partial = parts.pop() or None  # "" after a final newline
    return _Scan(parts, partial, [_parse(line) for line in parts])


def _chain_problems(scan: _Scan) -> list[Problem]:
    problems: list[Problem] = []
    prev_hash = ZERO_HASH
    last_seq, last_seq_line = 0, 0  # the last parsed seq and its line number
    for index, (line, entry) in enumerate(zip(scan.lines, scan.entries)):
        number = index + 1
        if entry is None:
            nxt = scan.entries[index + 1] if index + 1 < len(scan.entries) else None
            recovered = (
                nxt is not None
                and nxt.get("recovered_partial_line") == number
                and nxt.get("prev") == line_hash(line)
            )
            if recovered:
                problems.append(Problem(number, RECOVERED_PARTIAL_LINE, (
                    "an incomplete line from a write interrupted by a crash, terminated and continued by the next run; "
                    "this is not tampering"
                )))
            else:
                problems.append(Problem(number, BAD_JSON, "not a JSON object with integer seq, string ts and 64-hex prev"))
        else:
            expected_seq = last_seq + (number - last_seq_line)
            if entry["seq"] != expected_seq:
                problems.append(Problem(number, BAD_SEQ, (
                    f"seq is {entry['seq']}, expected {expected_seq}: a line is missing, duplicated, inserted or reordered"
                )))
            if entry["prev"] != prev_hash:
                problems.append(Problem(number, BAD_PREV, (
                    "prev does not match the SHA-256 of the previous line: the previous line was edited, "
                    "or a line was removed, inserted or reordered here"
                )))
            last_seq, last_seq_line = entry["seq"], number
        prev_hash = line_hash(line)
    return problems


def _head_problems(
    hashes: list[str], expected_head: str | None, expected_lines: int | None
) -> list[Problem]:
    count = len(hashes)
    last_hash = hashes[-1] if hashes else ZERO_HASH
    if expected_lines is not None:
        if count < expected_lines:
            return [Problem(count + 1, TRUNCATED_TAIL, (
                f"the ledger recorded {expected_lines} lines, the file has {count}: "
                f"the last {expected_lines - count} line(s) were removed"
            ))]
        recorded = hashes[expected_lines - 1] if expected_lines else ZERO_HASH
        if expected_head is not None and recorded != expected_head:
            return [Problem(max(expected_lines, 1), BAD_HEAD, (
                f"line {expected_lines} is not the line the ledger recorded as the head: "
                "it was modified, or lines at the end were removed or replaced"
            ))]
        if count > expected_lines:
            return [Problem(expected_lines + 1, LINES_AFTER_HEAD, (
                f"{count - expected_lines} line(s) after the head the ledger recorded: a run that stopped "
                "before recording its head, or lines added afterwards"
            ))]
        return []
    if expected_head is None or expected_head == last_hash:
        return []
    if expected_head in hashes:
        position = hashes.index(expected_head) + 1
        return [Problem(position + 1, LINES_AFTER_HEAD, (
            f"{count - position} line(s) after the head the ledger recorded: a run that stopped "
            "before recording its head, or lines added afterwards"
        ))]
    if expected_head == ZERO_HASH:
        return [Problem(1, LINES_AFTER_HEAD, "the ledger recorded an empty log, the file has lines")]
    return [Problem(max(count, 1), TRUNCATED_TAIL, (
        "the head the ledger recorded is not in the file: the last line was modified or lines at the end were removed"
    ))]


def _verify_data(
    data: bytes, expected_head: str | None, expected_lines: int | None, scanned: _Scan | None = None
) -> tuple[VerifyResult, _Scan]:
    """``scanned``: ``_scan(data)`` when already at hand (parsing every line is most of the cost)."""
    scan = scanned or _scan(data)
    problems = _chain_problems(scan)
    hashes = [line_hash(line) for line in scan.lines]
    if scan.partial is not None:
        entry = _parse(scan.partial)
        if entry is None:
            problems.append(Problem(len(scan.lines) + 1, PARTIAL_LAST_LINE, (
                "the last line has no newline and is incomplete: a write interrupted by a crash, not tampering; "
                "it is not counted"
            )))
        else:  # written whole, only the newline was lost: a normal line
            tail = _Scan(scan.lines + [scan.partial], None, scan.entries + [entry])
            problems = _chain_problems(tail)
            hashes.append(line_hash(scan.partial))
            scan = tail
    problems += _head_problems(hashes, expected_head, expected_lines)
    problems.sort(key=lambda p: p.line)
    ok = not any(p.code not in CRASH_CODES for p in problems)
    result = VerifyResult(
        ok=ok, lines=len(hashes), problems=problems, last_hash=hashes[-1] if hashes else ZERO_HASH,
        expected_head=expected_head, expected_lines=expected_lines,
    )
    return result, scan


def verify(path: str | Path, expected_head: str | None = None, expected_lines: int | None = None) -> VerifyResult:
    """Check the whole chain; with the head the ledger recorded, also a cut-off tail.

    A missing file reads as empty.  ``problems`` is sorted by line number."""
    path = Path(path)
    data = path.read_bytes() if path.exists() else b""
    return _verify_data(data, expected_head, expected_lines)[0]


def describe(result: VerifyResult, lang: str = DEFAULT_LANG) -> list[str]:
    """One message per problem in the user's language, then a one-line verdict."""
    params = {"lines": result.lines, "expected_lines": result.expected_lines}
    out = [MESSAGES[p.code].format(lang, line=p.line, **params) for p in result.problems]
    tampering = [p for p in result.problems if p.code not in CRASH_CODES]
    if tampering:
        out.append(VERDICT_TAMPERED.format(lang, count=len(tampering)))
    elif result.problems:
        out.append(VERDICT_CRASH.format(lang, lines=result.lines))
    else:
        out.append(VERDICT_OK.format(lang, lines=result.lines))
    return out


# -- writing -----------------------------------------------------------------
def open_audit(stack: ExitStack, ledger: Ledger, path: Path, batch_id: str) -> AuditLog:
    """Open ``path`` checked against the head the ledger recorded, and record the new
    head when ``stack`` closes (even after an error: the head always matches the file)."""
    head = ledger.audit_head(path) or {}
    audit = stack.enter_context(
        AuditLog.open(path, expected_head=head.get("last_hash"), expected_lines=head.get("lines"))
    )

    def save_head() -> None:
        last_hash, lines = audit.head
        ledger.set_audit_head(path, batch_id, last_hash, lines)

    stack.callback(save_head)
    return audit


def audit_path_for(results_sheet: Path) -> Path:
    """The audit log beside a results sheet: ``pagos.results.xlsx`` -> ``pagos.results.audit.jsonl``."""
    return Path(results_sheet).with_suffix(".audit.jsonl")


class AuditLog:
    """An append-only, hash-chained JSON-lines file shared by the worker threads of a run."""

    def __init__(self, path: Path, fd: int, previous: VerifyResult, read: tuple[bytes, _Scan] | None = None) -> None:
        self.path = path
        self.previous = previous  # what ``open`` found in the existing file
        self._fd: int | None = fd
        self._lock = threading.Lock()
        self._size = 0
        self._last_hash = previous.last_hash
        self._lines = previous.lines
        self._next_seq = 1
        self._prefix = b""
        self._flags: dict[str, Any] = {}
        self._pending_head: tuple[str, int] | None = None
        _lock_file(fd)
        try:
            self._load(broken=not previous.ok, read=read)
        finally:
            _unlock_file(fd)

    @classmethod
    def open(
        cls, path: str | Path, *, expected_head: str | None = None, expected_lines: int | None = None
    ) -> AuditLog:
        """Open (creating folder and file if needed) and continue the existing chain.

        ``expected_head``/``expected_lines``: what the ledger recorded; if the file
        does not match them, or does not verify, new entries are still appended
        and the first one records ``"previous_chain_broken": true``."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            created = not path.exists()
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
            if created:
                _fsync_dir(path.parent)
            data = _read_locked(fd)
        except OSError as error:
            raise BatchError(CANNOT_OPEN, path=str(path), error=error.strerror or str(error)) from error
        scan = _scan(data)
        previous, _ = _verify_data(data, expected_head, expected_lines, scan)
        return cls(path, fd, previous, read=(data, scan))

    # The file's state, read under the locks: the chain's tail, and whether the
    # last line is an unfinished write to terminate before the next entry.
    def _load(self, broken: bool = False, read: tuple[bytes, _Scan] | None = None) -> None:
        """``read``: bytes already read and scanned (by ``open``), reused when the file still holds exactly them."""
        assert self._fd is not None
        data = _pread_all(self._fd)
        scanned = read[1] if read is not None and read[0] == data else None
        checked, scan = _verify_data(data, None, None, scanned)  # a whole line without its newline counts as a line
        lines, entries = scan.lines, scan.entries
        self._prefix = b"\n" if data and not data.endswith(b"\n") else b""
        self._pending_head = None
        if not checked.ok:
            broken = True
        if scan.partial is not None:  # an unfinished write: continue the chain from it
            self._pending_head = (line_hash(lines[-1]) if lines else ZERO_HASH, len(lines))
            lines, entries = lines + [scan.partial], entries + [None]
            self._flags["recovered_partial_line"] = len(lines)
            broken = True
        last_seq, last_line = 0, 0
        for number, entry in enumerate(entries, start=1):
            if entry is not None:
                last_seq, last_line = entry["seq"], number
        self._next_seq = last_seq + (len(lines) - last_line) + 1
        self._last_hash = line_hash(lines[-1]) if lines else ZERO_HASH
        self._lines = len(lines)
        self._size = len(data)
        if broken:
            self._flags["previous_chain_broken"] = True

    def append(self, entry: dict) -> str:
        """Write one entry (adding seq, ts, prev), flushed and fsynced; return its line's hash."""
        clash = [name for name in RESERVED_FIELDS if name in entry]
        if clash:
            raise ValueError(f"audit entry fields {clash} are set by the log itself")
        with self._lock:
            if self._fd is None:
                raise ValueError("the audit log is closed")
            fd = self._fd
            _lock_file(fd)
            try:
                if os.fstat(fd).st_size != self._size:  # another process wrote, or a write failed
                    self._load()
                record = {**entry, **self._flags, "seq": self._next_seq, "ts": utc_now(), "prev": self._last_hash}
                line = encode_line(record)
                data = self._prefix + line + b"\n"
                try:
                    _write_all(fd, data)
                    os.fsync(fd)
                except OSError as error:
                    self._size = -1  # re-read before the next entry
                    raise BatchError(CANNOT_WRITE, path=str(self.path), error=error.strerror or str(error)) from error
            finally:
                _unlock_file(fd)
            self._size += len(data)
            self._last_hash = line_hash(line)
            self._lines += 1
            self._next_seq += 1
            self._prefix = b""
            self._flags = {}
            self._pending_head = None
            return self._last_hash

    @property
    def head(self) -> tuple[str, int]:
        """(hash of the last line, number of lines): what the ledger keeps to detect a cut-off tail."""
        with self._lock:
            if self._pending_head is not None:  # an unfinished line not yet continued by an entry
                return self._pending_head
            return self._last_hash, self._lines

    # -- the pipeline's writers ------------------------------------------------
    def run_started(
        self,
        *,
        input_name: str,
        input_sha256: str,
        batch_id: str | None,
        api_base: str,
        api_version: str,
        options: dict | None = None,
        started_at: str | None = None,
        tool_version: str = __version__,
        operator: str | None = None,
        host: str | None = None,
        **extra: Any,
    ) -> str:
        fields = {
            "type": "run_started",
            "input_name": input_name,
            "input_sha256": input_sha256,
            "batch_id": batch_id,
            "api_base": api_base,
            "api_version": api_version,
            "options": scrub_options(dict(options or {})),
            "started_at": started_at or utc_now(),
            "tool_version": tool_version,
            "operator": operator if operator is not None else operator_name(),
            "host": host if host is not None else socket.gethostname(),
            **extra,
        }
        return self.append(_redact(fields))

    def api_call(
        self,
        method: str,
        path: str,
        idempotency_key: str | None,
        http_status: int | None,
        log_id: str | None,
        duration_ms: float,
    ) -> str:
        """One request: nothing but these six facts (no bodies, no personal data, no key)."""
        entry = {
            "type": "api_call",
            "method": str(method).upper(),
            "path": _redact(str(path)),
            "idempotency_key": None if idempotency_key is None else str(idempotency_key),
            "http_status": None if http_status is None else int(http_status),
            "log_id": None if log_id is None else str(log_id),
            "duration_ms": round(float(duration_ms), 1),
        }
        return self.append(_redact(entry))

    def run_finished(
        self,
        *,
        mode: str | None,
        counts: dict[str, int],
        totals: dict[str, Any],
        exit_code: int,
        results_path: str | Path | None,
        ended_at: str | None = None,
        **extra: Any,
    ) -> str:
        fields = {
            "type": "run_finished",
            "ended_at": ended_at or utc_now(),
            "mode": mode,
            "counts": dict(counts),
            "totals": dict(totals),
            "exit_code": int(exit_code),
            "results_path": None if results_path is None else str(results_path),
            **extra,
        }
        return self.append(_redact(fields))

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()




def _lock_file(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)


def _unlock_file(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _pread_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    chunks, offset = [], 0
    while offset < size:
        chunk = os.pread(fd, min(size - offset, 1 << 20), offset) if hasattr(os, "pread") else _seek_read(fd, offset, size)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _seek_read(fd: int, offset: int, size: int) -> bytes:  # pragma: no cover - Windows
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, size - offset)


def _read_locked(fd: int) -> bytes:
    _lock_file(fd)
    try:
        return _pread_all(fd)
    finally:
        _unlock_file(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(folder: Path) -> None:
    """Make a new file's name durable too (POSIX); a no-op where folders cannot be opened."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
