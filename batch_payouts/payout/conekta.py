"""The Conekta HTTP client: headers, auth, retries, and typed errors.

It knows nothing about spreadsheets or ledgers: callers pass plain dicts and an
``Idempotency-Key`` and get plain dicts back, or a ``ConektaError`` subclass.

Money is at stake, so the client keeps one distinction sharp, in the *type* of
the error (as stripe-python does): a failure that certainly did *not* happen at
Conekta (``Unavailable``: a refused connection, a 429; ``Refused``: a 4xx with
a code) versus one that *may* have happened (``OutcomeUnknown``: a timeout or
reset after the request was sent, every 5xx, an unreadable answer, a 409 on a
create).  The pipeline records the second kind as ``unknown``, never ``failed``.

A POST that may have executed is never resent on the Idempotency-Key alone: an
account that ignores the key would create the order twice.  The caller passes
a ``lookup`` (the order by its metadata, the customer by email); only when the
lookup says the object does not exist is the request sent again.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from batch_payouts import __version__
from batch_payouts.rules.columns import DEFAULT_API_VERSION
from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue
from batch_payouts.payout.conekta_errors import (  # noqa: F401 - the error types are part of the client's API
    GIVE_UP,
    LOOK_UP_FIRST,
    RATE_LIMITED_RETRIES,
    RESEND,
    AuthenticationError,
    ConektaError,
    OutcomeUnknown,
    RateLimited,
    Refused,
    Unavailable,
    describe,
    error_kind,
    retry_decision,
)

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

# urllib3 (with http.client, ssl) is imported by the client itself, not by this module: `batch-payouts validate` and everything else
# that only needs the constants or ConektaError never pays for it.

DEFAULT_API_BASE = "https://api.conekta.io"
API_KEY_ENV = "CONEKTA_API_KEY"
API_BASE_ENV = "CONEKTA_API_BASE"

# Retry budget and wait, after stripe-python: exponential from 0.5 s, capped,
# jittered into [half, full], never shorter than the server's Retry-After.
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True)
class ClientConfig:
    """Everything the client needs; the key is excluded from repr and logs."""

    api_key: str = field(repr=False)
    api_base: str = DEFAULT_API_BASE
    api_version: str = DEFAULT_API_VERSION
    lang: str = "es"
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_retries: int = 4
    pool_size: int = 16
    initial_backoff: float = INITIAL_BACKOFF


def api_key_from_env(environ: dict[str, str] | None = None) -> str:
    """The key comes only from the environment, so it never shows in argv or `ps`."""
    key = (environ if environ is not None else os.environ).get(API_KEY_ENV, "").strip()
    if not key:
        raise BatchError(TEXT.MISSING_KEY)
    return key


def check_api_base(url: str) -> str:
    """Refuse plain http except to loopback: a key must never cross a network in clear."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BatchError(TEXT.BAD_BASE, url=url)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise BatchError(TEXT.INSECURE_BASE, url=url)
    return url.strip().rstrip("/")


def is_loopback(host: str) -> bool:
    """localhost or a loopback address; anything else (a name, "", 0.0.0.0) may reach a network."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def backoff_seconds(
    attempt: int,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
    initial: float = INITIAL_BACKOFF,
) -> float:
    """Exponential wait with jitter in [half, full], never below Retry-After."""
    full = min(MAX_BACKOFF, initial * (2 ** (attempt - 1)))
    wait = full * (0.5 + rand() / 2)
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_RETRY_AFTER))
    return wait


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class ConektaClient:
    """A pooled session speaking Conekta's versioned JSON API.

    ``sleep`` and ``rand`` are injectable so tests can run retries instantly
    and deterministically; ``throttle`` (anything with ``acquire()`` and
    ``penalize(seconds)``) lets several workers share one rate limit.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        throttle: Any = None,
        on_call: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self._base = check_api_base(config.api_base)
        self._sleep = sleep
        self._rand = rand
        self._throttle = throttle
        self._on_call = on_call
        import base64

        import urllib3

        parts = urlsplit(self._base)
        self._prefix = parts.path.rstrip("/")  # a base with a path (a proxy's) keeps it before every call
        # urllib3's pool directly, not a requests.Session: the same pooled keep-alive connections at
        # about a quarter of the CPU per request (benchmarks/, issue 17).  No retries inside it (ours
        # decide), no environment (proxies, CA bundles) changing where the money goes, and the
        # certificate always verified against certifi's bundle, as requests did.
        pool_options: dict[str, Any] = {"maxsize": config.pool_size, "block": False, "retries": False,
                                        "timeout": urllib3.Timeout(connect=config.connect_timeout,
                                                                   read=config.read_timeout)}
        if parts.scheme == "https":
            import certifi

            pool_options.update(cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())
        self._pool = urllib3.connection_from_url(self._base, **pool_options)
        from batch_payouts.payout.one_send import PreparedHeaders, use_one_send

        use_one_send(self._pool)  # headers and body in one send: fewer system calls per POST
        token = base64.b64encode(f"{config.api_key}:".encode()).decode()
        self._headers = PreparedHeaders.of({
            "Accept": f"application/vnd.conekta-v{config.api_version}+json",
            "Accept-Encoding": "gzip, deflate",
            "Content-Type": "application/json",
            "Accept-Language": config.lang,
            "User-Agent": f"batch-payouts/{__version__} python-urllib3/{urllib3.__version__}",
            "Authorization": f"Basic {token}",
        })  # checked and encoded once (``one_send``)

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> ConektaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the operations batch-payouts uses ---------------------------------
    def create_customer(self, body: dict[str, Any], idempotency_key: str, text: str | None = None) -> dict[str, Any]:
        """``text``: ``body`` already encoded (an intent's stored text), sent as it is."""
        email = str(body.get("email") or "")
        return self.request("POST", "/customers", body=body, body_text=text, idempotency_key=idempotency_key,
                            operation="customer", lookup=(lambda: self.find_customer(email)) if email else None)

    def create_payout_order(self, body: dict[str, Any], idempotency_key: str, text: str | None = None
                            ) -> dict[str, Any]:
        """``text``: ``body`` already encoded (an intent's stored text), sent as it is."""
        metadata = body.get("metadata") or {}
        wanted = {name: str(metadata[name]) for name in ("batch_id", "row_key") if metadata.get(name)}
        return self.request("POST", "/payout_orders", body=body, body_text=text, idempotency_key=idempotency_key,
                            operation="payout_order", lookup=(lambda: self.find_payout_order(wanted)) if wanted else None)

    def get_customer(self, customer_id: str) -> dict[str, Any]:
        return self.request("GET", f"/customers/{customer_id}")

    def get_payout_order(self, order_id: str) -> dict[str, Any]:
        return self.request("GET", f"/payout_orders/{order_id}")

    def cancel_payout_order(self, order_id: str) -> dict[str, Any]:
        return self.request("PUT", f"/payout_orders/{order_id}/cancel")

    def get_balance(self) -> dict[str, Any]:
        return self.request("GET", "/balance")

    def list_payout_orders(self, search: str | None = None, limit: int = 250) -> Iterator[dict[str, Any]]:
        """Every payout order matching ``search``, newest first, following ``next`` cursors."""
        return self._list("/payout_orders", search, limit)

    def list_events(self, limit: int = 100) -> Iterator[dict[str, Any]]:
        """Every event of the account, newest first, page after page (``GET /events``).

        Conekta does not promise a ``created_at`` filter, so a caller catching up stops
        reading when it meets an event it already applied (``events_sync``)."""
        return self._list("/events", None, limit)

    def webhook_keys(self) -> list[dict[str, Any]]:
        """The account's webhook keys (``GET /webhook_keys``): their ``public_key`` verifies deliveries."""
        return list(self._list("/webhook_keys", None, 100))

    def _list(self, path: str, search: str | None, limit: int) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if search:
            params["search"] = search
        while True:
            page = self.request("GET", path, params=params)
            data = page.get("data") or []
            yield from data
            if not page.get("has_more") or not data:
                return
            params = {**params, "next": data[-1]["id"]}

    def find_payout_order(self, metadata: dict[str, str]) -> dict[str, Any] | None:
        """The order whose metadata holds all of ``metadata``, if one exists.

        One search (by ``row_key``, the rarest value), newest first, every page
        read: asked before resending an order that may exist, because an
        account may ignore the Idempotency-Key.
        """
        search = metadata.get("row_key") or next(iter(metadata.values()))
        for order in self.list_payout_orders(search=search):
            found = order.get("metadata") or {}
            if all(str(found.get(k)) == str(v) for k, v in metadata.items()):
                return order
        return None

    def find_customer(self, email: str) -> dict[str, Any] | None:
        """The newest customer with exactly this email (case-insensitive), if one exists."""
        wanted = email.strip().lower()
        for customer in self._list("/customers", wanted, 250):
            if str(customer.get("email") or "").strip().lower() == wanted:
                return customer
        return None

    def await_reference(self, order: dict[str, Any], tries: int = 3) -> dict[str, Any]:
        """An order created without its ``reference`` (Conekta assigns it a moment later),
        read again up to ``tries`` times with backoff; the latest copy, reference or not.

        A failed read is not the order's failure: the copy we have is returned and
        ``status`` fills the reference in later.  A refused key still stops the batch.
        """
        for attempt in range(1, tries + 1):
            if order.get("reference") or not order.get("id"):
                break
            self._sleep(backoff_seconds(attempt, None, self._rand, self.config.initial_backoff))
            try:
                order = self.get_payout_order(order["id"])
            except ConektaError as error:
                if error.stops_batch:
                    raise
                break
        return order

    # -- transport ----------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        body_text: str | None = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        operation: str | None = None,
        lookup: Callable[[], dict[str, Any] | None] | None = None,
    ) -> dict[str, Any]:
        """One logical call, retried per ``retry_decision``; raises a ``ConektaError`` subclass.

        The body is serialised once (or given so, ``body_text``), so every attempt
        sends the same bytes with the same Idempotency-Key.  A POST that may have executed is resent only
        after ``lookup`` answers None (it does not exist); if ``lookup`` finds
        the object it is the answer; without a lookup, or if the lookup fails,
        the call ends as ``OutcomeUnknown``.
        """
        if body_text is not None:
            data: bytes | None = body_text.encode()
        else:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() if body is not None else None
        headers = self._headers.plus({"Idempotency-Key": idempotency_key}) if idempotency_key else self._headers
        context = {"operation": operation, "idempotency_key": idempotency_key}
        from urllib3.exceptions import HTTPError, SSLError  # already loaded by __init__

        url = self._prefix + path + (("?" + urlencode(params, doseq=True)) if params else "")
        maybe_executed = False
        attempt = 0
        while True:
            attempt += 1
            if self._throttle is not None:
                self._throttle.acquire()
            started = time.monotonic()
            retry_after: float | None = None
            try:
                raw = self._pool.urlopen(method, url, body=data, headers=headers, retries=False, redirect=False,
                                         assert_same_host=False, preload_content=True)
                response = Answer(raw.status, raw.headers, raw.data)
            except (HTTPError, OSError) as exc:
                # A TLS failure happens in the handshake, before anything is sent, and
                # fails the same way on every retry: retry_decision gives up at once.
                tls = isinstance(exc, SSLError)
                kind = error_kind(method, None, sent=not (tls or _never_sent(exc)))
                error = kind(None, "tls_error" if tls else "connection_error", message=_transport_message(exc), **context)
            else:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                result = _parse_answer(response, method, context)
                if isinstance(result, dict):
                    self._report(method, path, idempotency_key, response.status_code, result.get("log_id"), started)
                    return result
                error = result
                if isinstance(error, RateLimited) and self._throttle is not None:
                    self._throttle.penalize(retry_after or 1.0)
            self._report(method, path, idempotency_key, error.http_status, error.log_id, started)
            maybe_executed = maybe_executed or error.in_doubt
            decision = retry_decision(error, method=method, attempt=attempt, max_retries=self.config.max_retries)
            if method == "POST" and maybe_executed and decision != RESEND and not error.stops_batch:
                # Wait (a request still in progress may commit meanwhile), then ask.
                self._sleep(backoff_seconds(attempt, retry_after, self._rand, self.config.initial_backoff))
                found = _looked_up(lookup, error)
                if found is not None:
                    return found
                maybe_executed = False  # it does not exist: sending again cannot make a second one
                if decision == LOOK_UP_FIRST:
                    continue
            if decision == GIVE_UP:
                raise error.as_kind(OutcomeUnknown) if maybe_executed else error
            if isinstance(error, RateLimited) and self._throttle is not None:
                continue  # the shared limiter already holds every worker back for Retry-After
            self._sleep(backoff_seconds(attempt, retry_after, self._rand, self.config.initial_backoff))

    def _report(self, method, path, idempotency_key, status, log_id, started) -> None:
        if self._on_call is not None:
            self._on_call(
                {
                    "method": method,
                    "path": path,
                    "idempotency_key": idempotency_key,
                    "http_status": status,
                    "log_id": log_id,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                }
            )


def _looked_up(lookup: Callable[[], dict[str, Any] | None] | None, error: ConektaError) -> dict[str, Any] | None:
    """The object a POST in doubt may have created, or None if it certainly does not exist.

    Without a lookup, or when the lookup itself fails, nobody can tell: the
    call ends ``OutcomeUnknown`` (a refused key during the lookup still stops
    the batch, through the status it carries).
    """
    if lookup is None:
        raise error.as_kind(OutcomeUnknown)
    try:
        return lookup()
    except ConektaError as failure:
        unknown = (failure if failure.stops_batch else error).as_kind(OutcomeUnknown)
        unknown.operation, unknown.idempotency_key = error.operation, error.idempotency_key
        raise unknown from failure


def _never_sent(exc: Exception) -> bool:
    """A connect timeout or a refused connection: the request never left this machine."""
    from urllib3.exceptions import ConnectTimeoutError  # NewConnectionError (refused) is one too

    return isinstance(exc, ConnectTimeoutError)


def _transport_message(exc: Exception) -> str:
    """Name the failure without echoing URLs with credentials or headers."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError, SSLError

    if isinstance(exc, ReadTimeoutError):
        return "no answer within the read timeout (ReadTimeout)"
    if isinstance(exc, NewConnectionError):
        return "connection failed (ConnectionError)"
    if isinstance(exc, ConnectTimeoutError):
        return "could not connect within the timeout (ConnectTimeout)"
    if isinstance(exc, SSLError):
        return "TLS certificate verification failed (SSLError)"
    return "connection failed (ConnectionError)"


class Answer:
    """An HTTP answer as ``_parse_answer`` reads it: status, headers, and the body's bytes."""

    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code: int, headers: Any, content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)  # ValueError when it is not JSON (or not UTF-8)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def _parse_answer(response: Answer, method: str, context: dict[str, Any]) -> dict[str, Any] | ConektaError:
    """A 2xx JSON object, or the typed error the answer describes (Conekta's message kept as data)."""
    status = response.status_code
    try:
        payload = response.json()
    except ValueError:
        payload = None
    kind = error_kind(method, status)
    if 200 <= status < 300:
        if isinstance(payload, dict):
            return payload
        return kind(status, "invalid_response", message="the answer was not valid JSON", **context)
    if not isinstance(payload, dict):
        snippet = response.text[:80].replace("\n", " ") if response.text else ""
        return kind(status, "api_error", message=f"non-JSON answer: {snippet}", **context)
    details = payload.get("details") or [{}]
    first = details[0] if isinstance(details, list) and details and isinstance(details[0], dict) else {}
    messages = [d.get("message") for d in details if isinstance(d, dict) and d.get("message")]
    return kind(
        status,
        str(payload.get("type") or "api_error"),
        code=first.get("code"),
        param=first.get("param"),
        message="; ".join(messages) or str(payload.get("message") or ""),
        log_id=payload.get("log_id"),
        **context,
    )
