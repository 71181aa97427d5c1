"""The sandbox's back office over HTTP (``/_sandbox/...``): what tests and a person at ``make web``
use to look inside the emulator and steer it -- its state and request log, faults, order
statuses (cash, expire, cancel), webhook targets and redeliveries, key revocation.  Conekta
has no such routes; they need no key, roll no faults and are not logged as API requests.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from batch_payouts.sandbox import rules
from batch_payouts.sandbox.api import FinalStatus
from batch_payouts.sandbox.faults import Faults, FaultsError
from batch_payouts.sandbox.rules import ApiFailure
from batch_payouts.sandbox.transport import Handler, parse_json

if TYPE_CHECKING:
    from batch_payouts.sandbox.server import Sandbox

# Back-office moves of an order (by id or reference), as the admin routes and ``sandbox cash`` name them.
SETTLE_ACTIONS = {"cash": "cashed", "expire": "expired", "cancel": "cancelled"}

ADMIN_ERROR = rules.rule("sandbox.admin.invalid", None, "Solicitud de administración no válida: {why}",
                         "Invalid admin request: {why}")

def answer(sandbox: Sandbox, h: Handler, method: str, path: str, raw: bytes) -> None:
    """One request to ``/_sandbox/...``: no key, no faults, not in the request log."""
    def bad(status: int, why: str) -> None:
        h.send_json(status, rules.error_body(rules.PARAMETER, [(ADMIN_ERROR, {"why": why})], "en"))

    try:
        body = parse_json(raw) if raw else {}
    except ApiFailure:
        bad(400, "the body is not valid JSON")
        return
    if method == "GET" and path == "/_sandbox/state":
        h.send_json(200, {"customers": sandbox.customers(), "payout_orders": sandbox.payout_orders()})
    elif method == "GET" and path == "/_sandbox/requests":
        h.send_json(200, {"requests": sandbox.request_log})
    elif method == "GET" and path == "/_sandbox/faults":
        h.send_json(200, sandbox.faults.to_dict())
    elif method == "PUT" and path == "/_sandbox/faults":
        try:
            faults = Faults.from_dict(body, source="PUT /_sandbox/faults")
        except FaultsError as error:
            bad(422, error.message("en"))
            return
        sandbox.set_faults(faults)
        h.send_json(200, faults.to_dict())
    elif method == "POST" and (match := re.match(r"^/_sandbox/payout_orders/([^/]+)/(status|cash|expire|cancel)$",
                                                     path)):
        # By order id or by reference.  /status takes {"status": ...}; /cash, /expire, /cancel no body.
        action = match.group(2)
        status = body.get("status") if isinstance(body, dict) and action == "status" else SETTLE_ACTIONS.get(action)
        if not isinstance(status, str) or not status:
            bad(422, "expected {\"status\": \"cashed\"} or another status")
            return
        try:
            order = sandbox.set_order_status(match.group(1), status)
        except KeyError:
            bad(404, f"no payout order {match.group(1)}")
            return
        except FinalStatus as final:
            h.send_json(409, rules.error_body(rules.PRECONDITION, [(rules.ALREADY_FINAL, {
                "id": final.order["id"], "status": final.order["status"], "wanted": final.wanted})], "en")
                | {"order": final.order})
            return
        h.send_json(200, order)
    elif method == "GET" and path == "/_sandbox/events":
        h.send_json(200, {"events": sandbox.events()})
    elif method == "GET" and path == "/_sandbox/webhooks":
        h.send_json(200, {"urls": sandbox.webhook_urls, "deliveries": sandbox.webhook_log,
                          "auto_settled": sandbox.auto_settled})
    elif method == "PUT" and path == "/_sandbox/webhooks":
        urls = body.get("urls") if isinstance(body, dict) else None
        if not isinstance(urls, list) or not all(isinstance(u, str) and u.startswith(("http://", "https://"))
                                                 for u in urls):
            bad(422, "expected {\"urls\": [\"http://...\"]}")
            return
        sandbox.set_webhook_urls(urls)
        h.send_json(200, {"urls": sandbox.webhook_urls})
    elif method == "POST" and (match := re.match(r"^/_sandbox/events/([^/]+)/redeliver$", path)):
        if not sandbox.redeliver(match.group(1)):
            bad(404, f"no event {match.group(1)}")
            return
        h.send_json(200, {"redelivered": match.group(1), "urls": sandbox.webhook_urls})
    elif method == "POST" and path == "/_sandbox/keys/revoke":
        key = body.get("key") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            bad(422, "expected {\"key\": \"key_...\"}")
            return
        sandbox.revoke_key(key)
        h.send_json(200, {"revoked": True})
    else:
        bad(404, f"no admin route {method} {path}")
