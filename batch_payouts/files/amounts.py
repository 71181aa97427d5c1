"""Money cells: amounts in pesos that Excel can add up.

Why a column kind of its own: finance sums the amount column and filters it by
value.  Text such as ``"$7,800.00"`` cannot be summed, and cents (``780000``)
read as a hundred times the money.  So a money column holds pesos (major units)
as numbers, shown with a currency number format; the currency is named in its
own column beside it, never added across (see ``totals``).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

MONEY_FORMAT = "$#,##0.00"  # a number Excel sums, shown as $1,500.00
_PLAIN_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def pesos(cents: object) -> Decimal | None:
    """Integer cents as exact pesos (150050 -> Decimal("1500.50")); None for a missing amount."""
    if cents is None or isinstance(cents, bool):
        return None
    try:
        if isinstance(cents, float) and not math.isfinite(cents):
            return None
        return Decimal(int(cents)).scaleb(-2)
    except (TypeError, ValueError):
        return None


def money_number(value: object) -> float | None:
    """A money cell's number: a number as is, a plain decimal text ("1500.5", as a sheet read back
    gives it) parsed; None when it is neither (the cell is then written as it is)."""
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()  # numpy scalar -> Python
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, Decimal)):
        return float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str) and _PLAIN_DECIMAL.fullmatch(value.strip()):
        try:
            return float(Decimal(value.strip()))
        except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
            return None
    return None


def money_text(value: object) -> object:
    """A money cell in a CSV: two decimals ("1500.50"), no symbol, so importers read a number."""
    number = money_number(value)
    return value if number is None else f"{Decimal(repr(number)).quantize(Decimal('0.01'))}"
