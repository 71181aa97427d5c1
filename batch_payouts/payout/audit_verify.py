"""Reading an audit log back: the hash-chain checks behind ``audit verify``.

Split from the writer (``audit``) because it is what an auditor runs, maybe long
after the batch and on another machine, and it must never change the file: it
reads bytes, recomputes every line's SHA-256, checks ``seq`` and ``prev`` line by
line, and compares the tail with the head the ledger recorded (see ``audit`` for
the format and why a chain alone cannot see a cut-off tail).  It also tells a crash
mid-write (``CRASH_CODES``) from tampering, and says each problem in the user's
language (``describe``).  The writer reuses ``scan_lines`` and ``verify_data`` to
continue a chain from what is already in the file.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from batch_payouts.i18n import DEFAULT_LANG, Text, catalogue

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

ZERO_HASH = "0" * 64

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
        es="Línea {line}: faltan líneas al final (líneas según la bitácora: {expected_lines}; en el archivo: {lines}); se quitaron las últimas.",
        en="Line {line}: lines are missing at the end (lines according to the ledger: {expected_lines}; in the file: {lines}); the last ones were removed.",
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
    def end_checked(self) -> bool:
        """Whether the tail was compared with the head the ledger recorded: without it a cut-off
        end is invisible, so "intact" would claim more than was checked."""
        return self.expected_head is not None or self.expected_lines is not None

    @property
    def crashed(self) -> bool:
        return any(p.code in CRASH_CODES for p in self.problems)


def line_hash(line: bytes) -> str:
    """SHA-256 hex of a line's exact bytes, without its newline."""
    return hashlib.sha256(line).hexdigest()


@dataclass
class Scan:
    lines: list[bytes]  # newline-terminated lines, newline removed
    partial: bytes | None  # bytes after the last newline, if any
    entries: list[dict | None]  # parsed entry per complete line, None if not an entry
    hashes: list[str] | None = None  # line_hash of each line, once computed (a reopen checks twice)

    def line_hashes(self) -> list[str]:
        if self.hashes is None or len(self.hashes) != len(self.lines):
            self.hashes = [line_hash(line) for line in self.lines]
        return self.hashes


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


def scan_lines(data: bytes) -> Scan:
    parts = data.split(b"\n")
    return scan_split(parts, parts.pop() or None)  # "" after a final newline


def scan_split(lines: list[bytes], partial: bytes | None) -> Scan:
    """A scan of a file already split into its lines (newlines removed) and what follows the last one."""
    return Scan(lines, partial, [_parse(line) for line in lines])


def _chain_problems(scan: Scan) -> list[Problem]:
    problems: list[Problem] = []
    prev_hash = ZERO_HASH
    last_seq, last_seq_line = 0, 0  # the last parsed seq and its line number
    hashes = scan.line_hashes()
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
        prev_hash = hashes[index]
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


def verify_data(
    data: bytes, expected_head: str | None, expected_lines: int | None, scanned: Scan | None = None
) -> tuple[VerifyResult, Scan]:
    """``scanned``: ``scan_lines(data)`` when already at hand (parsing every line is most of the cost)."""
    scan = scanned or scan_lines(data)
    problems = _chain_problems(scan)
    hashes = list(scan.line_hashes())
    if scan.partial is not None:
        entry = _parse(scan.partial)
        if entry is None:
            problems.append(Problem(len(scan.lines) + 1, PARTIAL_LAST_LINE, (
                "the last line has no newline and is incomplete: a write interrupted by a crash, not tampering; "
                "it is not counted"
            )))
        else:  # written whole, only the newline was lost: a normal line
            hashes.append(line_hash(scan.partial))
            tail = Scan(scan.lines + [scan.partial], None, scan.entries + [entry], hashes)
            problems = _chain_problems(tail)
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
    return verify_data(data, expected_head, expected_lines)[0]


def describe(result: VerifyResult, lang: str = DEFAULT_LANG) -> list[str]:
    """One message per problem in the user's language, then a one-line verdict."""
    params = {"lines": result.lines, "expected_lines": result.expected_lines}
    out = [MESSAGES[p.code].format(lang, line=p.line, **params) for p in result.problems]
    tampering = [p for p in result.problems if p.code not in CRASH_CODES]
    if tampering:
        out.append(TEXT.VERDICT_TAMPERED.format(lang, count=len(tampering)))
    elif result.problems:
        out.append(TEXT.VERDICT_CRASH.format(lang, count=result.lines))
    elif not result.end_checked:
        out.append(TEXT.VERDICT_UNANCHORED.format(lang, count=result.lines))
    else:
        out.append(TEXT.VERDICT_OK.format(lang, count=result.lines))
    return out
