"""The beneficiary rules, written once: header aliases, parsing, one pandera schema.

Finance staff name their columns as they like ("Correo Electrónico",
"correo_electronico", "E-mail"), type amounts as Excel shows them ("3,000",
"$1,500.00") and expect every problem of every row in one report, each saying
which column, which value and how to fix it.  So this module:

1. maps the file's headers to canonical columns (``resolve_headers``),
   insensitive to case, accents, spaces, hyphens and underscores;
2. normalises text into typed values (amount text -> exact integer cents with
   ``Decimal``, phone -> digits, dates -> unix seconds), keeping the raw text
   beside each parsed value so a parse failure is just another failed check;
3. validates the whole table with ONE pandera ``DataFrameSchema``
   (``build_schema``) in lazy mode, each check named by its stable error code;
4. turns pandera's ``failure_cases`` into per-row ``error_code`` /
   ``error_message`` through the ``MESSAGES`` table (Spanish and English).

There is no second set of hand-written ``if`` rules: to add a rule, add a named
check to ``build_schema`` and its message to ``MESSAGES``.
"""

from __future__ import annotations

import re
import sys
import time
import unicodedata
from itertools import repeat
from operator import itemgetter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from datetime import time as clock
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

try:
    import pandera.pandas as pa
except ImportError:  # pragma: no cover - pandera < 0.24 has no pandera.pandas
    import pandera as pa
from pandera.config import ValidationDepth, config_context
from email_validator import EmailNotValidError, validate_email

from batch_payouts.errors import InputFileError
from batch_payouts.i18n import DEFAULT_LANG, LANGUAGES, Text, money
from batch_payouts.files.sheets import flagged_positions, joined_cells, paused_gc


def _load_pandera_strategies_without_hypothesis() -> None:
    """pandera's first ``validate()`` imports its data-synthesis strategies, and
    they import hypothesis whenever it is installed -- here only as a test
    dependency, yet ~0.1 s of every ``validate`` run in a development
    environment.  We never synthesise data, so load those modules now with
    hypothesis hidden (they are written for its absence), unless this process
    already imported it (a test session): then nothing changes."""
    if "hypothesis" in sys.modules:
        return
    sys.modules["hypothesis"] = None  # type: ignore[assignment]  # makes "import hypothesis" fail
    try:
        import pandera.strategies.pandas_strategies  # noqa: F401
    except ImportError:  # pragma: no cover - another pandera layout: it loads on first use
        pass
    finally:
        if "hypothesis" in sys.modules and sys.modules["hypothesis"] is None:
            del sys.modules["hypothesis"]


_load_pandera_strategies_without_hypothesis()

# ---------------------------------------------------------------------------
# Columns and their accepted names
# ---------------------------------------------------------------------------

CANONICAL_COLUMNS = (
    "name",
    "email",
    "phone",
    "amount",
    "currency",
    "reason",
    "customer_id",
    "external_id",
    "expires_at",
)
REQUIRED_COLUMNS = ("name", "email", "amount", "reason")

# Accepted header spellings besides the canonical name.  The first one is the
# Spanish name used by the template.  Matching ignores case, accents, spaces,
# hyphens and underscores, so the accents here are only for display.
ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("nombre", "beneficiario"),
    "email": ("correo", "correo electrónico", "e-mail"),
    "phone": ("teléfono", "celular", "móvil"),
    "amount": ("monto", "importe"),
    "currency": ("moneda",),
    "reason": ("motivo", "concepto"),
    "customer_id": ("id cliente",),
    "external_id": ("folio", "id externo"),
    "expires_at": ("vence",),
}

OUTPUT_COLUMNS = CANONICAL_COLUMNS + ("metadata", "valid", "error_code", "error_message")
AMOUNT_UNITS = ("cents", "pesos")
DEFAULT_CURRENCY = "MXN"
REASON_MAX_CHARS = 40  # Conekta's limit for a payout order's reason
# Conekta allows 100 metadata keys per order; the pipeline adds two of its own
# (batch_id and row_key, which trace every order back to its row).
MAX_METADATA_KEYS = 98
PHONE_PATTERN = r"[0-9]{10,15}"
# Above this an "amount" is a typo (ten billion pesos), and it keeps Int64 safe.
MAX_AMOUNT_CENTS = 10**15

# Circulating ISO 4217 currencies (fund, metal and test codes left out), so a
# typo such as "MNX" is caught here instead of by a refused payout.
ISO_4217 = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB
    BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK
    DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG
    HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT
    LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR
    MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB
    RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS
    TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD
    XCG XOF XPF YER ZAR ZMW ZWG ZWL
    """.split()
)


def _mexico_city() -> timezone | ZoneInfo:
    """Naive times in the file are Mexico City time.  Without the tz database
    (Windows without the ``tzdata`` package) fall back to UTC-6, which is
    exact since Mexico dropped daylight saving time in 2022."""
    try:
        return ZoneInfo("America/Mexico_City")
    except ZoneInfoNotFoundError:  # pragma: no cover - depends on the OS
        return timezone(timedelta(hours=-6), "CST")


LOCAL_TIMEZONE = _mexico_city()

# ---------------------------------------------------------------------------
# Headers
# ---------------------------------------------------------------------------


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

    def header(self, column: str) -> str:
        """The user's header for ``column``, or its Spanish name if absent."""
        return self.canonical.get(column, ALIASES.get(column, (column,))[0])


MISSING_COLUMNS = Text(
    es="Faltan columnas obligatorias en el archivo:\n{missing_es}\n"
    "Encabezados encontrados: {found}.\n"
    "Agrega las columnas que faltan en la primera fila (puedes copiarlas de la plantilla).",
    en="Required columns are missing from the file:\n{missing_en}\n"
    "Headers found: {found}.\n"
    "Add the missing columns to the first row (you can copy them from the template).",
)
SAME_COLUMN_TWICE = Text(
    es="Estas columnas significan lo mismo y solo puede haber una de cada una: {pairs}. "
    "Borra o renombra una de ellas.",
    en="These columns mean the same thing and only one of each is allowed: {pairs}. "
    "Delete or rename one of them.",
)
TOO_MANY_METADATA = Text(
    es="Hay {count} columnas de metadatos (meta_...) y el máximo es {limit}. Quita las que no necesites.",
    en="There are {count} metadata columns (meta_...) and the maximum is {limit}. Remove the ones you do not need.",
)

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
        if canonical is None:
            found.extra.append(header)
        elif canonical in found.canonical:
            clashes.append((found.canonical[canonical], header))
        else:
            found.canonical[canonical] = header
    if clashes:
        pairs = "; ".join(f"«{a}» = «{b}»" for a, b in clashes)
        raise InputFileError(SAME_COLUMN_TWICE, pairs=pairs)
    missing = [column for column in REQUIRED_COLUMNS if column not in found.canonical]
    if missing:
        raise InputFileError(
            MISSING_COLUMNS,
            missing_es="\n".join(_describe_column(c, "es") for c in missing),
            missing_en="\n".join(_describe_column(c, "en") for c in missing),
            found=", ".join(f"«{c}»" for c in columns) or "(ninguno / none)",
        )
    if len(found.metadata) > MAX_METADATA_KEYS:
        raise InputFileError(TOO_MANY_METADATA, count=len(found.metadata), limit=MAX_METADATA_KEYS)
    return found


def _describe_column(column: str, lang: str) -> str:
    if lang == "en":
        primary, others = column, ALIASES[column]
        return f"- «{primary}» (also accepted: {', '.join(others)})"
    primary, others = ALIASES[column][0], ALIASES[column][1:] + (column,)
    return f"- «{primary}» (también se acepta: {', '.join(others)})"


# ---------------------------------------------------------------------------
# Error codes and messages
# ---------------------------------------------------------------------------

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

_COLUMN_PREFIX = Text(es="Columna «{column}»: ", en="Column «{column}»: ")
_CENTS_EXAMPLE = Text(es="por ejemplo 150000 para $1,500.00", en="for example 150000 for $1,500.00")

MESSAGES: dict[str, Text] = {
    "missing_name": Text(
        es="está vacía. Escribe el nombre completo de la persona que cobrará.",
        en="is empty. Write the full name of the person who will collect the cash.",
    ),
    "missing_email": Text(
        es="está vacía. Escribe el correo del beneficiario, como nombre@dominio.com: "
        "ahí recibe su referencia de retiro.",
        en="is empty. Write the beneficiary's email, like name@domain.com: "
        "the withdrawal reference is sent there.",
    ),
    "invalid_email": Text(
        es="«{value}» no es un correo válido. Escríbelo como nombre@dominio.com, sin espacios ni acentos.",
        en="«{value}» is not a valid email address. Write it like name@domain.com, "
        "without spaces or accents.",
    ),
    "invalid_phone": Text(
        es="«{value}» no es un teléfono válido. Escribe de 10 a 15 dígitos "
        "(por ejemplo 5512345678) o deja la celda vacía.",
        en="«{value}» is not a valid phone number. Write 10 to 15 digits "
        "(for example 5512345678) or leave the cell empty.",
    ),
    "missing_amount": Text(
        es="está vacía. Escribe el monto en centavos: por ejemplo 150000 para $1,500.00.",
        en="is empty. Write the amount in cents: for example 150000 for $1,500.00.",
    ),
    "invalid_amount": Text(
        es="«{value}» no es un monto válido. Escribe solo números, en centavos y sin $ ni letras: "
        "por ejemplo 150000 para $1,500.00.",
        en="«{value}» is not a valid amount. Write digits only, in cents, without $ or letters: "
        "for example 150000 for $1,500.00.",
    ),
    "amount_not_integer": Text(
        es="«{value}» tiene decimales, pero el monto va en centavos. Escribe un número entero: "
        "por ejemplo 150000 para $1,500.00.",
        en="«{value}» has decimals, but the amount is in cents. Write a whole number: "
        "for example 150000 for $1,500.00.",
    ),
    "amount_not_positive": Text(
        es="«{value}» no es mayor que cero. Escribe el monto a pagar.",
        en="«{value}» is not greater than zero. Write the amount to pay.",
    ),
    "amount_not_multiple_of_100": Text(
        es="«{value}» no termina en 00. Los retiros en efectivo son de pesos completos: "
        "escribe centavos que terminen en 00, por ejemplo 150000 para $1,500.00.",
        en="«{value}» does not end in 00. Cash withdrawals are whole pesos: "
        "write cents ending in 00, for example 150000 for $1,500.00.",
    ),
    "amount_over_limit": Text(
        es="«{value}» supera el máximo por fila de {limit} (--max-amount). Revisa el monto; si es correcto, "
        "paga esta fila aparte o sube el límite.",
        en="«{value}» is over the per-row maximum of {limit} (--max-amount). Check the amount; if it is right, "
        "pay this row separately or raise the cap.",
    ),
    "invalid_currency": Text(
        es="«{value}» no es una moneda válida. Escribe el código de 3 letras, por ejemplo MXN, "
        "o deja la celda vacía para usar MXN.",
        en="«{value}» is not a valid currency. Write its 3-letter code, for example MXN, "
        "or leave the cell empty to use MXN.",
    ),
    "missing_reason": Text(
        es="está vacía. Escribe el motivo del pago (hasta 40 caracteres), por ejemplo «Pago de nómina marzo».",
        en="is empty. Write the reason for the payment (up to 40 characters), for example «March payroll».",
    ),
    "reason_too_long": Text(
        es="«{value}» tiene {length} caracteres y el máximo es 40. Escribe un motivo más corto.",
        en="«{value}» has {length} characters and the maximum is 40. Write a shorter reason.",
    ),
    "invalid_expires_at": Text(
        es="«{value}» no es una fecha válida. Escríbela como AAAA-MM-DD (por ejemplo 2030-12-31), "
        "si quieres con hora AAAA-MM-DD HH:MM, o deja la celda vacía.",
        en="«{value}» is not a valid date. Write it as YYYY-MM-DD (for example 2030-12-31), "
        "optionally with a time YYYY-MM-DD HH:MM, or leave the cell empty.",
    ),
    "expires_at_in_past": Text(
        es="«{value}» ya pasó. Escribe una fecha futura o deja la celda vacía.",
        en="«{value}» is already past. Write a future date or leave the cell empty.",
    ),
    "duplicate_external_id": Text(
        es="«{value}» se repite en las filas {rows}. Cada valor de esta columna debe ser único: "
        "corrige los repetidos.",
        en="«{value}» appears in rows {rows}. Every value in this column must be unique: "
        "fix the repeated ones.",
    ),
    "duplicate_row": Text(
        es="esta fila repite la fila {first} (mismo correo, monto, moneda, motivo y metadatos). "
        "Si es un error, bórrala; si son dos pagos distintos, cambia el motivo para distinguirlos.",
        en="this row repeats row {first} (same email, amount, currency, reason and metadata). "
        "If it is a mistake, delete it; if they are two different payments, change the reason "
        "to tell them apart.",
    ),
}

# With amount_unit="pesos" the amount advice speaks of pesos, not cents.
PESOS_MESSAGES: dict[str, Text] = {
    "missing_amount": Text(
        es="está vacía. Escribe el monto en pesos, por ejemplo 1500.",
        en="is empty. Write the amount in pesos, for example 1500.",
    ),
    "invalid_amount": Text(
        es="«{value}» no es un monto válido. Escribe el monto en pesos con números, "
        "por ejemplo 1500 o $1,500.00.",
        en="«{value}» is not a valid amount. Write the amount in pesos with digits, "
        "for example 1500 or $1,500.00.",
    ),
    "amount_not_integer": Text(
        es="«{value}» tiene más de 2 decimales. Escribe pesos con 2 decimales como máximo, "
        "por ejemplo 1500.00.",
        en="«{value}» has more than 2 decimals. Write pesos with at most 2 decimals, "
        "for example 1500.00.",
    ),
    "amount_not_multiple_of_100": Text(
        es="«{value}» tiene centavos. Los retiros en efectivo son de pesos completos: "
        "quita los centavos, por ejemplo 1500 en vez de 1500.50.",
        en="«{value}» has cents. Cash withdrawals are whole pesos: "
        "drop the cents, for example 1500 instead of 1500.50.",
    ),
}


def message_text(code: str, amount_unit: str = "cents") -> Text:
    """The message template for ``code`` (without the column prefix)."""
    if amount_unit == "pesos" and code in PESOS_MESSAGES:
        return PESOS_MESSAGES[code]
    return MESSAGES[code]


# ---------------------------------------------------------------------------
# The schema
# ---------------------------------------------------------------------------


# A plain ASCII local part ("juan.perez+pagos") is valid whenever it is at
# most 64 characters; only its domain needs email-validator.  That lets a
# 100,000-row batch validate each distinct domain once instead of every address.
_PLAIN_ADDRESS = re.compile(r"(?P<local>[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*)@(?P<domain>[^@\s]+)")
_MAX_ADDRESS_CHARS = 254
_MAX_LOCAL_CHARS = 64


def is_valid_email(value: str) -> bool:
    """Email syntax per email-validator (no DNS; ASCII local part required)."""
    try:
        validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return False
    return True


def _emails_ok(emails: pd.Series) -> pd.Series:
    """Vectorised email check, True for "" (``missing_email`` reports those).

    Each distinct domain of the plain addresses, and each distinct other
    address, goes through email-validator once; which addresses are plain is
    decided for the whole column at once (see ``_plain_verdicts``).
    """
    values = emails.tolist()
    verdicts = _plain_verdicts(values)
    if verdicts is None:
        verdicts = [None] * len(values)
    if None in verdicts:
        undecided = [position for position, verdict in enumerate(verdicts) if verdict is None]
        others = {values[p]: None for p in undecided}
        for value in others:
            others[value] = value == "" or is_valid_email(value)
        for position in undecided:
            verdicts[position] = others[values[position]]
    return pd.Series(np.fromiter(verdicts, dtype=bool, count=len(verdicts)), index=emails.index)


# A local part (the text before the first "@") is plain, as _PLAIN_ADDRESS's,
# when it is only atom characters, does not start or end with a dot, has no two
# dots in a row and is not empty.  In a column of local parts joined by NUL
# (``sheets.joined_cells``) that is: only these characters, and no dot or NUL
# next to another dot or NUL.
_PLAIN_LOCAL_CHARACTERS = re.compile(r"[A-Za-z0-9_%+\-.\x00]*")
_NOT_PLAIN_LOCAL_CHARACTER = re.compile(r"[^A-Za-z0-9_%+\-.\x00]")
_DOT_OR_NUL_BEFORE_ANOTHER = re.compile(r"[.\x00](?=[.\x00])")  # one character, so matches never overlap a text
_PLAIN_DOMAIN = re.compile(r"[^@\s]+")


def _not_plain_locals(locals_: list[str]) -> set[int] | None:
    """Positions of the local parts that are not plain; None when one holds NUL.

    The usual column is decided by two C-level scans of the joined text (a
    character class and a substring search); only a column with a suspect
    local part is searched for which ones."""
    joined = joined_cells(locals_)
    if joined.count("\x00") != len(locals_) + 1:
        return None
    not_plain: set[int] = set()
    if _PLAIN_LOCAL_CHARACTERS.fullmatch(joined) is None:
        not_plain.update(flagged_positions(_NOT_PLAIN_LOCAL_CHARACTER, locals_, joined))
    if ".." in joined.replace("\x00", "."):  # a dot or NUL beside another: a dot at an end, two dots, an empty part
        not_plain.update(flagged_positions(_DOT_OR_NUL_BEFORE_ANOTHER, locals_, joined))
    return not_plain


def _domain_verdict(domain: str) -> bool | None:
    """The verdict of every plain local part at ``domain``: one email-validator call.
    Behind a plain local part a second "@" or a missing domain is never valid;
    other unusual domains (whitespace) are left to a call per address (None)."""
    if _PLAIN_DOMAIN.fullmatch(domain):
        return is_valid_email("a@" + domain)
    return False if domain == "" or "@" in domain else None


def _plain_verdicts(values: list[str]) -> list[bool | None] | None:
    """Per address: its verdict when its local part is plain and it is within
    the length limits, from its domain's one email-validator call; ``None``
    for the others.  ``None`` instead of a list when a value is not text."""
    try:
        parts = list(map(str.partition, values, repeat("@")))
    except TypeError:  # pragma: no cover - normalize() only gives text
        return None
    locals_ = list(map(itemgetter(0), parts))
    not_plain = _not_plain_locals(locals_)
    if not_plain is None:  # a NUL in an address: no shortcut
        return None
    if max(map(len, values), default=0) > _MAX_LOCAL_CHARS:  # only then can a length limit bite
        not_plain.update(
            position for position, (value, local) in enumerate(zip(values, locals_))
            if len(value) > _MAX_ADDRESS_CHARS or len(local) > _MAX_LOCAL_CHARS
        )
    domains = list(map(itemgetter(2), parts))
    by_domain = {domain: _domain_verdict(domain) for domain in set(domains)}
    verdicts = list(map(by_domain.__getitem__, domains))
    for position in not_plain:
        verdicts[position] = None
    return verdicts


def _phones_ok(phones: pd.Series) -> pd.Series:
    """``"" or PHONE_PATTERN``; a column of ASCII digits is decided by length alone."""
    values = phones.tolist()
    joined = "".join(values)
    if joined.isascii() and (joined.isdigit() or not joined):
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        ok = (lengths == 0) | ((lengths >= 10) & (lengths <= 15))
    else:
        pattern = re.compile(PHONE_PATTERN)
        ok = [value == "" or pattern.fullmatch(value) is not None for value in values]
    return pd.Series(ok, index=phones.index, dtype=bool)


def _filled(texts: pd.Series) -> pd.Series:
    """``texts != ""`` for a text column without missing values, compared as
    plain objects (a fifth of the time of the string-dtype comparison)."""
    return pd.Series(texts.to_numpy(dtype=object) != "", index=texts.index)


def _lengths(texts: pd.Series) -> pd.Series:
    """``texts.str.len()`` for a column without missing values, without a call per cell."""
    return pd.Series(np.fromiter(map(len, texts.tolist()), dtype=np.int64, count=len(texts)), index=texts.index)


def build_schema(*, now: int, allow_duplicate_rows: bool = False, max_amount: int | None = None) -> pa.DataFrameSchema:
    """THE schema: every rule on the normalised table, each check named by its code.

    ``now`` (unix seconds) is the moment expiry dates must be after.  Columns
    ending in ``_text`` hold the cell as typed, beside the parsed value, so
    "typed but unparseable" is a failed check like any other.
    """

    def check(name: str, fn, ignore_na: bool = False, **options) -> pa.Check:
        # Text columns never hold NA (normalize() writes "" instead) and no row
        # is all NA, so pandera's NA filtering only matters for the Int64
        # columns, whose checks ask for it; elsewhere it would scan every
        # column once per check for nothing.
        return pa.Check(fn, name=name, error=name, ignore_na=ignore_na, **options)

    row_checks = [
        check("invalid_amount", lambda df: ~_filled(df["amount_text"]) | df["amount_readable"]),
        check("amount_not_integer", lambda df: ~df["amount_readable"] | df["amount"].notna()),
        check("invalid_expires_at", lambda df: ~_filled(df["expires_text"]) | df["expires_at"].notna()),
    ]
    duplicate_row = [] if allow_duplicate_rows else [
        check("duplicate_row", lambda s: ~s.duplicated(keep="first"))
    ]
    return pa.DataFrameSchema(
        name="beneficiaries",
        strict=True,
        columns={
            "name": pa.Column(str, check("missing_name", _filled)),
            "email": pa.Column(
                str,
                [check("missing_email", _filled), check("invalid_email", _emails_ok)],
            ),
            "phone": pa.Column(
                str, check("invalid_phone", _phones_ok)
            ),
            "amount_text": pa.Column(str, check("missing_amount", _filled)),
            "amount_readable": pa.Column(bool),
            "amount": pa.Column(
                "Int64",
                [
                    check("amount_not_positive", lambda s: s > 0, ignore_na=True),
                    check(
                        "amount_not_multiple_of_100",
                        lambda s: (s <= 0) | (s % 100 == 0),
                        ignore_na=True,
                    ),
                    *(
                        [check("amount_over_limit", lambda s: s <= max_amount, ignore_na=True)]
                        if max_amount is not None
                        else []
                    ),
                ],
                nullable=True,
            ),
            "currency": pa.Column(str, check("invalid_currency", lambda s: s.isin(ISO_4217))),
            "reason": pa.Column(
                str,
                [
                    check("missing_reason", _filled),
                    check("reason_too_long", lambda s: _lengths(s) <= REASON_MAX_CHARS),
                ],
            ),
            "customer_id": pa.Column(str),
            "external_id": pa.Column(
                str,
                check("duplicate_external_id", lambda s: ~_filled(s) | ~s.duplicated(keep=False)),
            ),
            "expires_text": pa.Column(str),
            "expires_at": pa.Column(
                "Int64", check("expires_at_in_past", lambda s: s > now, ignore_na=True), nullable=True
            ),
            "duplicate_key": pa.Column(str, duplicate_row),
        },
        checks=row_checks,
    )


# ---------------------------------------------------------------------------
# Normalisation: typed values beside the text they came from
# ---------------------------------------------------------------------------

_PHONE_SEPARATORS = r"[\s\-.()]+"
_AMOUNT_SYNTAX = r"[+-]?(?=\.?[0-9])(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]*)(?:\.[0-9]*)?"
_PHONE_SEPARATOR = re.compile(_PHONE_SEPARATORS)
_PHONE_MARK = re.compile(r"[\s\-.()+]")
_AMOUNT = re.compile(_AMOUNT_SYNTAX)
_WHITESPACE = re.compile(r"\s+")
_PESO_SIGN = re.compile(r"^([+-]?)\$([+-]?)")

# Normalisation works on plain lists of str, one per column: C-level
# ``map(str.strip, ...)`` and one check of a whole column joined into one
# string ("is any cell not NFC?") instead of a pandas string method per cell;
# parsing runs once per distinct text (a batch shares a few amounts, dates and
# currencies).  Every step gives exactly the text the pandas methods gave.


def _cells(raw: pd.DataFrame, header: str | None) -> list[str]:
    """A column as stripped text ("" for empty), one str per row in order."""
    if header is None:
        return [""] * len(raw)
    values = raw[header].tolist()
    try:  # the usual case: read_table gives text only
        return list(map(str.strip, values))
    except TypeError:  # another type somewhere (str.strip refuses it): cell by cell
        return [_cell_text(value) for value in values]


def _cell_text(value: object) -> str:
    if type(value) is str:
        return value.strip()
    if value is None or value is pd.NA:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value).strip()


def _canonical_cells(raw: pd.DataFrame, headers: HeaderMap) -> dict[str, list[str]]:
    """Every canonical column as stripped text, as the user typed it."""
    return {column: _cells(raw, headers.canonical.get(column)) for column in CANONICAL_COLUMNS}


def _nfc(texts: list[str]) -> list[str]:
    """``unicodedata.normalize("NFC", ...)`` of every text; one check of the whole
    column first (NUL is a stable code point, so the joined text is NFC exactly
    when every part is)."""
    if unicodedata.is_normalized("NFC", "\x00".join(texts)):
        return texts
    return [unicodedata.normalize("NFC", text) for text in texts]


def _int64(texts: list[str], parsed: dict[str, int | None]) -> pd.Series:
    """A nullable Int64 column (``None`` -> <NA>) holding ``parsed[text]`` for
    every text, built from the distinct texts without converting cell by cell."""
    order = {text: position for position, text in enumerate(parsed)}
    codes = np.fromiter(map(order.__getitem__, texts), dtype=np.intp, count=len(texts))
    values = list(parsed.values())
    mask = np.array([value is None for value in values], dtype=bool)
    data = np.array([0 if value is None else value for value in values], dtype=np.int64)
    return pd.Series(pd.arrays.IntegerArray(data[codes], mask[codes]))


def _parse_amount(text: str, pesos: bool) -> Decimal | None:
    """One amount text -> exact cents, or None when it is not a well-formed amount."""
    cleaned = _WHITESPACE.sub("", text)
    if pesos:
        cleaned = _PESO_SIGN.sub(r"\1\2", cleaned)
    if _AMOUNT.fullmatch(cleaned) is None:
        return None
    value = Decimal(cleaned.replace(",", "")) * (Decimal(100) if pesos else Decimal(1))
    return None if abs(value) >= MAX_AMOUNT_CENTS else value


def _parse_amounts(texts: list[str], amount_unit: str) -> tuple[pd.Series, pd.Series, list[str]]:
    """Amount text -> (readable: a well-formed amount, whole cents as Int64
    (<NA> unless readable and whole), the amount as the duplicate-row key
    compares it).

    Accepts "3000", "3000.0", "3,000" (comma = thousands separator, as Excel
    in Mexico shows it); in pesos also "$1,500.00" and "$ 30".  In cents a "$"
    is refused: "$1,500" in a cents column is almost surely pesos, and
    guessing would pay 100 times less.  Each distinct text is parsed once;
    plain ASCII digits (the usual cell) need no ``Decimal``.
    """
    pesos = amount_unit == "pesos"
    readable: dict[str, bool] = {}
    whole: dict[str, int | None] = {}
    key: dict[str, str] = {}
    for text in dict.fromkeys(texts):
        if len(text) <= 16 and text.isascii() and text.isdigit():  # longer: leading zeros, or over the limit
            cents = int(text) * 100 if pesos else int(text)
            if cents < MAX_AMOUNT_CENTS:
                readable[text], whole[text], key[text] = True, cents, str(cents)
                continue
        value = _parse_amount(text, pesos)
        cents = int(value) if value is not None and value == value.to_integral_value() else None
        readable[text], whole[text] = value is not None, cents
        key[text] = "?" + text if cents is None else str(cents)
    is_readable = pd.Series(np.fromiter(map(readable.__getitem__, texts), dtype=bool, count=len(texts)))
    return is_readable, _int64(texts, whole), list(map(key.__getitem__, texts))


def _expiry_seconds(text: str) -> int | None:
    """ISO date or datetime -> unix seconds.  A bare date means the end of that
    day; a time without offset is Mexico City time."""
    try:
        try:
            moment = datetime.combine(date.fromisoformat(text), clock(23, 59, 59), LOCAL_TIMEZONE)
        except ValueError:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=LOCAL_TIMEZONE)
        return int(moment.timestamp())
    except (ValueError, OverflowError, OSError):
        return None


def _parse_expiries(texts: list[str]) -> pd.Series:
    """Distinct values only: a batch usually shares one or two expiry dates."""
    seconds = {text: _expiry_seconds(text) if text else None for text in dict.fromkeys(texts)}
    return _int64(texts, seconds)


def _currencies(texts: list[str]) -> list[str]:
    """Upper case; empty means ``DEFAULT_CURRENCY``."""
    upper = {text: text.upper() if text != "" else DEFAULT_CURRENCY for text in dict.fromkeys(texts)}
    return list(map(upper.__getitem__, texts))


def _phones(texts: list[str]) -> list[str]:
    """Separators (spaces, - . ( )) and one leading + removed; only the cells
    that hold one of them are rewritten."""
    phones = texts
    for position in flagged_positions(_PHONE_MARK, texts):
        if phones is texts:
            phones = list(texts)
        digits = _PHONE_SEPARATOR.sub("", texts[position])
        phones[position] = digits[1:] if digits.startswith("+") else digits
    return phones


def _metadata(raw: pd.DataFrame, headers: HeaderMap) -> tuple[list[dict[str, str]], list[str] | None]:
    """Per-row metadata dicts (non-empty cells only) and what the duplicate-row
    key compares of them: the cells, in the file's column order (every row of a
    file has the same columns, so the names add nothing); None without metadata."""
    keys = list(headers.metadata)
    if not keys:
        return [{} for _ in range(len(raw))], None
    columns = [_cells(raw, headers.metadata[key]) for key in keys]
    if len(keys) == 1:
        (key,), (column,) = keys, columns
        return [{key: value} if value else {} for value in column], column
    records = [{k: v for k, v in zip(keys, values) if v} for values in zip(*columns)]
    return records, list(map("\x1e".join, zip(*columns)))


def normalize(
    raw: pd.DataFrame, headers: HeaderMap, amount_unit: str = "cents", cells: dict[str, list[str]] | None = None
) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """The table ``build_schema`` validates (positional index), one column each
    for the parsed value and, where parsing can fail, the text it came from;
    and each row's metadata, which no rule looks into (so it stays out of the table).
    ``cells`` (from ``_canonical_cells``) saves reading the columns twice."""
    if cells is None:
        cells = _canonical_cells(raw, headers)
    amount_readable, amount, amount_key = _parse_amounts(cells["amount"], amount_unit)
    currency = _currencies(cells["currency"])
    reason = _nfc(cells["reason"])
    metadata, metadata_key = _metadata(raw, headers)
    emails = list(map(str.casefold, cells["email"]))
    compared = [emails, amount_key, currency, reason] + ([] if metadata_key is None else [metadata_key])
    duplicate_key = list(map("\x1f".join, zip(*compared)))

    def text(values: list[str]) -> pd.Series:
        # Plain Python str in an object column: what pandera's ``str`` accepts
        # (tests/test_schema.py runs its dtype checks on this table), without
        # pandas' per-cell conversion into its string dtype.
        return pd.Series(values, dtype=object)

    table = pd.DataFrame(
        {
            "name": text(_nfc(cells["name"])),
            "email": text(cells["email"]),
            "phone": text(_phones(cells["phone"])),
            "amount_text": text(cells["amount"]),
            "amount_readable": amount_readable,
            "amount": amount,
            "currency": text(currency),
            "reason": text(reason),
            "customer_id": text(cells["customer_id"]),
            "external_id": text(cells["external_id"]),
            "expires_text": text(cells["expires_at"]),
            "expires_at": _parse_expiries(cells["expires_at"]),
            "duplicate_key": text(duplicate_key),
        },
        copy=False,  # the columns were just built for this frame
    )
    return table, metadata


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------

_SHOWN_CHARS = 50


def validate(
    raw: pd.DataFrame,
    *,
    amount_unit: str = "cents",
    lang: str = DEFAULT_LANG,
    allow_duplicate_rows: bool = False,
    now: float | None = None,
    max_amount: int | None = None,
) -> pd.DataFrame:
    """Validate and normalise a table read by ``sheets.read_table``.

    Returns a frame indexed like ``raw`` with ``OUTPUT_COLUMNS``: name, email,
    phone (digits or ""), amount (Int64 cents, <NA> when unreadable), currency,
    reason, customer_id, external_id, expires_at (Int64 unix seconds or <NA>),
    metadata (dict), valid (bool), error_code (codes joined by ";", "" when
    valid) and error_message (in ``lang``, joined by " | ").  ``now`` (unix
    seconds, default: the current time) is what expiry dates must be after.
    Raises ``InputFileError`` for missing or ambiguous columns.
    """
    if amount_unit not in AMOUNT_UNITS:
        raise ValueError(f"amount_unit must be one of {AMOUNT_UNITS}, not {amount_unit!r}")
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {LANGUAGES}, not {lang!r}")
    headers = resolve_headers(raw.columns)
    with paused_gc():
        cells = _canonical_cells(raw, headers)
        table, metadata = normalize(raw, headers, amount_unit, cells)
        schema = build_schema(
            now=int(time.time() if now is None else now), allow_duplicate_rows=allow_duplicate_rows,
            max_amount=max_amount,
        )
        failures = _failures(schema, table)
        return _report(raw, headers, table, metadata, failures, amount_unit, lang, cells, max_amount=max_amount)


# What pandera runs at every validation.  Pinned, whatever PANDERA_VALIDATION_ENABLED
# or PANDERA_VALIDATION_DEPTH the environment holds: "False" or "SCHEMA_ONLY" there
# would otherwise pass every row of every file as valid, and pay it.
# DATA_ONLY: every rule (the checks) runs on every row; pandera's schema-level
# checks (dtypes, nulls, the set of columns) are skipped here because they test
# the table normalize() builds, not the user's file -- tests/test_schema.py runs
# them (FULL_DEPTH) on every kind of input instead.  They were a fifth of the
# validation time of a 100,000-row file.
RUN_DEPTH = {"validation_enabled": True, "validation_depth": ValidationDepth.DATA_ONLY}
FULL_DEPTH = {"validation_enabled": True, "validation_depth": ValidationDepth.SCHEMA_AND_DATA}


def _failures(schema: pa.DataFrameSchema, table: pd.DataFrame, depth: dict | None = None) -> pd.DataFrame:
    """pandera's failure table reduced to distinct (position, code) pairs."""
    try:
        # inplace: the schema coerces nothing, so pandera's defensive copy of
        # the whole table would only be thrown away.
        with config_context(**(depth or RUN_DEPTH)):
            schema.validate(table, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    else:
        return pd.DataFrame({"position": pd.Series(dtype="int64"), "code": pd.Series(dtype="str")})
    unexpected = {str(check) for check in cases["check"].unique()} - set(ERROR_CODES)
    if unexpected or cases["index"].isna().any():
        # Only a bug in normalize() can get here (a dtype or a missing column).
        raise RuntimeError(f"schema failures outside the rules: {sorted(unexpected)}\n{cases}")
    pairs = pd.DataFrame({"position": cases["index"].astype("int64"), "code": cases["check"].astype(str)})
    pairs = pairs.drop_duplicates()
    pairs["rank"] = pairs["code"].map({code: rank for rank, code in enumerate(ERROR_CODES)})
    return pairs.sort_values(["position", "rank"], kind="stable").reset_index(drop=True)


def _shown(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= _SHOWN_CHARS else value[: _SHOWN_CHARS - 1] + "…"


def _report(
    raw: pd.DataFrame,
    headers: HeaderMap,
    table: pd.DataFrame,
    metadata: list[dict[str, str]],
    failures: pd.DataFrame,
    amount_unit: str,
    lang: str,
    cells: dict[str, list[str]] | None = None,
    max_amount: int | None = None,
) -> pd.DataFrame:
    labels = raw.index.to_numpy()
    limit = "" if max_amount is None else money(max_amount)
    # Messages quote the cell as the user typed it, not the parsed value.
    if cells is None:
        cells = _canonical_cells(raw, headers)
    typed = {column: cells[column] for column in set(CODE_COLUMNS.values())}
    rows_by_external_id = _rows_sharing(table["external_id"], labels, failures, "duplicate_external_id")
    first_by_key = _first_rows(table["duplicate_key"], labels, failures)

    # Looked up only at the failing positions: arrays, not 100,000-item lists.
    reasons = table["reason"].to_numpy(dtype=object)
    external_ids = table["external_id"].to_numpy(dtype=object)
    duplicate_keys = table["duplicate_key"].to_numpy(dtype=object)
    codes: dict[int, list[str]] = {}
    messages: dict[int, list[str]] = {}
    for position, code in zip(failures["position"].tolist(), failures["code"].tolist()):
        column = CODE_COLUMNS[code]
        header = headers.header(column)
        text = message_text(code, amount_unit).format(
            lang,
            value=_shown(typed[column][position]),
            length=len(reasons[position]),
            rows=rows_by_external_id.get(external_ids[position], ""),
            first=first_by_key.get(duplicate_keys[position], ""),
            limit=limit,
        )
        codes.setdefault(position, []).append(code)
        messages.setdefault(position, []).append(_COLUMN_PREFIX.format(lang, column=header) + text)
    code_texts, message_texts = [""] * len(raw), [""] * len(raw)
    for position, found in codes.items():
        code_texts[position] = ";".join(found)
        message_texts[position] = " | ".join(messages[position])
    error_code = pd.Series(code_texts, dtype=object)
    error_message = pd.Series(message_texts, dtype=object)
    valid = np.ones(len(raw), dtype=bool)
    valid[list(codes)] = False
    bad_phone = failures.loc[failures["code"] == "invalid_phone", "position"]
    phone = table["phone"].copy()
    phone.iloc[bad_phone.to_numpy()] = ""

    result = pd.DataFrame(
        {
            "name": table["name"],
            "email": table["email"],
            "phone": phone,
            "amount": table["amount"],
            "currency": table["currency"],
            "reason": table["reason"],
            "customer_id": table["customer_id"],
            "external_id": table["external_id"],
            "expires_at": table["expires_at"],
            "metadata": pd.Series(metadata, dtype=object),
            "valid": pd.Series(valid),
            "error_code": error_code,
            "error_message": error_message,
        },
        copy=False,  # copy-on-write: the table is not used again
    )
    result.index = raw.index
    return result


def _rows_sharing(values: pd.Series, labels: np.ndarray, failures: pd.DataFrame, code: str) -> dict[str, str]:
    """For each repeated value: the row numbers holding it, "3, 8, 12"
    (the first five and a count when there are many)."""
    positions = failures.loc[failures["code"] == code, "position"].to_numpy()
    if not len(positions):
        return {}
    repeated = pd.Series([labels[p] for p in positions], index=values.iloc[positions].to_numpy())
    shown = {}
    for key, group in repeated.groupby(level=0):
        rows = group.tolist()
        text = ", ".join(map(str, rows[:5]))
        shown[key] = text if len(rows) <= 5 else f"{text}… (+{len(rows) - 5})"
    return shown


def _first_rows(keys: pd.Series, labels: np.ndarray, failures: pd.DataFrame) -> dict[str, str]:
    """For each repeated row key: the row number of its first occurrence."""
    if not (failures["code"] == "duplicate_row").any():
        return {}
    first = ~keys.duplicated(keep="first") & keys.duplicated(keep=False)
    return {key: str(labels[p]) for p, key in zip(first[first].index, keys[first].tolist())}


def _prefix_pattern(lang: str) -> re.Pattern[str]:
    before, after = _COLUMN_PREFIX.format(lang, column="\0").split("\0")
    return re.compile(re.escape(before) + "(.+?)" + re.escape(after))


_PREFIX_PATTERNS = tuple(_prefix_pattern(lang) for lang in LANGUAGES)


def split_column_prefix(message: str) -> tuple[str, str]:
    """("correo", "«x» no es un correo válido. …") from one part of an ``error_message``:
    the header the problem is about, as the file wrote it ("" when none), and the rest."""
    for pattern in _PREFIX_PATTERNS:
        found = pattern.match(message)
        if found:
            return found.group(1), message[found.end():]
    return "", message


def row_problems(validated: pd.DataFrame, lang: str = DEFAULT_LANG) -> list[str]:
    """Console lines, one per problem: "Fila 7, columna «Correo»: …".

    The message text is the one ``validate`` wrote (in the language it was
    given); ``lang`` chooses the "Fila"/"Row" prefix, so pass the same one.
    """
    row_word = "Row" if lang == "en" else "Fila"
    lines = []
    invalid = validated.loc[~validated["valid"].astype(bool)]
    for label, message in zip(invalid.index, invalid["error_message"].tolist()):
        for part in str(message).split(" | "):
            lines.append(f"{row_word} {label}, {part[:1].lower()}{part[1:]}")
    return lines
