"""Conekta's side of events, for tests, until the sandbox plays it (issue 16, branch ``hooks``).

A test RSA key signs deliveries exactly as the contract says (``digest``: base64 of the RSA
PKCS#1 v1.5 SHA-256 signature over the raw body), and ``EventsFeed`` is a real HTTP server
on loopback answering ``GET /events`` (newest first, Conekta's paging) and
``GET /webhook_keys``.  Orders change status on the real sandbox (its admin route); the
events carry the order as the sandbox returns it.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)

EVENT_TYPES = {"cashed": "cashout.confirmed", "expired": "cashout.expired", "cancelled": "cashout.canceled"}


def public_pem(key=_KEY) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def sign(body: bytes, key=_KEY) -> str:
    return base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()


def event_for(order: dict, previous: str = "pending", event_type: str | None = None, created_at: int | None = None) -> dict:
    """The event Conekta sends when ``order`` (as GET /payout_orders/{id} returns it) got its status."""
    return {
        "id": "evt_" + secrets.token_hex(8), "object": "event",
        "type": event_type or EVENT_TYPES.get(order["status"], "payout_order.updated"), "livemode": False,
        "created_at": created_at or int(time.time()),
        "data": {"object": order, "previous_attributes": {"status": previous}},
        "webhook_status": "pending", "webhook_logs": [],
    }


def body_of(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


class EventsFeed:
    """``GET /events`` and ``GET /webhook_keys`` over real HTTP; ``add`` appends an event (newest last)."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.requests: list[str] = []
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                feed.requests.append(parts.path)
                if not self.headers.get("Authorization"):
                    return self._send(401, {"object": "error", "type": "authentication_error", "details": []})
                if parts.path == "/webhook_keys":
                    return self._send(200, {"object": "list", "has_more": False, "data": [
                        {"id": "whk_test", "object": "webhook_key", "active": True, "public_key": public_pem(),
                         "livemode": False, "created_at": 1, "deactivated_at": None}]})
                if parts.path == "/events":
                    newest_first = list(reversed(feed.events))
                    start = 0
                    if query.get("next"):
                        ids = [e["id"] for e in newest_first]
                        start = ids.index(query["next"]) + 1
                    limit = int(query.get("limit", 20))
                    page = newest_first[start:start + limit]
                    return self._send(200, {"object": "list", "has_more": start + limit < len(newest_first),
                                            "data": page})
                self._send(404, {"object": "error", "type": "resource_not_found_error", "details": []})

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def add(self, event: dict) -> dict:
        self.events.append(event)
        return event

    def __enter__(self) -> EventsFeed:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
