"""Dates and counts as a person reads them, in the page's language.

The CLI writes ISO 8601 times (``2026-12-01T16:55:00-06:00``) because scripts read them; a
person on the web reads "1 dic 2026, 16:55 (-06:00)" (or "Dec 1, 2026, 4:55 PM (-06:00)"), in the
zone every other time this tool shows is in (America/Mexico_City unless ``--timezone`` says
otherwise), with its offset so a reader in another zone is never an hour off, and counts with
thousands separators ("12,480").
Written out here rather than through the C locale, which the server may not have installed.
"""

from __future__ import annotations

import math
from datetime import datetime

from batch_payouts import clock

MONTHS = {
    "es": ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}


def when(unix_seconds: float | None, lang: str) -> str:
    """1764629700 -> "1 dic 2026, 16:55 (-06:00)" (es) or "Dec 1, 2026, 4:55 PM (-06:00)" (en); "" when unknown."""
    if unix_seconds is None or (isinstance(unix_seconds, float) and math.isnan(unix_seconds)):
        return ""
    moment = datetime.fromtimestamp(float(unix_seconds), clock.zone())
    offset = moment.isoformat(timespec="minutes")[16:]  # "-06:00", as the CLI's ISO times end
    if lang == "en":
        hour = moment.hour % 12 or 12
        return (f"{MONTHS['en'][moment.month - 1]} {moment.day}, {moment.year}, "
                f"{hour}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'} ({offset})")
    return f"{moment.day} {MONTHS['es'][moment.month - 1]} {moment.year}, {moment.hour}:{moment.minute:02d} ({offset})"


def number(value: object) -> str:
    """A count with thousands separators, written the Mexican way in both languages: 12480 -> "12,480"."""
    try:
        return f"{int(value):,}"  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return str(value if value is not None else "")
