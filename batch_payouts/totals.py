"""Money per currency: summed in one place, written in one way.

A batch may mix MXN and USD. Adding pesos to dollars gives a number that is no amount of
money at all, so every total in this tool (the console, the web pages, the results sheet,
the balance check) is a ``{currency: cents}`` mapping built here, and shown one currency at
a time by ``format_totals``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation

from batch_payouts.i18n import money

SEPARATOR = " + "


def totals_by_currency(amounts: Iterable[object], currencies: Iterable[object]) -> dict[str, int]:
    """Cents per currency, in the order each currency first appears: ([150000, 2000, 500], ["MXN",
    "USD", "MXN"]) -> {"MXN": 150500, "USD": 2000}. Sums Python ints, so exact however large."""
    totals: dict[str, int] = {}
    for cents, currency in zip(amounts, currencies, strict=True):
        key = str(currency)
        totals[key] = totals.get(key, 0) + int(cents)
    return totals


def currency_lines(totals: Mapping[str, int]) -> list[str]:
    """One line per currency ("$1,500.00 MXN", "$20.00 USD"), for a page that lists them; ["$0.00"] when empty.

    Takes no language: figures are written the Mexican way ("$1,500.00") and currencies by their
    ISO code in Spanish and English alike, so the text reads the same in both."""
    return [f"{money(cents)} {currency}" for currency, cents in totals.items()] or [money(0)]


def format_totals(totals: Mapping[str, int]) -> str:
    """The same lines in one text, never added together: "$1,500.00 MXN + $20.00 USD"."""
    return SEPARATOR.join(currency_lines(totals))



def cents_of_pesos(value: object) -> int | None:
    """An amount in pesos as finance writes it ("250000", "$250,000.00") in exact cents; None when it
    is not a positive amount with at most two decimals (the CLI's ``--above``, the web's policy form)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value * 100 if value > 0 else None
    text = str(value).replace("$", "").replace(",", "").strip()
    try:
        pesos = Decimal(text)
    except InvalidOperation:
        return None
    if not pesos.is_finite() or pesos <= 0 or pesos != pesos.quantize(Decimal("0.01")):
        return None
    return int(pesos * 100)
