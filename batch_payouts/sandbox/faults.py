"""What can go wrong between a client and Conekta, on purpose and replayably.

A payout client is only as good as its behaviour when the network or the API
misbehaves: a 503 before anything happened, an answer lost *after* the order
was created, a proxy's HTML page, a rate limit.  ``Faults`` describes how
often each of these happens (or exactly when, through ``script``), and
``FaultEngine`` turns that description into one decision per request.

Random faults draw from one ``random.Random(seed)`` so that a failing test can
be replayed with the same seed.  Faults fall in two groups:

* *before* anything is done (``error_*``, ``html_502``, ``throttle`` and the
  token-bucket rate limit): the request had no effect, a retry is always safe;
* *after commit* (``drop_after_commit``, ``stall_after_commit``,
  ``truncated_json``, ``error_500_after_commit``, ``conflict_409``): the order
  exists but the client cannot know it -- the case an exactly-once client must
  resolve with its Idempotency-Key or a lookup.  These apply only to writes
  (POST and PUT; the last two, like ``null_reference``, to POST only): on a
  read there is nothing to commit.  ``conflict_409`` is Conekta's "a request
  with the same Idempotency-Key is still in progress": the earlier request's
  work is committed, the answer is 409;
* ``null_reference``: the order is created but answered with ``reference:
  null`` (Conekta assigns it a moment later); the next ``reference_delay_gets``
  reads of that order still show null, later reads show the reference.

``ignore_idempotency_key`` makes the account behave like one on an API version
that ignores the header: every POST creates a new object, so a client that
resends a POST whose answer was lost pays twice unless it looks first.
``search_error_rate`` answers 503 to list searches (``?search=``), the lookup
such a client depends on, so "in doubt and cannot tell" can be reproduced.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

# Fault kinds a ``script`` may name, and that ``request_log`` reports.
BEFORE_KINDS = ("error_500", "error_502", "error_503", "html_502", "throttle")
AFTER_COMMIT_KINDS = ("drop_after_commit", "stall_after_commit", "truncated_json", "error_500_after_commit",
                      "conflict_409", "null_reference")
POST_ONLY_KINDS = ("error_500_after_commit", "conflict_409", "null_reference")
FAULT_KINDS = BEFORE_KINDS + AFTER_COMMIT_KINDS
# Reported in request_log but not scriptable: they come from state, not chance.
RATE_LIMITED = "rate_limit"
REVOKED = "revoke"


_RATES = ("error_rate", "throttle_rate", "drop_after_commit_rate", "stall_after_commit_rate",
          "html_502_rate", "truncated_json_rate", "error_after_commit_rate", "conflict_rate", "null_reference_rate",
          "search_error_rate")


class FaultsError(BatchError, ValueError):
    """A fault profile that cannot be used; a ``BatchError`` so the CLI shows a message."""


@dataclass
class Faults:
    """How the sandbox misbehaves.  All rates are probabilities in [0, 1].

    ``script`` maps the Nth POST (1-based, every POST to the API counted since
    these faults were set) to a fault kind, so a test can place one exactly; a
    scripted POST gets no random fault.
    """

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    error_rate: float = 0.0
    rate_limit_rps: float = 0.0  # 0 = no limit
    throttle_rate: float = 0.0
    retry_after_seconds: int = 1  # Retry-After sent with a random throttle
    drop_after_commit_rate: float = 0.0
    stall_after_commit_rate: float = 0.0
    stall_seconds: float = 5.0
    html_502_rate: float = 0.0
    truncated_json_rate: float = 0.0
    error_after_commit_rate: float = 0.0  # POST carried out, answered 500
    conflict_rate: float = 0.0  # POST carried out, answered 409 "same key still in progress"
    null_reference_rate: float = 0.0  # order created, answered with reference null
    reference_delay_gets: int = 1  # reads of such an order that still show reference null
    ignore_idempotency_key: bool = False  # like an account on an API version without idempotency
    search_error_rate: float = 0.0  # a list with ?search= answered 503 (the search index is down)
    # A GET of an unknown payout order answers 402 processing_error instead of 404, as public mocks
    # do (API.md): "not found" must then be confirmed through the list search.
    unknown_order_get_402: bool = False
    revoke_after_requests: int | None = None  # per key; lifted when faults are set again
    script: dict[int, str] = field(default_factory=dict)
    seed: int | None = None

    def __post_init__(self) -> None:
        source = "Faults"
        for name in _RATES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise FaultsError(TEXT.BAD_FAULTS, source=source, problem=f"{name}={value!r} (0..1)")
        for name in ("latency_ms", "latency_jitter_ms", "rate_limit_rps", "stall_seconds", "retry_after_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise FaultsError(TEXT.BAD_FAULTS, source=source, problem=f"{name}={value!r} (>= 0)")
        if not isinstance(self.unknown_order_get_402, bool):
            raise FaultsError(TEXT.BAD_FAULTS, source=source,
                              problem=f"unknown_order_get_402={self.unknown_order_get_402!r} (true or false)")
        if not isinstance(self.ignore_idempotency_key, bool):
            raise FaultsError(TEXT.BAD_FAULTS, source=source,
                              problem=f"ignore_idempotency_key={self.ignore_idempotency_key!r} (true or false)")
        if (isinstance(self.reference_delay_gets, bool) or not isinstance(self.reference_delay_gets, int)
                or self.reference_delay_gets < 0):
            raise FaultsError(TEXT.BAD_FAULTS, source=source, problem=f"reference_delay_gets={self.reference_delay_gets!r} (>= 0)")
        if self.revoke_after_requests is not None and (
            isinstance(self.revoke_after_requests, bool)
            or not isinstance(self.revoke_after_requests, int)
            or self.revoke_after_requests < 0
        ):
            raise FaultsError(TEXT.BAD_FAULTS, source=source, problem=f"revoke_after_requests={self.revoke_after_requests!r}")
        script: dict[int, str] = {}
        for key, kind in dict(self.script or {}).items():
            try:
                number = int(key)
            except (TypeError, ValueError):
                number = 0
            if number < 1:
                raise FaultsError(TEXT.BAD_FAULTS, source=source, problem=f"script key {key!r} (a POST number >= 1)")
            if kind not in FAULT_KINDS:
                raise FaultsError(TEXT.BAD_FAULTS, source=source,
                                  problem=f"script kind {kind!r} (one of {', '.join(FAULT_KINDS)})")
            script[number] = kind
        self.script = script

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "dict") -> Faults:
        """Build from plain data (JSON/TOML), refusing unknown names instead of ignoring a typo."""
        if not isinstance(data, dict):
            raise FaultsError(TEXT.BAD_FAULTS, source=source, problem="expected an object of fault settings")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FaultsError(TEXT.BAD_FAULTS, source=source,
                              problem=f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        try:
            return cls(**data)
        except FaultsError as error:
            raise FaultsError(TEXT.BAD_FAULTS, source=source, problem=error.params.get("problem", "")) from None
        except TypeError as error:
            raise FaultsError(TEXT.BAD_FAULTS, source=source, problem=str(error)) from None

    @classmethod
    def from_file(cls, path: str | Path) -> Faults:
        """A ``.json`` or ``.toml`` profile (other suffixes: JSON, then TOML)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise FaultsError(TEXT.BAD_FAULTS, source=str(path), problem=error.strerror or str(error)) from None
        suffix = path.suffix.lower()
        parsers = {".json": [_json], ".toml": [_toml]}.get(suffix, [_json, _toml])
        problem = ""
        for parse in parsers:
            try:
                return cls.from_dict(parse(text), source=str(path))
            except (ValueError, tomllib.TOMLDecodeError) as error:
                if isinstance(error, FaultsError):
                    raise
                problem = str(error)
        raise FaultsError(TEXT.BAD_FAULTS, source=str(path), problem=problem)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["script"] = {str(k): v for k, v in self.script.items()}
        return data


def _json(text: str) -> Any:
    return json.loads(text)


def _toml(text: str) -> Any:
    return tomllib.loads(text)


# Tried in this order, the first that rolls wins; a PUT skips the POST_ONLY_KINDS.
_AFTER_COMMIT_RATES = (
    ("drop_after_commit_rate", "drop_after_commit"), ("stall_after_commit_rate", "stall_after_commit"),
    ("truncated_json_rate", "truncated_json"), ("error_after_commit_rate", "error_500_after_commit"),
    ("conflict_rate", "conflict_409"), ("null_reference_rate", "null_reference"),
)


def _roll(rng, rate: float) -> bool:
    """True with probability ``rate``; a zero rate draws nothing, so a seed replays the same faults."""
    return bool(rate) and rng.random() < rate


@dataclass
class Decision:
    """What to do with one request: wait, then maybe fail before or after commit."""

    latency: float = 0.0
    before: str | None = None  # a BEFORE kind, or RATE_LIMITED
    after: str | None = None  # an AFTER_COMMIT kind
    retry_after: int = 1


class FaultEngine:
    """Turns a ``Faults`` into per-request decisions; thread-safe.

    Changing the faults (``set``) restarts the POST count, the random sequence,
    the rate-limit bucket and the per-key request counts, so a script or a
    seed always means the same thing from the moment it is installed.
    """

    def __init__(self, faults: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self.set(faults or Faults())

    def set(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)
            self._posts = 0
            self._tokens = max(1.0, faults.rate_limit_rps)
            self._refilled = time.monotonic()
            self._requests_by_key: dict[str, int] = {}
            self._hidden_references: dict[str, int] = {}

    def decide(self, method: str, *, search: bool = False) -> Decision:
        with self._lock:
            f = self.faults
            rng = self._rng
            decision = Decision(retry_after=max(1, int(f.retry_after_seconds)))
            decision.latency = (f.latency_ms + (rng.uniform(0, f.latency_jitter_ms) if f.latency_jitter_ms else 0)) / 1000
            if method == "POST":
                self._posts += 1
                scripted = f.script.get(self._posts)
                if scripted is not None:
                    if scripted in AFTER_COMMIT_KINDS:
                        decision.after = scripted
                    else:
                        decision.before = scripted
                    return decision
            wait = self._take_token(f)
            if wait is not None:
                decision.before = RATE_LIMITED
                decision.retry_after = wait
                return decision
            if search and _roll(rng, f.search_error_rate):
                decision.before = "error_503"
            elif _roll(rng, f.error_rate):
                decision.before = rng.choice(("error_500", "error_502", "error_503"))
            elif _roll(rng, f.html_502_rate):
                decision.before = "html_502"
            elif _roll(rng, f.throttle_rate):
                decision.before = "throttle"
            elif method in ("POST", "PUT"):
                decision.after = next((kind for rate, kind in _AFTER_COMMIT_RATES
                                       if (method == "POST" or kind not in POST_ONLY_KINDS)
                                       and _roll(rng, getattr(f, rate))), None)
            return decision

    def hide_reference(self, order_id: str) -> None:
        """An order just answered with ``reference: null``: its next reads show null too."""
        with self._lock:
            self._hidden_references[order_id] = self.faults.reference_delay_gets

    def visible(self, order: dict[str, Any], *, read: bool) -> dict[str, Any]:
        """The order as a client sees it now: without its reference while that is still pending.
        ``read`` (a GET of the order) uses up one of the pending reads; a list does not."""
        with self._lock:
            left = self._hidden_references.get(order.get("id"), 0)
            if left <= 0:
                return order
            if read:
                self._hidden_references[order["id"]] = left - 1
        return {**order, "reference": None}

    def _take_token(self, f: Faults) -> int | None:
        """A token bucket shared by all clients: None if allowed, else whole seconds to wait."""
        if not f.rate_limit_rps:
            return None
        now = time.monotonic()
        capacity = max(1.0, f.rate_limit_rps)
        self._tokens = min(capacity, self._tokens + (now - self._refilled) * f.rate_limit_rps)
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return max(1, math.ceil((1 - self._tokens) / f.rate_limit_rps))

    def count_authenticated(self, fingerprint: str) -> bool:
        """Count one authenticated request; True when it exceeds ``revoke_after_requests``
        (and for every later request of that key, until the faults are set again)."""
        with self._lock:
            limit = self.faults.revoke_after_requests
            if limit is None:
                return False
            count = self._requests_by_key.get(fingerprint, 0) + 1
            self._requests_by_key[fingerprint] = count
            return count > limit
