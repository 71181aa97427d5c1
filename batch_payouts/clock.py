"""The time zone every time a person reads is written in, and how it is written.

Why one place: a results sheet read in Monterrey, a cron log read in UTC and an
auditor's report must not disagree about when an order was created.  Every time
shown to a person is ISO 8601 *with its offset* (``2026-03-01T16:55:00-06:00``),
so it can never be misread as another zone's, and in one zone: America/Mexico_City
by default (where the cash is withdrawn), or the one chosen with ``--timezone`` or
the ``timezone`` config key.  The CLI chooses it once per command (``use``); the
library only reads it (``zone``).

Imports only the standard library: ``validate`` loads it too.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

DEFAULT_TIMEZONE = "America/Mexico_City"

_zone: tzinfo = ZoneInfo(DEFAULT_TIMEZONE)


def parse_zone(name: str) -> tzinfo:
    """The zone named ``name`` (IANA), or ``BatchError`` naming the option and the fix."""
    try:
        return ZoneInfo(str(name).strip())
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a name like "../x"
        raise BatchError(TEXT.BAD_TIMEZONE, value=name) from exc


def use(name: str | None) -> tzinfo:
    """Make ``name`` (default America/Mexico_City) the zone of every time shown from now on."""
    global _zone
    _zone = parse_zone(name or DEFAULT_TIMEZONE)
    return _zone


def zone() -> tzinfo:
    return _zone


def time_text(unix_seconds: float | None, timespec: str = "seconds") -> str:
    """ISO 8601 in the chosen zone, with its offset; "" when unknown (None or NaN)."""
    try:
        if unix_seconds is None or unix_seconds != unix_seconds:
            return ""
    except TypeError:  # pandas' NA, which refuses to be compared
        return ""
    return datetime.fromtimestamp(float(unix_seconds), _zone).isoformat(timespec=timespec)


def now_text(timespec: str = "seconds") -> str:
    return datetime.now(_zone).isoformat(timespec=timespec)
