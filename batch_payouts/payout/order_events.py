"""Conekta's events about payout orders, applied to the ledger exactly once and never backwards.

The same event may arrive twice (a retried webhook, ``events sync`` after the webhook), and
events may arrive out of order (``cashout.confirmed`` before a late ``payout_order.created``).
So, in one ledger transaction per event:

* the event is recorded under its id first; an id already there changes nothing (idempotent);
* the row is found by payout order id, else by reference; none found: recorded as
  ``unknown_order`` (another system's order, or a batch in another ledger), not an error;
* the order's status only moves forward: pending/open -> cashed | expired | cancelled, and a
  final status is final (cashed stays cashed).  An event that would move it back is ``stale``.

The time Conekta gives the event becomes the row's ``cashed_at`` / ``expired_at`` /
``cancelled_at``.  Writing the audit line (the batch's log beside its results sheet) is
``audit_applied``: the web receiver does it after answering, ``events sync`` at once.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batch_payouts.states import ORDER_CANCELLED, ORDER_CASHED, ORDER_EXPIRED, ORDER_FINAL

if TYPE_CHECKING:
    from batch_payouts.payout.ledger import Ledger

APPLIED, STALE, UNKNOWN_ORDER, NOT_AN_ORDER, DUPLICATE_EVENT = (
    "applied", "stale", "unknown_order", "not_an_order", "duplicate")
# Conekta's names for what happened to a cash payout (it spells "canceled" with one l).
STATUS_OF_TYPE = {"cashout.confirmed": ORDER_CASHED, "cashout.expired": ORDER_EXPIRED,
                  "cashout.canceled": ORDER_CANCELLED, "cashout.cancelled": ORDER_CANCELLED}
TIME_COLUMN = {ORDER_CASHED: "cashed_at", ORDER_EXPIRED: "expired_at", ORDER_CANCELLED: "cancelled_at"}


@dataclass(frozen=True)
class EventOutcome:
    event_id: str
    outcome: str  # applied | stale | unknown_order | not_an_order | duplicate
    status: str | None = None
    previous: str | None = None
    batch_id: str | None = None
    row_key: str | None = None
    payout_order_id: str | None = None
    event_type: str = ""


class BadEvent(ValueError):
    """A body that is not a Conekta event (no id or type): answered 400, nothing recorded."""


def moves_forward(current: str | None, new: str | None) -> bool:
    """May an order's status go from ``current`` to ``new``?  Only out of not-final, never back."""
    if not new or new == current:
        return False
    if current in ORDER_FINAL:
        return False  # cashed stays cashed; expired and cancelled are final too
    return True


def _order_of(event: dict[str, Any]) -> dict[str, Any] | None:
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    obj = data.get("object") if isinstance(data.get("object"), dict) else None
    if obj is None:
        return None
    if obj.get("object") == "payout" and obj.get("payout_order_id"):  # a payout.* event: its order's id
        return {**obj, "id": obj["payout_order_id"]}
    if obj.get("object") not in (None, "payout_order"):
        return None
    return obj


def apply_event(ledger: Ledger, event: dict[str, Any], source: str, now: float | None = None) -> EventOutcome:
    """Record ``event`` in the ledger (see the module docstring); one transaction, safe to repeat."""
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
        raise BadEvent("not an event")
    received = time.time() if now is None else now
    order = _order_of(event)
    order_id = str(order.get("id") or "") if order else ""
    reference = str(order.get("reference") or "") if order else ""
    status = STATUS_OF_TYPE.get(event_type) or (str(order.get("status") or "") if order else "") or None
    created = event.get("created_at")
    at = float(created) if isinstance(created, (int, float)) and not isinstance(created, bool) else received
    with ledger._transaction() as conn:
        inserted = conn.execute(
            """INSERT INTO events (event_id, type, payout_order_id, reference, status, event_created_at,
                   received_at, source, outcome)
               VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (event_id) DO NOTHING""",
            (event_id, event_type, order_id or None, reference or None, status,
             int(at), received, source, NOT_AN_ORDER),
        ).rowcount
        if not inserted:
            return EventOutcome(event_id, DUPLICATE_EVENT, status, event_type=event_type, payout_order_id=order_id)
        if not order_id and not reference:
            return EventOutcome(event_id, NOT_AN_ORDER, event_type=event_type)
        found = None
        if order_id:
            found = conn.execute("SELECT * FROM rows WHERE payout_order_id=? AND state='created' LIMIT 1",
                                 (order_id,)).fetchone()
        if found is None and reference:
            found = conn.execute("SELECT * FROM rows WHERE reference=? AND state='created' LIMIT 1",
                                 (reference,)).fetchone()
        if found is None:
            conn.execute("UPDATE events SET outcome=? WHERE event_id=?", (UNKNOWN_ORDER, event_id))
            return EventOutcome(event_id, UNKNOWN_ORDER, status, event_type=event_type, payout_order_id=order_id)
        previous = found["order_status"]
        time_column = TIME_COLUMN.get(status or "")
        fills_time = status == previous and time_column is not None and found[time_column] is None
        outcome = APPLIED if moves_forward(previous, status) or fills_time else STALE
        if outcome == APPLIED:
            fields: dict[str, Any] = {"order_status": status, "updated_at": received}
            if time_column:
                fields[time_column] = at
            if reference and not found["reference"]:
                fields["reference"] = reference
            conn.execute(
                f"UPDATE rows SET {', '.join(f'{name}=?' for name in fields)} WHERE batch_id=? AND row_key=?",
                (*fields.values(), found["batch_id"], found["row_key"]),
            )
        conn.execute("UPDATE events SET outcome=?, batch_id=?, row_key=? WHERE event_id=?",
                     (outcome, found["batch_id"], found["row_key"], event_id))
    return EventOutcome(event_id, outcome, status, previous, found["batch_id"], found["row_key"],
                        order_id or found["payout_order_id"], event_type)


def record_polled_status(ledger: Ledger, batch_id: str, row_key: str, status: str, now: float | None = None) -> None:
    """``status`` learned a final status by asking (not by an event): note when, if not known yet."""
    column = TIME_COLUMN.get(status)
    if column is None:
        return
    with ledger._transaction() as conn:
        conn.execute(f"UPDATE rows SET {column}=? WHERE batch_id=? AND row_key=? AND {column} IS NULL",
                     (time.time() if now is None else now, batch_id, row_key))


def audit_applied(ledger: Ledger, outcome: EventOutcome, source: str) -> None:
    """One line in the batch's audit log for an event that changed a row (no personal data)."""
    if outcome.outcome != APPLIED or outcome.batch_id is None:
        return
    from batch_payouts.payout.audit import audit_path_for, open_audit

    batch = ledger.batch(outcome.batch_id)
    if batch is None or not batch.output_path:
        return
    with ExitStack() as stack:
        audit = open_audit(stack, ledger, audit_path_for(Path(batch.output_path)), outcome.batch_id)
        audit.append({"type": "order_event", "source": source, "event_id": outcome.event_id,
                      "event_type": outcome.event_type, "payout_order_id": outcome.payout_order_id,
                      "row_key": outcome.row_key, "previous_status": outcome.previous, "status": outcome.status})


def synced_before(ledger: Ledger, event_id: str) -> bool:
    """Did an earlier ``events sync`` read this event?  Where a sync stops reading back: it
    applies oldest first, so everything older than an event it recorded was read then too.
    (An event a webhook recorded does not stop it: older ones may have been missed meanwhile.)"""
    return bool(ledger._query("SELECT 1 FROM events WHERE event_id=? AND synced_at IS NOT NULL", (event_id,)))


def mark_synced(ledger: Ledger, event_id: str) -> None:
    """``events sync`` has read this event (new, or already recorded by a webhook)."""
    with ledger._transaction() as conn:
        conn.execute("UPDATE events SET synced_at=? WHERE event_id=?", (time.time(), event_id))
