"""Messages in the user's language.

Finance staff read Spanish; operators sometimes prefer English (``--lang en``).
Each message is written once, beside the rule that raises it, as a ``Text``
holding both languages, so a rule and its explanation never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGES = ("es", "en")
DEFAULT_LANG = "es"


@dataclass(frozen=True)
class Text:
    """One message in Spanish and English, with ``str.format`` placeholders.

    Both languages use the same placeholders.  A parameter that itself depends on the
    language (a list of column names with "también se acepta" / "also accepted") is
    passed as a ``Text`` and rendered in the same language as the message.
    """

    es: str
    en: str

    def format(self, lang: str = DEFAULT_LANG, **params: object) -> str:
        template = self.en if lang == "en" else self.es
        if not params:
            return template
        if any(type(value) is Text for value in params.values()):
            params = {key: value.format(lang) if type(value) is Text else value for key, value in params.items()}
        return template.format(**params)


def money(cents: int) -> str:
    """Cents as a peso figure a person reads: 150000 -> $1,500.00."""
    return f"${cents // 100:,}.{cents % 100:02d}"


@dataclass(frozen=True)
class Plural:
    """A message about a count, worded for 1 and for any other count ("1 pago", "2 pagos", "0 pagos").

    Spanish and English both take the singular for exactly one, so two forms are enough.
    The count is passed as ``count`` and may be used in the text as ``{count}``.
    """

    one: Text
    other: Text

    def format(self, lang: str = DEFAULT_LANG, *, count: int, **params: object) -> str:
        return (self.one if count == 1 else self.other).format(lang, count=count, **params)
