"""The client's retry policy and address rules, as tables (pure functions, no network)."""

import pytest

from batch_payouts.payout.conekta import api_key_from_env, backoff_seconds, check_api_base, parse_retry_after
# The policy is tested where it is defined (``conekta`` re-exports it for the client's callers).
from batch_payouts.payout.conekta_errors import (
    GIVE_UP, LOOK_UP_FIRST, RESEND, AuthenticationError, ConektaError, OutcomeUnknown, RateLimited, Refused,
    Unavailable, error_kind, retry_decision,
)
from batch_payouts.errors import BatchError


@pytest.mark.parametrize(
    ("method", "status", "sent", "kind"),
    [
        ("POST", None, False, Unavailable),  # connection refused / connect timeout: never left
        ("POST", None, True, OutcomeUnknown),  # reset or read timeout after sending
        ("POST", 200, True, OutcomeUnknown),  # carried out, answer unreadable
        ("POST", 500, True, OutcomeUnknown),  # every 5xx on a write may have executed
        ("POST", 503, True, OutcomeUnknown),
        ("POST", 409, True, OutcomeUnknown),  # same key still in progress: the order may exist
        ("POST", 429, True, RateLimited),
        ("POST", 401, True, AuthenticationError),
        ("POST", 403, True, AuthenticationError),
        ("POST", 402, True, Refused),
        ("POST", 404, True, Refused),
        ("POST", 422, True, Refused),
        ("PUT", 500, True, OutcomeUnknown),
        ("PUT", 409, True, Refused),
        ("PUT", 428, True, Refused),
        ("GET", None, True, Unavailable),  # a read changes nothing
        ("GET", 502, True, Unavailable),
        ("GET", 200, True, Unavailable),
        ("GET", 404, True, Refused),
    ],
)
def test_error_kind(method, status, sent, kind):
    assert error_kind(method, status, sent=sent) is kind


def _error(kind, status=None, type_="api_error"):
    return kind(status, type_)


@pytest.mark.parametrize(
    ("error", "method", "attempt", "expected"),
    [
        (_error(Unavailable), "POST", 1, RESEND),  # never sent: safe to send again
        (_error(OutcomeUnknown), "POST", 1, LOOK_UP_FIRST),  # may exist: never resent before a lookup
        (_error(OutcomeUnknown, 409), "POST", 4, LOOK_UP_FIRST),
        (_error(OutcomeUnknown, 500), "POST", 5, GIVE_UP),  # budget of 4 retries spent
        (_error(OutcomeUnknown, 500), "PUT", 1, RESEND),  # a cancel is idempotent by nature
        (_error(Unavailable, 502), "GET", 4, RESEND),
        (_error(Unavailable, 503), "GET", 5, GIVE_UP),
        (_error(RateLimited, 429), "POST", 1, RESEND),
        (_error(RateLimited, 429), "POST", 12, RESEND),  # a 429 only asks us to wait: a larger budget
        (_error(RateLimited, 429), "POST", 21, GIVE_UP),
        (_error(Refused, 422), "POST", 1, GIVE_UP),
        (_error(Refused, 402), "POST", 1, GIVE_UP),
        (_error(AuthenticationError, 401), "GET", 1, GIVE_UP),
        (_error(Unavailable, None, "tls_error"), "GET", 1, GIVE_UP),  # fails the same way every time
    ],
)
def test_retry_decision(error, method, attempt, expected):
    assert retry_decision(error, method=method, attempt=attempt, max_retries=4) == expected


def test_every_typed_error_is_still_a_conekta_error():
    for kind in (AuthenticationError, Unavailable, RateLimited, OutcomeUnknown, Refused):
        error = kind(500, "api_error", operation="payout_order", idempotency_key="bp-1")
        assert isinstance(error, ConektaError)
        assert (error.operation, error.idempotency_key) == ("payout_order", "bp-1")
        assert error.in_doubt is (kind is OutcomeUnknown)
    assert issubclass(RateLimited, Unavailable)  # a 429 proves nothing was done


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 8])
def test_backoff_is_jittered_within_half_and_full(attempt):
    full = min(8.0, 0.5 * 2 ** (attempt - 1))
    assert backoff_seconds(attempt, rand=lambda: 0.0) == pytest.approx(full / 2)
    assert backoff_seconds(attempt, rand=lambda: 1.0) == pytest.approx(full)


def test_backoff_honours_retry_after_but_caps_it():
    assert backoff_seconds(1, retry_after=3, rand=lambda: 0.0) == 3
    assert backoff_seconds(1, retry_after=3600, rand=lambda: 0.0) == 60


@pytest.mark.parametrize(("header", "expected"), [("2", 2.0), ("0.5", 0.5), ("", None), (None, None), ("soon", None), ("-3", 0.0)])
def test_parse_retry_after(header, expected):
    assert parse_retry_after(header) == expected


@pytest.mark.parametrize(
    "url",
    ["https://api.conekta.io", "http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:9", "http://127.5.5.5"],
)
def test_accepted_api_bases(url):
    assert check_api_base(url) == url.rstrip("/")


@pytest.mark.parametrize("url", ["http://api.conekta.io", "http://10.0.0.1:80", "http://192.168.1.2", "ftp://x", "api.conekta.io", ""])
def test_refused_api_bases(url):
    with pytest.raises(BatchError) as info:
        check_api_base(url)
    assert "https" in info.value.message("en")


def test_key_only_from_environment():
    assert api_key_from_env({"CONEKTA_API_KEY": " key_abc "}) == "key_abc"
    with pytest.raises(BatchError) as info:
        api_key_from_env({})
    assert "CONEKTA_API_KEY" in info.value.message("es")


def test_error_carries_what_support_needs():
    error = Refused(422, "parameter_validation_error", code="conekta.errors.x", param="amount", message="bad", log_id="abc")
    text = str(error)
    assert "422" in text and "conekta.errors.x" in text and "abc" in text
    assert not error.stops_batch
    assert AuthenticationError(401, "authentication_error").stops_batch
    assert AuthenticationError(403, "processing_error").stops_batch
    assert OutcomeUnknown(401, "authentication_error").stops_batch  # in doubt, and the key refused
