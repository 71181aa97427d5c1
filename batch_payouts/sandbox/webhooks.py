"""Signed webhook deliveries, as Conekta sends them: keys, the signature, retries.

Each account (API key scope) has an RSA key pair, made once and kept in the
sandbox state, so a restarted ``sandbox serve --state`` signs with the key a
receiver already fetched from ``GET /webhook_keys``.  A delivery is
``POST <url>`` with the event JSON as body and the header ``digest``: base64 of
the RSA PKCS#1 v1.5 SHA-256 signature over the exact body bytes.

``Deliverer`` is a background thread, never the thread answering an API call:
a slow or dead receiver must not slow down the orders that cause its events.
It picks up new events from the state (also those written by another process on
the same state file, such as ``batch-payouts sandbox cash``), queues one delivery
per configured URL, and retries a non-2xx answer or a connection error with
exponential backoff until its attempts run out ("failing").  The queue lives in
the state, so a restart goes on with the deliveries still pending.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from batch_payouts.sandbox import events, rules

if TYPE_CHECKING:
    from batch_payouts.sandbox.api import ConektaApi

DEFAULT_ATTEMPTS = 5
DEFAULT_BACKOFF = 1.0  # seconds before the 2nd attempt; doubled for each one after
MAX_BACKOFF = 300.0
TIMEOUT = 5.0  # a receiver must answer within a second or two; five is generous
_IDLE_POLL = 0.25  # how often the state is looked at for events written by another process


def new_key_pair(livemode: bool = False) -> tuple[dict[str, Any], str]:
    """(the public ``webhook_key`` object, its private half as PEM) for a new RSA-2048 key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode("ascii")
    key = {
        "id": "whk_" + rules.random_token(17),
        "object": "webhook_key",
        "active": True,
        "public_key": public_pem,
        "livemode": livemode,
        "created_at": int(time.time()),
        "deactivated_at": None,
    }
    return key, private_pem


def sign(body: bytes, private_pem: str) -> str:
    """The ``digest`` header: base64 of RSA PKCS#1 v1.5 over SHA-256 of the raw body."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    private = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
    return base64.b64encode(private.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode("ascii")


def backoff(attempts: int, first: float) -> float:
    """Seconds to wait after ``attempts`` failed attempts: first, 2x, 4x... capped."""
    return min(MAX_BACKOFF, first * 2 ** max(0, attempts - 1))


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST the body; the HTTP status, or raise OSError / http.client.HTTPException."""
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname or "127.0.0.1", parts.port, timeout=TIMEOUT)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


class Deliverer:
    """The thread that delivers every new event to the configured URLs, signed, with retries."""

    def __init__(self, api: ConektaApi, urls: Iterable[str] = (), *, attempts: int = DEFAULT_ATTEMPTS,
                 first_backoff: float = DEFAULT_BACKOFF) -> None:
        self.api = api
        self.store = api.store
        self.attempts = max(1, attempts)
        self.first_backoff = first_backoff
        self._urls = list(dict.fromkeys(urls))
        self._seen = self.store.last_event_seq()  # events from before this start are history, not news
        self._log: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def urls(self) -> list[str]:
        with self._lock:
            return list(self._urls)

    def set_urls(self, urls: Iterable[str]) -> None:
        """Deliver the events recorded from now on to these URLs (pending deliveries go on)."""
        with self._lock:
            if not self._urls:  # nothing was being queued: what happened until now is history
                self._seen = max(self._seen, self.store.last_event_seq())
            self._urls = list(dict.fromkeys(urls))
        self.poke()

    @property
    def log(self) -> list[dict[str, Any]]:
        """Every attempt so far: event_id, type, url, attempt, http_status (None: no answer),
        error, outcome ("successful", "retry", "failing"), at."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopping.clear()
            self._thread = threading.Thread(target=self._loop, name="conekta-sandbox-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=TIMEOUT + 5)
            self._thread = None

    def poke(self) -> None:
        """Look at the state now (an event was just recorded), not at the next poll."""
        self._wake.set()

    def redeliver(self, event_id: str) -> bool:
        """Send an event again to every configured URL, attempts starting over (a duplicate
        delivery, as Conekta may send); False if the event is unknown."""
        if self.store.event_scope(event_id) is None:
            return False
        for url in self.urls:
            self.store.add_delivery(event_id, url, time.time())
        self.poke()
        return True

    def busy(self) -> bool:
        """Deliveries still pending (not yet delivered, attempts left) or events not yet queued.

        Events first: the thread queues an event's deliveries *before* it counts the event as seen,
        so once every event is seen its deliveries are in the state.  (Asked the other way round, an
        event queued between the two questions was in neither answer.)"""
        if self.store.last_event_seq() > self._seen:
            return True
        return self.store.pending_deliveries() > 0

    # -- the thread --------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.api.expire_due()  # orders past their time expire by themselves: their events go out too
                self._queue_new_events()
                self._deliver_due()
            except Exception:  # noqa: BLE001 - a bad moment (state file busy) must not end deliveries
                pass
            due = self.store.next_delivery_due()
            wait = _IDLE_POLL if due is None else min(_IDLE_POLL, max(0.0, due - time.time()))
            self._wake.wait(wait)
            self._wake.clear()

    def _queue_new_events(self) -> None:
        while True:
            found = self.store.events_after(self._seen)
            if not found:
                return
            now = time.time()
            urls = self.urls
            for seq, _scope, event in found:
                for url in urls:
                    self.store.add_delivery(event["id"], url, now)
                self._seen = seq

    def _deliver_due(self) -> None:
        while not self._stopping.is_set():
            due = self.store.due_deliveries(time.time())
            if not due:
                return
            for event_id, url, attempts, scheduled in due:
                if self._stopping.is_set():
                    return
                self._attempt(event_id, url, attempts + 1, scheduled)

    def _attempt(self, event_id: str, url: str, attempt: int, scheduled: float | None = None) -> None:
        found = self.store.event_scope(event_id)
        if found is None:
            return
        scope, event = found
        shown = events.shown(event, self.store.deliveries_of([event_id]).get(event_id, []))
        body = json.dumps(shown, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json", "digest": sign(body, self.api.signing_key(scope, event["livemode"])),
                   "User-Agent": "conekta-sandbox-webhooks"}
        http_status: int | None = None
        error = None
        try:
            http_status = post(url, body, headers)
        except (OSError, http.client.HTTPException) as problem:
            error = f"{type(problem).__name__}: {problem}"
        now = time.time()
        if http_status is not None and 200 <= http_status < 300:
            outcome, next_at = events.SUCCESSFUL, now
        elif attempt >= self.attempts:
            outcome, next_at = events.FAILING, now
        else:
            outcome, next_at = "retry", now + backoff(attempt, self.first_backoff)
        # The log first: once the state says the delivery is done, ``wait_until_settled`` may return,
        # and a test reading the log then must find this attempt in it.
        with self._lock:
            self._log.append({"event_id": event_id, "type": event["type"], "url": url, "attempt": attempt,
                              "http_status": http_status, "error": error, "outcome": outcome, "at": now})
        self.store.record_attempt(event_id, url, status=events.PENDING if outcome == "retry" else outcome,
                                  attempts=attempt, next_attempt_at=next_at, http_status=http_status, at=int(now),
                                  scheduled=scheduled)
