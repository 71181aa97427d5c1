"""Messages in the user's language.

Finance staff read Spanish; operators sometimes prefer English (``--lang en``).
Each message is written once, as a ``Text`` holding both languages side by side.
The words live as data in one catalogue per folder (``<folder>/messages.toml``,
one table per module): the people who review the Spanish and the English read
one file instead of code, and the code keeps only its logic.  A module gets its
own table with ``TEXT = catalogue(__name__)`` and says ``TEXT.NAME``.
"""

from __future__ import annotations

import threading
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

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


class Catalogue:
    """One module's messages, read from its folder's ``messages.toml`` the first time one is asked for.

    A table with ``es`` and ``en`` is a ``Text``; one with ``one`` and ``other`` is a ``Plural``; any
    other table is a mapping of those (messages chosen by a code, such as a state or an error code).
    Reading lazily keeps the catalogue off the start-up path of commands that never speak.
    """

    def __init__(self, package: str, section: str) -> None:
        self._package = package
        self._section = section
        self.module = f"{package}.{section}"  # whose messages these are

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        entries = _folder(self._package).get(self._section, {})
        try:
            return entries[name]
        except KeyError:
            raise AttributeError(f"{self._package}/messages.toml has no [{self._section}.{name}]") from None

    def entries(self) -> dict[str, Any]:
        """Every message of the module, by name (for the tests that check both languages agree)."""
        return dict(_folder(self._package).get(self._section, {}))


def catalogue(module: str) -> Catalogue:
    """The messages of ``module`` (pass ``__name__``): its table in its folder's ``messages.toml``."""
    package, _, section = module.rpartition(".")
    return Catalogue(package, section)


_FOLDERS: dict[str, dict[str, dict[str, Any]]] = {}
_FOLDERS_LOCK = threading.Lock()


def _folder(package: str) -> dict[str, dict[str, Any]]:
    with _FOLDERS_LOCK:
        if package not in _FOLDERS:
            source = resources.files(package) / "messages.toml"
            raw = tomllib.loads(source.read_text(encoding="utf-8")) if source.is_file() else {}
            _FOLDERS[package] = {section: {name: _entry(value) for name, value in table.items()}
                                 for section, table in raw.items()}
        return _FOLDERS[package]


def _entry(value: dict[str, Any]) -> Any:
    if value.keys() == {"es", "en"}:
        return Text(es=value["es"], en=value["en"])
    if value.keys() == {"one", "other"}:
        return Plural(one=_entry(value["one"]), other=_entry(value["other"]))
    return {name: _entry(item) for name, item in value.items()}
