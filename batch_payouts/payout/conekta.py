"""The Conekta HTTP client: headers, auth, retries, and one exception type.

It knows nothing about spreadsheets or ledgers: callers pass plain dicts and an
``Idempotency-Key`` and get plain dicts back, or a ``ConektaError``.

Money is at stake, so the client keeps one distinction sharp: a failure that
certainly did *not* happen at Conekta (a 4xx answer, a 429, a refused
connection) versus one that *may* have happened (a timeout or reset after the
request was sent, a 5xx, an unreadable answer).  The second kind is raised with
``in_doubt=True``; the pipeline then records the row as ``unknown`` instead of
``failed``, and a rerun resolves it by looking the order up and resending with
the same Idempotency-Key.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from batch_payouts import __version__
from batch_payouts.errors import BatchError
from batch_payouts.i18n import Text

if TYPE_CHECKING:
    import requests

# requests (with urllib3, charset_normalizer, http.client, ssl) is imported by the
# client itself, not by this module: `batch-payouts validate` and everything else
# that only needs the constants or ConektaError never pays for it.

DEFAULT_API_BASE = "https://api.conekta.io"
DEFAULT_API_VERSION = "2.0.0"
API_KEY_ENV = "CONEKTA_API_KEY"
API_BASE_ENV = "CONEKTA_API_BASE"

# Retry budget and wait, after stripe-python: exponential from 0.5 s, capped,
# jittered into [half, full], never shorter than the server's Retry-After.
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 60.0
RATE_LIMITED_RETRIES = 20

MISSING_KEY = Text(
    es="Falta la llave de API: define la variable de entorno CONEKTA_API_KEY "
    "con tu llave privada de Conekta (nunca la pases como argumento).",
    en="The API key is missing: set the CONEKTA_API_KEY environment variable "
    "to your Conekta private key (never pass it as an argument).",
)
INSECURE_BASE = Text(
    es="La dirección de la API «{url}» no es segura: usa https:// (http:// solo "
    "se permite hacia esta misma máquina, 127.0.0.1 o localhost).",
    en="The API address '{url}' is not secure: use https:// (http:// is only "
    "allowed to this machine, 127.0.0.1 or localhost).",
)
BAD_BASE = Text(
    es="La dirección de la API «{url}» no es válida: debe ser como https://api.conekta.io.",
    en="The API address '{url}' is not valid: it must look like https://api.conekta.io.",
)


@dataclass
class ConektaError(Exception):
    """Any failed call to Conekta, with what support needs to trace it.

    ``in_doubt`` is True when the request may have been carried out although
    no usable answer arrived; such a call must be looked up or retried with the
    same Idempotency-Key, never treated as a plain failure.
    """

    http_status: int | None
    type: str
    code: str | None = None
    param: str | None = None
    message: str = ""
    log_id: str | None = None
    in_doubt: bool = False

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def stops_batch(self) -> bool:
        """A refused key or a forbidden account: no further row can succeed."""
        return self.http_status in (401, 403)

    def __str__(self) -> str:
        parts = [f"HTTP {self.http_status}" if self.http_status else "sin respuesta", self.type]
        if self.code:
            parts.append(self.code)
        text = " ".join(parts) + (f": {self.message}" if self.message else "")
        return text + (f" (log_id {self.log_id})" if self.log_id else "")


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
        raise BatchError(MISSING_KEY)
    return key


def check_api_base(url: str) -> str:
    """Refuse plain http except to loopback: a key must never cross a network in clear."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BatchError(BAD_BASE, url=url)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise BatchError(INSECURE_BASE, url=url)
    return url.strip().rstrip("/")


def is_loopback(host: str) -> bool:
    """localhost or a loopback address; anything else (a name, "", 0.0.0.0) may reach a network."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def should_retry(*, attempt: int, max_retries: int, status: int | None) -> bool:
    """Retry transport failures (status None), 429 and 5xx; never other answers.

    ``attempt`` counts the attempts already made (1 after the first).  A 429
    proves nothing was done and only asks us to wait, so it has a larger
    budget: a batch running at the account's limit must not fail rows for it.
    """
    if attempt > (max(max_retries, RATE_LIMITED_RETRIES) if status == 429 else max_retries):
        return False
    if status is None:
        return True
    return status == 429 or status >= 500


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
        import requests
        from requests.adapters import HTTPAdapter

        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=config.pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.auth = (config.api_key, "")
        self.session.trust_env = False  # a stray REQUESTS_CA_BUNDLE/NO_PROXY must not change where money goes
        self.session.verify = True
        self.session.headers.update(
            {
                "Accept": f"application/vnd.conekta-v{config.api_version}+json",
                "Content-Type": "application/json",
                "Accept-Language": config.lang,
                "User-Agent": f"batch-payouts/{__version__} python-requests/{requests.__version__}",
            }
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ConektaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the operations batch-payouts uses ---------------------------------
    def create_customer(self, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        return self.request("POST", "/customers", body=body, idempotency_key=idempotency_key)

    def create_payout_order(self, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        return self.request("POST", "/payout_orders", body=body, idempotency_key=idempotency_key)

    def get_customer(self, customer_id: str) -> dict[str, Any]:
        return self.request("GET", f"/customers/{customer_id}")

    def get_payout_order(self, order_id: str) -> dict[str, Any]:
        return self.request("GET", f"/payout_orders/{order_id}")

    def cancel_payout_order(self, order_id: str) -> dict[str, Any]:
        return self.request("PUT", f"/payout_orders/{order_id}/cancel")

    def get_balance(self) -> dict[str, Any]:
        return self.request("GET", "/balance")

    def list_payout_orders(self, search: str | None = None, limit: int = 250) -> Iterator[dict[str, Any]]:
        """Every payout order matching ``search``, following ``next`` cursors."""
        params: dict[str, Any] = {"limit": limit}
        if search:
            params["search"] = search
        while True:
            page = self.request("GET", "/payout_orders", params=params)
            data = page.get("data") or []
            yield from data
            if not page.get("has_more") or not data:
                return
            params = {**params, "next": data[-1]["id"]}

    def find_payout_order(self, metadata: dict[str, str]) -> dict[str, Any] | None:
        """The order whose metadata holds all of ``metadata``, if one exists.

        Used before resending an order whose outcome is unknown, because an
        account on an older API version may ignore the Idempotency-Key.
        """
        search = metadata.get("row_key") or next(iter(metadata.values()))
        for order in self.list_payout_orders(search=search):
            found = order.get("metadata") or {}
            if all(str(found.get(k)) == str(v) for k, v in metadata.items()):
                return order
        return None

    # -- transport ----------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """One logical call, retried per ``should_retry``; raises ``ConektaError``.

        The body is serialised once, so every attempt sends the same bytes with
        the same Idempotency-Key.
        """
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() if body is not None else None
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        import requests  # already loaded by __init__

        url = self._base + path
        maybe_executed = False
        attempt = 0
        while True:
            attempt += 1
            if self._throttle is not None:
                self._throttle.acquire()
            started = time.monotonic()
            status: int | None = None
            retry_after: float | None = None
            try:
                response = self.session.request(
                    method,
                    url,
                    data=data,
                    params=params,
                    headers=headers,
                    timeout=(self.config.connect_timeout, self.config.read_timeout),
                )
            except requests.exceptions.SSLError as exc:
                # The handshake failed before anything was sent, and it will fail the same way
                # on every retry: say so now instead of after the whole retry budget.
                error = ConektaError(None, "tls_error", message=_transport_message(exc))
                self._report(method, path, idempotency_key, None, None, started)
                error.in_doubt = maybe_executed
                raise error from exc
            except requests.exceptions.ConnectTimeout as exc:
                error = ConektaError(None, "connection_error", message=_transport_message(exc))
            except requests.exceptions.RequestException as exc:
                # Sent, perhaps carried out, answer lost (reset, read timeout).
                maybe_executed = maybe_executed or method != "GET"
                error = ConektaError(None, "connection_error", message=_transport_message(exc))
            else:
                status = response.status_code
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                result = _parse_answer(response)
                if isinstance(result, dict):
                    self._report(method, path, idempotency_key, status, result.get("log_id"), started)
                    return result
                error = result
                if status >= 500 or (200 <= status < 300):
                    maybe_executed = maybe_executed or method != "GET"
                if 200 <= status < 300:
                    status = None  # carried out but unreadable: the replay will tell
                if status == 429 and self._throttle is not None:
                    self._throttle.penalize(retry_after or 1.0)
            self._report(method, path, idempotency_key, error.http_status, error.log_id, started)
            if not should_retry(attempt=attempt, max_retries=self.config.max_retries, status=status):
                error.in_doubt = maybe_executed
                raise error
            if status == 429 and self._throttle is not None:
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


def _transport_message(exc: Exception) -> str:
    """Name the failure without echoing URLs with credentials or headers."""
    import requests

    kind = type(exc).__name__
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "no answer within the read timeout (ReadTimeout)"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "could not connect within the timeout (ConnectTimeout)"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS certificate verification failed (SSLError)"
    return f"connection failed ({kind})"


def _parse_answer(response: requests.Response) -> dict[str, Any] | ConektaError:
    """A 2xx JSON object, or the ConektaError the answer describes."""
    status = response.status_code
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if 200 <= status < 300:
        if isinstance(payload, dict):
            return payload
        return ConektaError(status, "invalid_response", message="the answer was not valid JSON")
    if not isinstance(payload, dict):
        snippet = response.text[:80].replace("\n", " ") if response.text else ""
        return ConektaError(status, "api_error", message=f"non-JSON answer: {snippet}")
    details = payload.get("details") or [{}]
    first = details[0] if isinstance(details, list) and details and isinstance(details[0], dict) else {}
    messages = [d.get("message") for d in details if isinstance(d, dict) and d.get("message")]
    return ConektaError(
        status,
        str(payload.get("type") or "api_error"),
        code=first.get("code"),
        param=first.get("param"),
        message="; ".join(messages) or str(payload.get("message") or ""),
        log_id=payload.get("log_id"),
    )
