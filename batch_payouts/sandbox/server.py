"""A real HTTP server on loopback that answers like Conekta, faults included.

Real sockets rather than mocks, because what breaks payout clients lives in
the transport: pooled keep-alive connections, an answer lost after the order
was created, a read timeout, a proxy's HTML page.  ``ThreadingHTTPServer``
with HTTP/1.1 keep-alive serves many clients at once; every answer carries
``Content-Type`` and ``Content-Length`` so ``requests.Session`` can reuse
connections.

Order of work for an API request: latency, faults that act *before* anything
(5xx, HTML 502, 429), authentication, the Accept header, routing, the JSON
body, idempotency, the operation, then faults that act *after commit* (drop
the socket, stall, truncate).  Admin routes under ``/_sandbox/`` skip auth
and faults so a test can always inspect or steer the server.

The API key is never written anywhere: not to stderr (request logging is
silenced), not to ``request_log``, not to the state (scoped by SHA-256).

The connection handling itself (keep-alive, bodies, writing and dropping answers)
is ``transport``; this module is what the emulated Conekta does with a request.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from batch_payouts.sandbox import admin, rules
from batch_payouts.sandbox.api import DEFAULT_STARTING_BALANCE, ConektaApi
from batch_payouts.sandbox.auto import AutoSettle, AutoSettler
from batch_payouts.sandbox.faults import RATE_LIMITED, REVOKED, Decision, FaultEngine, Faults
from batch_payouts.sandbox.rules import ApiFailure, fail
from batch_payouts.sandbox.store import Store, fingerprint
from batch_payouts.sandbox.transport import BadBody, Handler, Server, encode, key_from_header, parse_json
from batch_payouts.sandbox.webhooks import DEFAULT_ATTEMPTS, DEFAULT_BACKOFF, Deliverer

DEFAULT_KEY_PATTERN = re.compile(r"^key_[A-Za-z0-9_]{4,}$")
_ACCEPT = re.compile(r"application/vnd\.conekta-v\d+\.\d+\.\d+\+json", re.IGNORECASE)
MAX_IDEMPOTENCY_KEY = 255
_LOCK_STRIPES = 256

HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)

# API routes: (method, path regex, operation name).  Ids are path segments.
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"^/customers$"), "create_customer"),
    ("GET", re.compile(r"^/customers$"), "list_customers"),
    ("GET", re.compile(r"^/customers/([^/]+)$"), "get_customer"),
    ("POST", re.compile(r"^/payout_orders$"), "create_payout_order"),
    ("GET", re.compile(r"^/payout_orders$"), "list_payout_orders"),
    ("GET", re.compile(r"^/payout_orders/([^/]+)$"), "get_payout_order"),
    ("PUT", re.compile(r"^/payout_orders/([^/]+)/cancel$"), "cancel_payout_order"),
    ("GET", re.compile(r"^/balance$"), "balance"),
    ("GET", re.compile(r"^/events$"), "list_events"),
    ("GET", re.compile(r"^/webhook_keys$"), "list_webhook_keys"),
    ("POST", re.compile(r"^/webhook_keys$"), "create_webhook_key"),
]


class Sandbox:
    """A Conekta emulator on loopback.  ``with Sandbox() as sb: ... sb.url``.

    ``keys``: the accepted API keys (default: any ``key_...`` of 4+ characters).
    ``key_live_...`` keys answer with ``livemode: true``.  ``state_path`` keeps
    the state in an SQLite file across restarts (default: in memory).  After
    ``stop()`` the state stays readable through the Python API.

    After creation: every order creation and status change is an event
    (``GET /events``); ``webhook_urls`` get each new event POSTed, signed with the
    account's key (``GET /webhook_keys``), by a background thread that retries
    ``webhook_attempts`` times from ``webhook_backoff`` seconds, doubling.
    ``auto_settle`` (an ``AutoSettle``) cashes and expires a share of new orders
    after a delay.  Neither thread runs unless asked for.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        keys: Iterable[str] | None = None,
        faults: Faults | dict[str, Any] | None = None,
        state_path: str | Path | None = None,
        starting_balance: int | Mapping[str, int] = DEFAULT_STARTING_BALANCE,
        webhook_urls: Iterable[str] = (),
        webhook_attempts: int = DEFAULT_ATTEMPTS,
        webhook_backoff: float = DEFAULT_BACKOFF,
        auto_settle: AutoSettle | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._keys = frozenset(keys) if keys is not None else None
        self.store = Store(state_path)
        self.api = ConektaApi(self.store, starting_balance)
        self._engine = FaultEngine(_as_faults(faults))
        self._log: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self._idem_locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._deliverer = Deliverer(self.api, webhook_urls, attempts=webhook_attempts, first_backoff=webhook_backoff)
        self._webhooks_wanted = bool(self._deliverer.urls)
        self._settler = (AutoSettler(self.api, auto_settle, self._deliverer)
                         if auto_settle is not None and auto_settle.active else None)

    # -- life cycle ------------------------------------------------------------
    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = Server((self.host, self.port), Handler)
        server.sandbox = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"conekta-sandbox:{self.port}", daemon=True)
        self._thread.start()
        if self._webhooks_wanted:
            self._deliverer.start()
        if self._settler is not None:
            self._settler.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes stalls and latencies
        if self._settler is not None:
            self._settler.stop()
        self._deliverer.stop()
        server.shutdown()
        server.server_close()
        with self._connections_lock:
            open_connections = list(self._connections)
        for connection in open_connections:  # idle keep-alive connections would outlive the server
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _track(self, connection: socket.socket, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    # -- Python API for tests ---------------------------------------------------
    def payout_orders(self, api_key: str | None = None) -> list[dict[str, Any]]:
        """Every payout order (of one key, if given), in creation order."""
        self.expire_due()
        return self.store.all("payout_orders", fingerprint(api_key) if api_key else None)

    def customers(self, api_key: str | None = None) -> list[dict[str, Any]]:
        return self.store.all("customers", fingerprint(api_key) if api_key else None)

    def balance(self, api_key: str) -> dict[str, Any]:
        return self.api.balance(fingerprint(api_key))

    @property
    def request_log(self) -> list[dict[str, Any]]:
        """API requests answered so far: method, path, status (None if dropped),
        idempotency_key, fault, replayed, at.  Never the key."""
        with self._log_lock:
            return [dict(entry) for entry in self._log]

    @property
    def faults(self) -> Faults:
        return self._engine.faults

    def set_faults(self, faults: Faults | dict[str, Any] | None) -> None:
        """Replace the faults on the running server; counts and the seed restart."""
        self._engine.set(_as_faults(faults))

    def set_order_status(self, order_id: str, status: str) -> dict[str, Any]:
        """Move an order (by id or reference) to a status (e.g. "cashed", "expired"), recording its
        event; KeyError if unknown, ``FinalStatus`` if it is already cashed, expired or cancelled
        (the same status again changes nothing)."""
        order = self.api.set_status(order_id, status)
        if order is None:
            raise KeyError(order_id)
        self._deliverer.poke()
        return order

    def expire_due(self) -> list[dict[str, Any]]:
        """Expire the open orders whose ``expires_at`` has passed (with their events); what expired."""
        expired = self.api.expire_due()
        if expired:
            self._deliverer.poke()
        return expired

    def cash(self, order: str) -> dict[str, Any]:
        """The beneficiary withdrew the money at the store (``cashout.confirmed``)."""
        return self.set_order_status(order, "cashed")

    def expire(self, order: str) -> dict[str, Any]:
        """The reference expired unclaimed (``cashout.expired``)."""
        return self.set_order_status(order, "expired")

    def cancel(self, order: str) -> dict[str, Any]:
        """Cancelled from the back office (``cashout.canceled``), like ``PUT .../cancel``."""
        return self.set_order_status(order, "cancelled")

    def events(self, api_key: str | None = None) -> list[dict[str, Any]]:
        """Every event (of one key, if given), oldest first, with its delivery state now."""
        self.expire_due()
        found = [(scope, event) for _seq, scope, event in self.store.events_after(0, limit=1_000_000)]
        if api_key:
            found = [(scope, event) for scope, event in found if scope == fingerprint(api_key)]
        deliveries = self.store.deliveries_of([event["id"] for _scope, event in found])
        from batch_payouts.sandbox.events import shown

        return [shown(event, deliveries.get(event["id"], [])) for _scope, event in found]

    def webhook_public_key(self, api_key: str) -> str:
        """The PEM public key that verifies this key's deliveries (made on first need)."""
        livemode = api_key.startswith("key_live_")
        self.api.signing_key(fingerprint(api_key), livemode)
        return self.store.active_webhook_key(fingerprint(api_key))[0]["public_key"]

    @property
    def webhook_urls(self) -> list[str]:
        return self._deliverer.urls

    def set_webhook_urls(self, urls: Iterable[str]) -> None:
        """Deliver the events recorded from now on to these URLs (none: stop queueing new ones)."""
        self._deliverer.set_urls(urls)
        if self._deliverer.urls and not self._webhooks_wanted:
            self._webhooks_wanted = True
            if self._server is not None:
                self._deliverer.start()

    @property
    def webhook_log(self) -> list[dict[str, Any]]:
        """Every delivery attempt: event_id, type, url, attempt, http_status (None: no answer),
        error, outcome ("successful", "retry" or "failing"), at."""
        return self._deliverer.log

    def redeliver(self, event_id: str) -> bool:
        """Deliver an event once more to every URL (a duplicate, as Conekta may send)."""
        return self._deliverer.redeliver(event_id)

    @property
    def auto_settled(self) -> list[dict[str, Any]]:
        """What the automatic mode did: order_id, status, n, at (and ``skipped`` if it could not)."""
        return self._settler.applied if self._settler is not None else []

    def wait_until_settled(self, timeout: float = 30.0) -> bool:
        """Wait until no webhook delivery is pending and the automatic mode has nothing left to do
        (nor any new event to look at); False if that did not happen within ``timeout`` seconds.
        For tests: the background threads work on their own time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            settler_busy = self._settler is not None and self._settler.busy()
            deliveries_busy = self._webhooks_wanted and self._deliverer.busy()
            if not settler_busy and not deliveries_busy:
                return True
            self._deliverer.poke()
            if self._settler is not None:
                self._settler.poke()
            time.sleep(0.02)
        return False

    def revoke_key(self, api_key: str) -> None:
        """From now on this key gets 401 (kept in the state file too)."""
        self.store.revoke(fingerprint(api_key))

    # -- request handling ---------------------------------------------------------
    def _handle(self, h: Handler) -> None:
        method = h.command
        parts = urlsplit(h.path)
        path = parts.path.rstrip("/") or "/"
        try:
            raw = h.read_body()
        except BadBody:
            h.send_json(400, rules.error_body(rules.PARAMETER, [(rules.MALFORMED_JSON, {})], "en"), close=True)
            return
        if path == "/_sandbox" or path.startswith("/_sandbox/"):
            admin.answer(self, h, method, path, raw)
        else:
            self._api_request(h, method, path, dict(parse_qsl(parts.query, keep_blank_values=True)), raw)

    def _api_request(self, h: Handler, method: str, path: str, query: dict[str, str], raw: bytes) -> None:
        lang = rules.language(h.headers.get("Accept-Language"))
        idempotency_key = h.headers.get("Idempotency-Key") if method == "POST" else None
        entry: dict[str, Any] = {"method": method, "path": path, "status": None,
                                 "idempotency_key": idempotency_key, "fault": None, "replayed": False,
                                 "at": time.time()}
        decision = self._engine.decide(method, search=method == "GET" and bool(query.get("search")))
        if decision.latency:
            self._stopping.wait(decision.latency)
        if decision.before:
            self._answer_before(h, decision, entry, lang)
            return
        headers: dict[str, str] = {}
        try:
            status, body, replayed = self._carry_out(h, method, path, query, raw, entry)
            if method != "GET":
                self._deliverer.poke()
            if replayed:
                headers["Idempotent-Replayed"] = "true"
                entry["replayed"] = True
        except ApiFailure as failure:
            status, body = failure.status, failure.body(lang)
            headers.update(failure.headers)
        except Exception:  # a bug in the sandbox must look like Conekta's 500, not a dead socket
            status, body = 500, rules.error_body(rules.API_ERROR, [(rules.SERVER_ERROR, {})], lang)
        self._answer_after(h, decision, entry, status, body, headers, lang)

    def _carry_out(self, h: Handler, method: str, path: str, query: dict[str, str], raw: bytes,
                   entry: dict[str, Any]) -> tuple[int, Any, bool]:
        scope, livemode = self._authenticate(h, entry)
        if self.api.expire_due():  # lazily, before anyone sees an order open past its time
            self._deliverer.poke()
        if not _ACCEPT.search(h.headers.get("Accept") or ""):
            # 400, not 422: no field of the body is wrong, the request as a whole is not
            # addressed to a versioned API.
            raise fail(400, rules.PARAMETER, rules.BAD_ACCEPT)
        for route_method, pattern, name in _ROUTES:
            match = pattern.match(path)
            if match and route_method == method:
                break
        else:
            raise fail(404, rules.NOT_FOUND, rules.ROUTE_NOT_FOUND, method=method, path=path)
        args = match.groups()
        if name == "list_customers":
            return 200, self.api.list("customers", scope, query, self.url, path), False
        if name == "list_payout_orders":
            page = self.api.list("payout_orders", scope, query, self.url, path)
            page["data"] = [self._engine.visible(order, read=False) for order in page["data"]]
            return 200, page, False
        if name == "get_customer":
            return 200, self.api.get_customer(scope, *args), False
        if name == "get_payout_order":
            try:
                order = self.api.get_payout_order(scope, *args)
            except ApiFailure as failure:
                if failure.status == 404 and self._engine.faults.unknown_order_get_402:
                    raise fail(402, rules.PROCESSING, rules.NOT_PROCESSABLE) from None
                raise
            return 200, self._engine.visible(order, read=True), False
        if name == "cancel_payout_order":
            return 200, self.api.cancel_payout_order(scope, *args), False
        if name == "balance":
            return 200, self.api.balance(scope), False
        if name == "list_events":
            return 200, self.api.list_events(scope, query, self.url, path), False
        if name == "list_webhook_keys":
            return 200, self.api.list_webhook_keys(scope, livemode), False
        if name == "create_webhook_key":
            return 200, self.api.create_webhook_key(scope, livemode), False
        body = parse_json(raw)
        create: Callable[[], dict[str, Any]] = (
            (lambda: self.api.create_customer(scope, livemode, body)) if name == "create_customer"
            else (lambda: self.api.create_payout_order(scope, livemode, body))
        )
        key = h.headers.get("Idempotency-Key")
        if not key or self._engine.faults.ignore_idempotency_key:
            return 200, create(), False
        if len(key) > MAX_IDEMPOTENCY_KEY:
            raise fail(422, rules.PARAMETER, rules.IDEMPOTENCY_TOO_LONG)
        return self._idempotent(scope, key, method, path, body, create)

    def _idempotent(self, scope: str, key: str, method: str, path: str, body: Any,
                    create: Callable[[], dict[str, Any]]) -> tuple[int, Any, bool]:
        """Same key + same request: the stored answer.  Same key + another request: 422.

        Only successes are stored: a refusal changed nothing, so repeating it
        simply re-evaluates the request.  The lock (striped by key) makes
        concurrent duplicates wait for the first one and then replay it; the
        object and its stored answer are written in one transaction, so no
        crash can leave an order that a retry would create again.
        """
        request_hash = hashlib.sha256(
            f"{method} {path}\n".encode() + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        stripe = self._idem_locks[hash((scope, key)) % _LOCK_STRIPES]
        with stripe, self.store.atomic():
            stored = self.store.idempotent_answer(scope, key)
            if stored is not None:
                stored_hash, status, answer = stored
                if stored_hash != request_hash:
                    raise fail(422, rules.PARAMETER, rules.IDEMPOTENCY_REUSED)
                return status, answer, True
            result = create()
            self.store.remember_answer(scope, key, request_hash, 200, result)
            return 200, result, False

    def _authenticate(self, h: Handler, entry: dict[str, Any]) -> tuple[str, bool]:
        key = key_from_header(h.headers.get("Authorization"))
        if not key:
            raise fail(401, rules.AUTHENTICATION, rules.MISSING_KEY)
        accepted = key in self._keys if self._keys is not None else bool(DEFAULT_KEY_PATTERN.match(key))
        if not accepted:
            raise fail(401, rules.AUTHENTICATION, rules.INVALID_KEY)
        scope = fingerprint(key)
        if self.store.is_revoked(scope):
            raise fail(401, rules.AUTHENTICATION, rules.REVOKED_KEY)
        if self._engine.count_authenticated(scope):
            # A fault, not a state change: setting new faults re-enables the key
            # (the account was fixed); revoke_key() is the permanent kind.
            entry["fault"] = REVOKED
            raise fail(401, rules.AUTHENTICATION, rules.REVOKED_KEY)
        return scope, key.startswith("key_live_")

    def _answer_before(self, h: Handler, decision: Decision, entry: dict[str, Any], lang: str) -> None:
        kind = decision.before
        entry["fault"] = kind
        if kind == "html_502":
            self._record(entry, 502)
            h.send_bytes(502, HTML_502, content_type="text/html")
        elif kind in ("throttle", RATE_LIMITED):
            seconds = decision.retry_after
            self._record(entry, 429)
            h.send_json(429, rules.error_body(rules.RATE_LIMIT, [(rules.THROTTLED, {"seconds": seconds})], lang),
                        headers={"Retry-After": str(seconds)})
        else:
            status = int(kind.rsplit("_", 1)[1])
            self._record(entry, status)
            h.send_json(status, rules.error_body(rules.API_ERROR, [(rules.SERVER_ERROR, {})], lang))

    def _answer_after(self, h: Handler, decision: Decision, entry: dict[str, Any], status: int, body: Any,
                      headers: dict[str, str], lang: str) -> None:
        kind = decision.after
        if kind == "drop_after_commit":
            entry["fault"] = kind
            self._record(entry, None)
            h.drop()
            return
        if kind == "stall_after_commit":
            entry["fault"] = kind
            self._record(entry, status)
            self._stopping.wait(self._engine.faults.stall_seconds)
            h.send_json(status, body, headers=headers)
            return
        if kind == "error_500_after_commit":
            entry["fault"] = kind
            self._record(entry, 500)
            h.send_json(500, rules.error_body(rules.API_ERROR, [(rules.SERVER_ERROR, {})], lang))
            return
        if kind == "conflict_409":
            entry["fault"] = kind
            self._record(entry, 409)
            h.send_json(409, rules.error_body(rules.CONFLICT, [(rules.IN_PROGRESS, {})], lang))
            return
        if kind == "null_reference" and status == 200 and isinstance(body, dict) and body.get("object") == "payout_order":
            entry["fault"] = kind
            self._engine.hide_reference(body["id"])
            body = {**body, "reference": None}
        if kind == "truncated_json":
            entry["fault"] = kind
            self._record(entry, status)
            payload = encode(body)
            h.send_bytes(status, payload[: max(1, len(payload) // 2)], headers=headers, close=True)
            return
        self._record(entry, status)
        h.send_json(status, body, headers=headers)

    def _record(self, entry: dict[str, Any], status: int | None) -> None:
        entry["status"] = status
        with self._log_lock:
            self._log.append(entry)


def _as_faults(faults: Faults | dict[str, Any] | None) -> Faults:
    if faults is None:
        return Faults()
    if isinstance(faults, dict):
        return Faults.from_dict(faults)
    return faults
