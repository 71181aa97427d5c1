"""The team's audit trail: who did what, when, from where -- one hash-chained table in the ledger.

Sign-ins and their locks, users added or changed, submissions, approvals, rejections, runs
started and refusals (a forged POST, an auditor's attempt to change something) each add one
row.  Like the batch audit logs (``payout.audit``), every row carries the SHA-256 of the
previous one, so an edited or deleted row breaks the chain (``verify``).  No secret is ever
written here: no password, no TOTP secret or code, no recovery code.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from batch_payouts.payout.ledger import Ledger

ZERO = "0" * 64


@dataclass(frozen=True)
class Event:
    seq: int
    at: float
    actor: str | None
    ip: str | None
    action: str
    detail: dict[str, Any]
    hash: str


def _hash(prev: str, seq: int, at: float, actor: str | None, ip: str | None, action: str, detail: str) -> str:
    body = json.dumps([prev, seq, repr(at), actor, ip, action, detail], ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def record_in(conn: Any, actor: str | None, ip: str | None, action: str, **detail: Any) -> None:
    """Append one event inside the caller's transaction (``Ledger._transaction``)."""
    last = conn.execute("SELECT seq, hash FROM team_events ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last[0] + 1, last[1]) if last else (1, ZERO)
    at = time.time()
    text = json.dumps(detail, sort_keys=True, ensure_ascii=False, default=str)
    conn.execute(
        "INSERT INTO team_events (seq, at, actor, ip, action, detail, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?)",
        (seq, at, actor, ip, action, text, prev, _hash(prev, seq, at, actor, ip, action, text)),
    )


def record(ledger: Ledger, actor: str | None, ip: str | None, action: str, **detail: Any) -> None:
    with ledger._transaction() as conn:
        record_in(conn, actor, ip, action, **detail)


def events(ledger: Ledger, limit: int | None = None, action: str | None = None) -> list[Event]:
    """The latest events first."""
    sql = "SELECT * FROM team_events" + (" WHERE action=?" if action else "") + " ORDER BY seq DESC"
    params: tuple = (action,) if action else ()
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [Event(r["seq"], r["at"], r["actor"], r["ip"], r["action"], json.loads(r["detail"]), r["hash"])
            for r in ledger._query(sql, params)]


def verify(ledger: Ledger) -> int | None:
    """The seq of the first row that does not chain (edited, removed, reordered), or None when all do."""
    prev, expected = ZERO, 1
    for r in ledger._query("SELECT * FROM team_events ORDER BY seq"):
        if r["seq"] != expected or r["prev_hash"] != prev or r["hash"] != _hash(
            prev, r["seq"], r["at"], r["actor"], r["ip"], r["action"], r["detail"]
        ):
            return r["seq"]
        prev, expected = r["hash"], expected + 1
    return None
