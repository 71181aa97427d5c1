"""A minimal stand-in for Conekta: canned JSON in microseconds, for the send benchmarks.

Why not the sandbox: the sandbox validates every field, applies faults, keeps
idempotency and its state in SQLite: several times this server's CPU per
request (~0.7 ms against ~0.2-0.3 ms on the 2-core VM), so on 2 cores, above
~700 req/s, a benchmark on it would measure the sandbox.  ``http.server`` alone
(email.parser for the headers) costs more than the whole of this server.
This server answers only what a run calls -- ``GET /balance``,
``POST /customers``, ``POST /payout_orders`` and, for a row in doubt, the
list searches and the GETs by id -- with canned objects, so the client is
what is measured.  It is not a test double for correctness (the tests use the
sandbox); it only has to be fast, keep connections alive and count honestly:

* every created order is kept (by Idempotency-Key, so a resend returns the
  same order rather than a second one) and ``orders`` is what the benchmarks
  compare with the ``created`` rows of a results sheet;
* ``latency_ms`` sleeps before every answer, in the connection's own thread
  (a thread per connection: concurrent requests wait concurrently).

Standard library only; HTTP/1.1 keep-alive parsed by hand, ``Content-Length``
on every answer and the whole answer in one send, so a ``requests.Session``
reuses its connections and never waits on Nagle's algorithm.
"""

from __future__ import annotations

import itertools
import json
import socketserver
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

BALANCE = json.dumps({"object": "balance", "available": [{"amount": 10**15, "currency": "MXN"}],
                      "pending": [], "retained": []}).encode()
EXPIRY_SECONDS = 48 * 3600


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True  # a client's idle keep-alive connection must not hold up shutdown
    allow_reuse_address = True
    request_queue_size = 256


class StandIn:
    """``with StandIn(latency_ms=5) as api: api.url`` -- a fast fake Conekta on loopback."""

    def __init__(self, latency_ms: float = 0.0) -> None:
        self.latency = latency_ms / 1000
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._answers: dict[str, bytes] = {}  # Idempotency-Key -> the first answer
        self._customers: dict[str, dict[str, Any]] = {}
        self._orders: dict[str, dict[str, Any]] = {}
        self.requests: Counter[str] = Counter()  # "POST /payout_orders 200" -> count
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="standin", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def orders(self) -> int:
        """Payout orders this server holds (each Idempotency-Key counted once)."""
        with self._lock:
            return len(self._orders)

    def __enter__(self) -> StandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the operations ----------------------------------------------------
    def answer(self, method: str, path: str, query: str, body: bytes, key: str | None) -> tuple[int, bytes]:
        if method == "GET" and path == "/balance":
            return 200, BALANCE
        if method == "POST" and path in ("/customers", "/payout_orders"):
            with self._lock:
                if key and key in self._answers:
                    return 200, self._answers[key]
                try:
                    fields = json.loads(body)
                except ValueError:
                    return 400, b'{"object":"error","type":"parameter_validation_error","details":[]}'
                made = self._customer(fields) if path == "/customers" else self._order(fields)
                answer = json.dumps(made).encode()
                if key:
                    self._answers[key] = answer
                return 200, answer
        if method == "GET" and path in ("/customers", "/payout_orders"):
            return 200, self._search(path, dict(parse_qsl(query)).get("search", ""))
        if method == "GET" and path.startswith(("/customers/", "/payout_orders/")):
            wanted = path.rsplit("/", 1)[1]
            with self._lock:
                if path.startswith("/payout_orders/"):
                    found = self._orders.get(wanted)
                else:  # only asked when the mode is unknown: a scan is fine
                    found = next((c for c in self._customers.values() if c["id"] == wanted), None)
            if found is not None:
                return 200, json.dumps(found).encode()
        return 404, json.dumps({"object": "error", "type": "resource_not_found_error", "log_id": "standin",
                                "details": [{"code": "standin.not_found", "message": "not found"}]}).encode()

    def _customer(self, body: dict[str, Any]) -> dict[str, Any]:
        number = next(self._ids)
        customer = {"id": f"cus_{number:017d}", "object": "customer", "livemode": False, "name": body.get("name"),
                    "email": body.get("email"), "phone": body.get("phone"), "created_at": int(time.time()),
                    "corporate": False}
        self._customers[str(body.get("email") or "").lower()] = customer
        return customer

    def _order(self, body: dict[str, Any]) -> dict[str, Any]:
        number, now = next(self._ids), int(time.time())
        order = {"id": f"00000000-0000-4000-8000-{number:012d}", "object": "payout_order", "livemode": False,
                 "amount": body.get("amount"), "currency": body.get("currency"), "reason": body.get("reason"),
                 "metadata": body.get("metadata") or {}, "allowed_payout_methods": ["cashout"],
                 "reference": f"{number:016d}", "status": "open", "created_at": now, "updated_at": now,
                 "expires_at": body.get("expires_at") or now + EXPIRY_SECONDS,
                 "customer_info": {"id": (body.get("customer_info") or {}).get("customer_id")}}
        self._orders[order["id"]] = order
        return order

    def _search(self, path: str, search: str) -> bytes:
        """A list page of every object whose email or metadata holds ``search`` (only a row in doubt asks)."""
        with self._lock:
            if path == "/customers":
                found = [c for email, c in self._customers.items() if search and search.lower() == email]
            else:
                found = [o for o in self._orders.values() if not search or search in o["metadata"].values()]
        return json.dumps({"object": "list", "has_more": False, "data": found[::-1]}).encode()


REASONS = {200: b"OK", 401: b"Unauthorized", 404: b"Not Found", 400: b"Bad Request"}


def _handler(api: StandIn) -> type[socketserver.StreamRequestHandler]:
    """HTTP/1.1 keep-alive parsed by hand: ``http.server`` spends more CPU per request on its
    header parsing (email.parser) than the client spends on the whole call, and the point of
    this server is to cost next to nothing."""

    class Handler(socketserver.StreamRequestHandler):
        disable_nagle_algorithm = True  # the answer is one send; never wait for a delayed ACK

        def handle(self) -> None:
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    continue
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers = {}
                while (line := self.rfile.readline(65537)) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                if api.latency:
                    time.sleep(api.latency)
                path, _, query = target.partition("?")
                if not headers.get("authorization"):
                    status, payload = 401, b'{"object":"error","type":"authentication_error","details":[]}'
                else:
                    status, payload = api.answer(method, path, query, body, headers.get("idempotency-key"))
                route = path if path.count("/") < 2 else path.rsplit("/", 1)[0] + "/{id}"
                with api._lock:
                    api.requests[f"{method} {route} {status}"] += 1
                self.wfile.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (status, REASONS.get(status, b"Error"), len(payload),
                                                                     payload))
                if headers.get("connection", "").lower() == "close":
                    return

    return Handler
