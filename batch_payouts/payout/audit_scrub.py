"""Keeping secrets out of the audit log: the API key must never reach it.

Separate from the writer so the rule is in one short place an auditor can read:
options named like a secret (key, secret, token, password) or holding a
Conekta-key-like value (``key_...``) are dropped by ``scrub_options``; key-like
text anywhere else in an entry is replaced in place by ``redact``, so a path that
happens to contain one stays readable.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[redacted]"
SECRET_NAME_PARTS = ("key", "secret", "token", "password")
CONEKTA_KEY = re.compile(r"(?<![A-Za-z0-9_])key_[A-Za-z0-9_]+")


def _secret_name(name: object) -> bool:
    lowered = str(name).lower()
    return any(part in lowered for part in SECRET_NAME_PARTS)


def _looks_like_key(value: object) -> bool:
    return isinstance(value, str) and CONEKTA_KEY.search(value) is not None


_DROP = object()


def _scrub_value(value: Any) -> Any:
    if _looks_like_key(value):
        return _DROP
    if isinstance(value, dict):
        return scrub_options(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [v for v in (_scrub_value(item) for item in value) if v is not _DROP]
    return value


def scrub_options(options: dict) -> dict:
    """A copy without secrets: drops every item whose name contains key/secret/token/password
    and every value that looks like a Conekta key (``key_...``), in nested dicts and lists too."""
    clean: dict = {}
    for name, value in options.items():
        if _secret_name(name):
            continue
        value = _scrub_value(value)
        if value is not _DROP:
            clean[name] = value
    return clean


def redact(value: Any) -> Any:
    """Entry fields other than options: key-looking text is replaced in place, so a path stays readable."""
    if isinstance(value, str):  # every match holds "key_": a substring test spares the regex per field
        return CONEKTA_KEY.sub(REDACTED, value) if "key_" in value else value
    if isinstance(value, dict):
        return {name: redact(item) for name, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact(item) for item in value]
    return value
