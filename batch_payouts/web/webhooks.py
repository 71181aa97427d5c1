"""``POST /webhooks/conekta``: Conekta's events about payout orders, received, checked, recorded.

No sign-in and no CSRF token -- Conekta is the caller -- but every delivery must carry a valid
signature (``payout.webhook_signature``): an unsigned or badly signed one gets 401 and changes
nothing.  The public key is the ``webhook-public-key`` PEM file of the config, else the
account's active key from ``GET /webhook_keys``, fetched with the server's API key once and
kept (fetched again at most once a minute when a signature fails, in case Conekta rotated it).
The event is recorded in the ledger (one small transaction) and answered 200 at once; the
audit line is written after the answer.
"""

from __future__ import annotations

import json
import threading
import time

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from batch_payouts.payout.conekta import (
    API_BASE_ENV, DEFAULT_API_BASE, ClientConfig, ConektaClient, ConektaError, api_key_from_env, check_api_base,
)
from batch_payouts.errors import BatchError
from batch_payouts.payout.ledger import Ledger
from batch_payouts.payout.order_events import BadEvent, apply_event, audit_applied
from batch_payouts.payout.webhook_signature import signature_valid
from batch_payouts.web.settings import WebSettings

WEBHOOK = "webhook"
REFETCH_AFTER = 60.0  # seconds: a failing signature asks Conekta for the key again at most this often


class WebhookKey:
    """The public key deliveries are checked with: from the config's PEM file, or from Conekta once."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self._pem: str | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def get(self, refresh: bool = False) -> str | None:
        settings = self.settings
        if settings.webhook_public_key is not None:
            return settings.webhook_public_key.read_text(encoding="utf-8")
        with self._lock:
            stale = refresh and time.monotonic() - self._fetched_at > REFETCH_AFTER
            if self._pem is None or stale:
                self._pem = self._fetch() or self._pem
                self._fetched_at = time.monotonic()
            return self._pem

    def _fetch(self) -> str | None:
        env = self.settings.environ
        try:
            config = ClientConfig(api_key=api_key_from_env(env), api_version=self.settings.api_version,
                                  api_base=check_api_base(self.settings.api_base or env.get(API_BASE_ENV)
                                                          or DEFAULT_API_BASE), max_retries=2)
            with ConektaClient(config) as client:
                keys = client.webhook_keys()
        except (BatchError, ConektaError):
            return None
        active = [k for k in keys if k.get("active") and k.get("public_key")]
        return str(active[0]["public_key"]) if active else None


class WebhookReceiver:
    """The route; mixed into ``WebApp`` (``settings`` is the app's)."""

    settings: WebSettings
    webhook_key: WebhookKey

    async def conekta_webhook(self, request: Request) -> Response:
        raw = await request.body()
        digest = request.headers.get("digest")
        pem = await run_in_threadpool(self.webhook_key.get)
        if pem is None:  # cannot check it now: Conekta retries a non-2xx delivery later
            return JSONResponse({"error": "webhook key unavailable"}, status_code=503)
        if not signature_valid(raw, digest, pem):
            fresh = await run_in_threadpool(self.webhook_key.get, True)
            if fresh is None or fresh == pem or not signature_valid(raw, digest, fresh):
                return JSONResponse({"error": "invalid signature"}, status_code=401)
        try:
            event = json.loads(raw)
            if not isinstance(event, dict):
                raise BadEvent("not an object")
            outcome = await run_in_threadpool(self._record, event)
        except (ValueError, BadEvent):
            return JSONResponse({"error": "not a Conekta event"}, status_code=400)
        return JSONResponse({"received": True, "outcome": outcome.outcome},
                            background=BackgroundTask(self._audit, outcome))

    def _record(self, event: dict):
        with Ledger(self.settings.ledger_path) as ledger:
            return apply_event(ledger, event, WEBHOOK)

    def _audit(self, outcome) -> None:
        with Ledger(self.settings.ledger_path) as ledger:
            audit_applied(ledger, outcome, WEBHOOK)
