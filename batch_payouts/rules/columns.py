"""The columns of an input file, their accepted names and the limits the rules enforce.

Kept apart from the pandera schema (and free of pandas) so the template, the header
matching and the messages can read the same facts without loading the validation stack.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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

AMOUNT_UNITS = ("cents", "pesos")
DEFAULT_CURRENCY = "MXN"
REASON_MAX_CHARS = 40  # Conekta's limit for a payout order's reason
# Conekta allows 100 metadata keys per order; the pipeline adds two of its own
# (batch_id and row_key, which trace every order back to its row).
MAX_METADATA_KEYS = 98
PHONE_PATTERN = r"[0-9]{10,15}"
# The per-row cap when none is set (--max-amount, or max-amount in the config file): $10,000.00.
# Above a typical payroll or refund row, far below what a pesos/cents mix-up makes of one
# (150000 cents read as pesos is $150,000.00), so that mix-up leaves rows invalid, not paid.
DEFAULT_MAX_AMOUNT_PESOS = 10_000
DEFAULT_MAX_AMOUNT_CENTS = DEFAULT_MAX_AMOUNT_PESOS * 100
# Sending defaults that shape what a row means at Conekta (the client, the jobs and the web share them):
# the API version when none is asked for (the one Conekta's cash-withdrawal document describes),
# and how long an identical payout counts as a repeat (--repeat-window).
DEFAULT_API_VERSION = "2.0.0"
DEFAULT_REPEAT_WINDOW = 24 * 3600.0
# Conekta's newest spec requires ``expires_at`` on every payout order; its examples use about 48 hours.
DEFAULT_EXPIRES_IN = 48 * 3600.0
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
