"""What a failed call to Conekta means for money, as types (after stripe-python).

One base, ``ConektaError`` (so ``except ConektaError`` anywhere still works),
and one subclass per meaning: the key is refused (``AuthenticationError``), the
request was certainly not carried out (``Unavailable``, ``RateLimited``), it
may have been (``OutcomeUnknown``), or Conekta refused it (``Refused``).
``error_kind`` is the one map from an HTTP outcome to a type and
``retry_decision`` the one retry policy; the pipeline only reads the type.
Kept apart from the client so both stay small and this loads without requests.
"""

from __future__ import annotations

from dataclasses import dataclass

# A 429 proves nothing was done and only asks us to wait: it has its own, larger, retry budget.
RATE_LIMITED_RETRIES = 20


@dataclass
class ConektaError(Exception):
    """Any failed call to Conekta, with what support needs to trace it.

    The subclass says what the failure means for money; ``operation`` and
    ``idempotency_key`` are set when the error is built, so the pipeline never
    has to patch them on afterwards.
    """

    http_status: int | None
    type: str
    code: str | None = None
    param: str | None = None
    message: str = ""
    log_id: str | None = None
    operation: str | None = None
    idempotency_key: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def stops_batch(self) -> bool:
        """A refused key or a forbidden account: no further row can succeed."""
        return isinstance(self, AuthenticationError) or self.http_status in (401, 403)

    @property
    def in_doubt(self) -> bool:
        """The request may have been carried out: look it up, never call it failed."""
        return isinstance(self, OutcomeUnknown)

    def __str__(self) -> str:
        return describe(self.http_status, self.type, self.code, self.message, self.log_id)

    def as_kind(self, kind: type[ConektaError]) -> ConektaError:
        """The same details under another meaning (e.g. a 401 after an attempt that may have executed)."""
        if type(self) is kind:
            return self
        return kind(self.http_status, self.type, self.code, self.param, self.message, self.log_id,
                    self.operation, self.idempotency_key)


def describe(http_status: int | None, type: str | None, code: str | None = None, message: str | None = None,
             log_id: str | None = None, no_answer: str = "sin respuesta") -> str:
    """A failure in one line for support: status, type, code, Conekta's own message, log_id.
    Takes plain values so a failure stored in the ledger renders the same way later."""
    parts = [f"HTTP {http_status}" if http_status else no_answer, type or ""]
    if code:
        parts.append(code)
    text = " ".join(p for p in parts if p) + (f": {message}" if message else "")
    return text + (f" (log_id {log_id})" if log_id else "")


class AuthenticationError(ConektaError):
    """401/403: the key is refused or the account forbidden; the batch stops."""


class Unavailable(ConektaError):
    """Known NOT carried out (connection refused, 429, a read that failed): safe to send again."""


class RateLimited(Unavailable):
    """429: nothing was done, Conekta only asks us to wait."""


class OutcomeUnknown(ConektaError):
    """May have been carried out (every 5xx on a write, a lost or unreadable answer, a 409 on a
    create): look it up before sending it again; never counted as failed."""


class Refused(ConektaError):
    """A 4xx with Conekta's code and param: nothing was done and resending changes nothing."""


def error_kind(method: str, status: int | None, *, sent: bool = True) -> type[ConektaError]:
    """What a failed attempt means: the one place that maps an HTTP outcome to an error type.

    ``status`` None is a transport failure; ``sent`` False when the request
    never left (refused connection, connect timeout).  A status in 2xx here is
    an answer that could not be read.  A read (GET) changes nothing, so any
    failure of one is merely ``Unavailable``.
    """
    if status in (401, 403):
        return AuthenticationError
    if status == 429:
        return RateLimited
    if status is None and not sent:
        return Unavailable
    writes = method != "GET"
    if status is None or status >= 500 or 200 <= status < 300 or (status == 409 and method == "POST"):
        return OutcomeUnknown if writes else Unavailable
    return Refused


# What the client does after a failed attempt.
RESEND, LOOK_UP_FIRST, GIVE_UP = "resend", "look_up_first", "give_up"


def retry_decision(error: ConektaError, *, method: str, attempt: int, max_retries: int) -> str:
    """The retry policy, in one function: resend, look up first, or give up.

    ``attempt`` counts the attempts already made (1 after the first).  A 429
    proves nothing was done and only asks us to wait, so it has a larger
    budget: a batch running at the account's limit must not fail rows for it.
    A POST that may have executed is only resent after a lookup says it does
    not exist; a PUT (cancel) is naturally idempotent and is simply resent.
    """
    if isinstance(error, (Refused, AuthenticationError)) or error.type == "tls_error":
        return GIVE_UP
    if attempt > (max(max_retries, RATE_LIMITED_RETRIES) if isinstance(error, RateLimited) else max_retries):
        return GIVE_UP
    if isinstance(error, OutcomeUnknown) and method == "POST":
        return LOOK_UP_FIRST
    return RESEND
