"""What the sandbox tells after an order is created: Conekta's events, one per change.

Every order creation and every status change (cashed at the store, expired,
cancelled through the API or the back office) leaves one event in the state, in
the same transaction as the change, so ``GET /events`` and the webhook
deliveries can never miss or invent one.  The event carries the order as
``GET /payout_orders/{id}`` returns it after the change and its previous status,
as Conekta's ``data.object`` / ``data.previous_attributes`` do.

``webhook_status`` and ``webhook_logs`` are not stored in the event: they are
read from the deliveries each time the event is shown, so a list always tells
how delivery stands now.
"""

from __future__ import annotations

import time
from typing import Any

from batch_payouts.sandbox import rules

CREATED = "payout_order.created"
UPDATED = "payout_order.updated"
# Conekta's names for how a cash payout ends (it spells "canceled" with one l).
TYPE_OF_STATUS = {
    "cashed": "cashout.confirmed",
    "expired": "cashout.expired",
    "cancelled": "cashout.canceled",
}

PENDING, SUCCESSFUL, FAILING = "pending", "successful", "failing"


def new_event_id() -> str:
    return "evt_" + rules.random_token(24)


def order_created(order: dict[str, Any]) -> dict[str, Any]:
    return _event(CREATED, order, {})


def status_changed(order: dict[str, Any], previous_status: str, at: int | None = None) -> dict[str, Any]:
    """The event for an order that went from ``previous_status`` to its current one (``at``: when,
    default now); a status without a Conekta name of its own (say "open") is a ``payout_order.updated``."""
    return _event(TYPE_OF_STATUS.get(order["status"], UPDATED), order, {"status": previous_status}, at)


def _event(type_: str, order: dict[str, Any], previous: dict[str, Any], at: int | None = None) -> dict[str, Any]:
    return {
        "id": new_event_id(),
        "object": "event",
        "type": type_,
        "livemode": bool(order.get("livemode")),
        "created_at": int(time.time()) if at is None else at,
        "data": {"object": order, "previous_attributes": previous},
    }


def shown(event: dict[str, Any], deliveries: list[dict[str, Any]]) -> dict[str, Any]:
    """The event with ``webhook_status`` and ``webhook_logs`` as its deliveries stand now.

    "successful" once every URL answered 2xx, "failing" when one gave up after its
    attempts, otherwise (attempts left, or no webhook URL configured) "pending"."""
    statuses = {delivery["status"] for delivery in deliveries}
    if FAILING in statuses:
        status = FAILING
    elif deliveries and statuses == {SUCCESSFUL}:
        status = SUCCESSFUL
    else:
        status = PENDING
    logs = [
        {
            "object": "webhook_log",
            "url": delivery["url"],
            "failed_attempts": delivery["attempts"] - (1 if delivery["status"] == SUCCESSFUL else 0),
            "last_http_response_status": delivery["last_http_status"] if delivery["last_http_status"] is not None
            else -1,
            "last_attempted_at": delivery["last_attempted_at"] or 0,
        }
        for delivery in deliveries
    ]
    return {**event, "webhook_status": status, "webhook_logs": logs}
