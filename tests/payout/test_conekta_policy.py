"""The client's retry policy and address rules, as tables (pure functions, no network)."""

import pytest

from batch_payouts.payout.conekta import (
    ConektaError,
    api_key_from_env,
    backoff_seconds,
    check_api_base,
    parse_retry_after,
    should_retry,
)
from batch_payouts.errors import BatchError


@pytest.mark.parametrize(
    ("status", "attempt", "expected"),
    [
        (None, 1, True),  # connection error / timeout
        (429, 1, True),
        (429, 12, True),  # a 429 only asks us to wait: a larger budget
        (429, 21, False),
        (500, 1, True),
        (502, 2, True),
        (503, 4, True),
        (503, 5, False),  # budget of 4 retries spent
        (400, 1, False),
        (401, 1, False),
        (402, 1, False),
        (403, 1, False),
        (404, 1, False),
        (422, 1, False),
        (428, 1, False),
    ],
)
def test_should_retry(status, attempt, expected):
    assert should_retry(attempt=attempt, max_retries=4, status=status) is expected


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
    error = ConektaError(422, "parameter_validation_error", code="conekta.errors.x", param="amount", message="bad", log_id="abc")
    text = str(error)
    assert "422" in text and "conekta.errors.x" in text and "abc" in text
    assert not error.stops_batch
    assert ConektaError(401, "authentication_error").stops_batch
    assert ConektaError(403, "processing_error").stops_batch
