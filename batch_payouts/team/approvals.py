"""Approvals pinned to exactly what was approved.

An approval is for one *pin*: the batch id, the input file's SHA-256, the plan (the valid rows
and their amounts, hashed; their count and total per currency) and the API key's fingerprint.
If any of them changes -- one amount edited, another key -- the pin changes and the approval no
longer applies.  The person who submitted a batch never approves it, and two approvals mean two
different people.  ``require`` is what a run calls: with a policy, only an approved pin is paid.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue
from batch_payouts.payout.ledger import Ledger
from batch_payouts.team import events, policy
from batch_payouts.team.roles import APPROVER
from batch_payouts.team.users import get_user
from batch_payouts.totals import format_totals, totals_by_currency

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


@dataclass(frozen=True)
class Pin:
    batch_id: str
    input_sha256: str
    plan_sha256: str
    rows: int
    totals: dict[str, int]
    key_fingerprint: str


@dataclass(frozen=True)
class Request:
    request_id: str
    batch_id: str
    input_name: str
    input_sha256: str
    plan_sha256: str
    rows: int
    totals: dict[str, int]
    key_fingerprint: str
    needed: int
    submitted_by: str
    submitted_at: float
    upload_id: str | None
    problems: int
    state: str
    reason: str | None
    decided_at: float | None
    decisions: tuple[dict[str, Any], ...] = ()

    @property
    def approvers(self) -> list[str]:
        return [d["approver"] for d in self.decisions if d["decision"] == "approved"]

    def matches(self, pin: Pin) -> bool:
        return (self.batch_id, self.input_sha256, self.plan_sha256, self.key_fingerprint) == (
            pin.batch_id, pin.input_sha256, pin.plan_sha256, pin.key_fingerprint)


def pin_of(validated: pd.DataFrame, keys: pd.Series, batch_id: str, input_sha256: str, key_fp: str) -> Pin:
    """The pin of a validated file: its valid rows (key, amount, currency) are the plan."""
    valid = validated["valid"].astype(bool)
    amounts = validated.loc[valid, "amount"].tolist()
    currencies = validated.loc[valid, "currency"].tolist()
    plan = sorted(zip(keys.loc[valid].tolist(), (int(a) for a in amounts), currencies))
    digest = hashlib.sha256(json.dumps(plan).encode()).hexdigest()
    return Pin(batch_id, input_sha256, digest, len(plan), totals_by_currency(amounts, currencies), key_fp)


def _request(row, decisions=()) -> Request:
    return Request(row["request_id"], row["batch_id"], row["input_name"], row["input_sha256"], row["plan_sha256"],
                   row["rows_to_send"], json.loads(row["totals"]), row["key_fingerprint"], row["needed"],
                   row["submitted_by"], row["submitted_at"], row["upload_id"], row["problems"], row["state"],
                   row["reason"], row["decided_at"], tuple(decisions))


def _with_decisions(ledger: Ledger, rows) -> list[Request]:
    found = []
    for row in rows:
        decisions = [dict(d) for d in ledger._query(
            "SELECT approver, decision, reason, ip, decided_at FROM approval_decisions WHERE request_id=? "
            "ORDER BY decided_at", (row["request_id"],))]
        found.append(_request(row, decisions))
    return found


def get(ledger: Ledger, request_id: str) -> Request | None:
    found = _with_decisions(ledger, ledger._query("SELECT * FROM approval_requests WHERE request_id=?", (request_id,)))
    return found[0] if found else None


def listing(ledger: Ledger, state: str | None = None, limit: int = 200) -> list[Request]:
    sql = "SELECT * FROM approval_requests" + (" WHERE state=?" if state else "") + " ORDER BY submitted_at DESC"
    return _with_decisions(ledger, ledger._query(sql + f" LIMIT {int(limit)}", (state,) if state else ()))


def for_pin(ledger: Ledger, pin: Pin) -> list[Request]:
    """Every request about exactly this pin, the latest first."""
    return _with_decisions(ledger, ledger._query(
        "SELECT * FROM approval_requests WHERE batch_id=? AND input_sha256=? AND plan_sha256=? AND key_fingerprint=? "
        "ORDER BY submitted_at DESC", (pin.batch_id, pin.input_sha256, pin.plan_sha256, pin.key_fingerprint)))


def needed(ledger: Ledger, pin: Pin) -> int:
    """Approvals the ledger's policy asks of this plan (0: none, or no policy)."""
    rules = policy.load(ledger)
    return rules.needed(pin.totals, pin.rows) if rules else 0


def approved(ledger: Ledger, pin: Pin) -> Request | None:
    return next((r for r in for_pin(ledger, pin) if r.state == "approved"), None)


def submit(ledger: Ledger, pin: Pin, *, input_name: str, submitted_by: str, upload_id: str | None = None,
           problems: int = 0, ip: str | None = None) -> Request:
    """Ask for approval of this pin; a pending request for the same pin is reused (a second click)."""
    for request in for_pin(ledger, pin):
        if request.state in ("pending", "approved"):
            return request
    request_id = secrets.token_hex(6)
    with ledger._transaction() as conn:
        conn.execute(
            "INSERT INTO approval_requests (request_id, batch_id, input_name, input_sha256, plan_sha256, rows_to_send, "
            "totals, key_fingerprint, needed, submitted_by, submitted_at, upload_id, problems, state) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,'pending')",
            (request_id, pin.batch_id, input_name, pin.input_sha256, pin.plan_sha256, pin.rows,
             json.dumps(pin.totals, sort_keys=True), pin.key_fingerprint, max(1, needed(ledger, pin)), submitted_by,
             time.time(), upload_id, problems),
        )
        events.record_in(conn, submitted_by, ip, "approval_submitted", request=request_id, batch=pin.batch_id,
                         input=input_name, input_sha256=pin.input_sha256, plan_sha256=pin.plan_sha256, rows=pin.rows,
                         totals=pin.totals, key_fingerprint=pin.key_fingerprint)
    return get(ledger, request_id)


def may_decide(request: Request, name: str | None) -> bool:
    """Whether this user may still approve or reject it (the pages show the buttons only then)."""
    return (request.state == "pending" and bool(name) and name != request.submitted_by
            and name not in {d["approver"] for d in request.decisions})


def decide(ledger: Ledger, request_id: str, approver: str, *, approve: bool, reason: str = "",
           ip: str | None = None) -> Request:
    """Record one approver's approval or rejection.  The approver's identity (password and
    second factor) is checked by the caller; the rules about who may decide are checked here."""
    request = get(ledger, request_id)
    if request is None:
        raise BatchError(TEXT.NO_REQUEST, request=request_id)
    user = get_user(ledger, approver)
    if user is None or user.disabled or APPROVER not in user.roles:
        raise BatchError(TEXT.NOT_APPROVER, name=approver)
    if approver == request.submitted_by:
        raise BatchError(TEXT.OWN_BATCH)
    if request.state != "pending":
        raise BatchError(TEXT.NOT_PENDING, request=request_id, state=request.state)
    if approver in {d["approver"] for d in request.decisions}:
        raise BatchError(TEXT.ALREADY_DECIDED)
    reason = (reason or "").strip()[:500]
    if not approve and not reason:
        raise BatchError(TEXT.NEED_REASON)
    now = time.time()
    with ledger._transaction() as conn:
        conn.execute("INSERT INTO approval_decisions (request_id, approver, decision, reason, ip, decided_at) "
                     "VALUES (?,?,?,?,?,?)", (request_id, approver, "approved" if approve else "rejected", reason or None,
                                              ip, now))
        count = conn.execute("SELECT count(*) FROM approval_decisions WHERE request_id=? AND decision='approved'",
                             (request_id,)).fetchone()[0]
        state = "rejected" if not approve else ("approved" if count >= request.needed else "pending")
        if state != "pending":
            conn.execute("UPDATE approval_requests SET state=?, reason=?, decided_at=? WHERE request_id=?",
                         (state, reason or None, now, request_id))
        events.record_in(conn, approver, ip, "approval_given" if approve else "approval_rejected", request=request_id,
                         batch=request.batch_id, input_sha256=request.input_sha256, plan_sha256=request.plan_sha256,
                         rows=request.rows, totals=request.totals, key_fingerprint=request.key_fingerprint,
                         reason=reason or None, state=state)
    return get(ledger, request_id)


def require(ledger: Ledger, pin: Pin, *, input_name: str, operator: str, lang_free_ip: str | None = None) -> Request | None:
    """Before a run sends anything: with a policy that asks for approval of this plan, the plan
    must have an approved request, else ``BatchError`` (exit 2) naming who must approve what.
    An unapproved plan is put in the approvers' queue (submitted by the CLI's operator), so a
    cron run that was refused is approved in the web app and paid at the next slot."""
    count = needed(ledger, pin)
    if count == 0:
        return None
    found = approved(ledger, pin)
    if found is not None:
        events.record(ledger, operator, lang_free_ip, "run_approved_plan", request=found.request_id, batch=pin.batch_id,
                      approvers=found.approvers)
        return found
    latest = next(iter(for_pin(ledger, pin)), None)
    if latest is not None and latest.state == "rejected":
        by = next((d["approver"] for d in latest.decisions if d["decision"] == "rejected"), "?")
        raise BatchError(TEXT.REJECTED, batch=pin.batch_id[:12], name=input_name, by=by, reason=latest.reason or "")
    request = latest or submit(ledger, pin, input_name=input_name, submitted_by=operator)
    events.record(ledger, operator, lang_free_ip, "run_refused_unapproved", request=request.request_id,
                  batch=pin.batch_id)
    raise BatchError(TEXT.NEEDS_APPROVAL, batch=pin.batch_id[:12], name=input_name, rows=pin.rows,
                     total=format_totals(pin.totals), needed=request.needed, given=len(request.approvers),
                     request=request.request_id)
