"""The file's headers mapped to canonical columns, metadata keys and extras.

Finance staff name their columns as they like ("Correo Electrónico",
"correo_electronico", "E-mail"): matching is insensitive to case, accents,
spaces, hyphens and underscores, and a header problem stops the file as a whole
(``InputFileError``) before any row is looked at.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from batch_payouts.errors import InputFileError
from batch_payouts.i18n import Text, catalogue
from batch_payouts.rules.columns import ALIASES, CANONICAL_COLUMNS, MAX_METADATA_KEYS, REQUIRED_COLUMNS

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


@dataclass
class HeaderMap:
    """How the file's headers map to what the rules need.

    ``canonical``: canonical column -> header as written; ``metadata``:
    metadata key -> header as written; ``extra``: other headers (kept in the
    file, never validated or sent).
    """

    canonical: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)
    amount_unit: str | None = None  # "pesos" or "cents" when the amount header names it ("monto (pesos)")

    def header(self, column: str) -> str:
        """The user's header for ``column``, or its Spanish name if absent."""
        return self.canonical.get(column, ALIASES.get(column, (column,))[0])


_METADATA_HEADER = re.compile(r"^meta(?:data)?[\s._-]+(?P<key>\S.*)$", re.IGNORECASE)


def header_key(text: str) -> str:
    """Compare headers as people mean them: no case, accents, spaces, - or _."""
    decomposed = unicodedata.normalize("NFKD", str(text))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[\s_\-]+", "", plain.casefold())


_CANONICAL_BY_KEY = {
    header_key(spelling): column
    for column in CANONICAL_COLUMNS
    for spelling in (column, *ALIASES[column])
}


# "monto (pesos)", "importe_centavos", "Amount in cents", "monto $": the amount column naming its
# unit, which then decides how its numbers are read (compared as header_key leaves them).
_UNIT_WORDS = {"pesos": "pesos", "peso": "pesos", "$": "pesos", "mxn": "pesos", "centavos": "cents", "cents": "cents"}
_AMOUNT_WITH_UNIT = re.compile(
    r"^(?P<base>.+?)[(\[]?(?:en|in)?(?P<unit>" + "|".join(map(re.escape, _UNIT_WORDS)) + r")[)\]]?$"
)


def _amount_with_unit(header: str) -> tuple[str | None, str | None]:
    """("amount", unit) for an amount header that names its unit, else (None, None)."""
    match = _AMOUNT_WITH_UNIT.match(header_key(header))
    if match is None or _CANONICAL_BY_KEY.get(match.group("base")) != "amount":
        return None, None
    return "amount", _UNIT_WORDS[match.group("unit")]


def resolve_headers(columns) -> HeaderMap:
    """Map headers to canonical columns, metadata keys and extras.

    Raises ``InputFileError`` when a required column is missing (listing each
    with its accepted names), when two headers mean the same column or the
    same metadata key, or when there are more metadata columns than Conekta
    accepts.
    """
    found = HeaderMap()
    clashes: list[tuple[str, str]] = []
    for column in columns:
        header = str(column)
        meta = _METADATA_HEADER.match(header.strip())
        if meta:
            key = meta.group("key").strip()
            if key in found.metadata:
                clashes.append((found.metadata[key], header))
            else:
                found.metadata[key] = header
            continue
        canonical = _CANONICAL_BY_KEY.get(header_key(header))
        unit = None
        if canonical is None:
            canonical, unit = _amount_with_unit(header)
        if canonical is None:
            found.extra.append(header)
        elif canonical in found.canonical:
            clashes.append((found.canonical[canonical], header))
        else:
            found.canonical[canonical] = header
            found.amount_unit = unit if canonical == "amount" else found.amount_unit
    if clashes:
        pairs = "; ".join(f"«{a}» = «{b}»" for a, b in clashes)
        raise InputFileError(TEXT.SAME_COLUMN_TWICE, pairs=pairs)
    missing = [column for column in REQUIRED_COLUMNS if column not in found.canonical]
    if missing:
        raise InputFileError(
            TEXT.MISSING_COLUMNS,
            missing=Text(
                es="\n".join(_describe_column(c, "es") for c in missing),
                en="\n".join(_describe_column(c, "en") for c in missing),
            ),
            found=", ".join(f"«{c}»" for c in columns) or TEXT.NO_HEADERS,
        )
    if len(found.metadata) > MAX_METADATA_KEYS:
        raise InputFileError(TEXT.TOO_MANY_METADATA, count=len(found.metadata), limit=MAX_METADATA_KEYS)
    return found


def _describe_column(column: str, lang: str) -> str:
    if lang == "en":
        primary, others = column, ALIASES[column]
        return f"- «{primary}» (also accepted: {', '.join(others)})"
    primary, others = ALIASES[column][0], ALIASES[column][1:] + (column,)
    return f"- «{primary}» (también se acepta: {', '.join(others)})"
