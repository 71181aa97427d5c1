"""Error codes and what each one tells a finance person, in Spanish and English.

Every message is two parts kept apart as data: what is wrong with the cell and how
to fix it.  The console and the results sheet join them into one sentence pair; the
web review shows them in two columns.  Nothing has to cut a rendered text back into
its parts, so a full stop inside a value («a.b@x») can never split a message wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass

from batch_payouts.i18n import DEFAULT_LANG, Text, catalogue

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


@dataclass(frozen=True)
class Message:
    """One validation message: ``problem`` (what is wrong) and ``fix`` (what to do), each a ``Text``."""

    problem: Text
    fix: Text

    def format(self, lang: str = DEFAULT_LANG, **params: object) -> str:
        return f"{self.problem.format(lang, **params)} {self.fix.format(lang, **params)}"


# code -> the canonical column it is about, in the order codes are reported.
CODE_COLUMNS: dict[str, str] = {
    "missing_name": "name",
    "missing_email": "email",
    "invalid_email": "email",
    "invalid_phone": "phone",
    "missing_amount": "amount",
    "invalid_amount": "amount",
    "amount_not_integer": "amount",
    "amount_not_positive": "amount",
    "amount_not_multiple_of_100": "amount",
    "amount_over_limit": "amount",
    "invalid_currency": "currency",
    "missing_reason": "reason",
    "reason_too_long": "reason",
    "invalid_expires_at": "expires_at",
    "expires_at_in_past": "expires_at",
    "duplicate_external_id": "external_id",
    "duplicate_row": "email",
}
ERROR_CODES = tuple(CODE_COLUMNS)


def message_text(code: str, amount_unit: str = "cents") -> Message:
    """The message for ``code`` (without the column it is about)."""
    parts = TEXT.PESOS_MESSAGES.get(code) if amount_unit == "pesos" else None
    return Message(**(parts or TEXT.MESSAGES[code]))
