"""Money per currency: one sum, one way of writing it, and never pesos plus dollars."""

from __future__ import annotations

import pytest

from batch_payouts.totals import currency_lines, format_totals, totals_by_currency


def test_totals_are_per_currency_in_the_order_each_first_appears():
    totals = totals_by_currency([150000, 2000, 500], ["MXN", "USD", "MXN"])
    assert totals == {"MXN": 150500, "USD": 2000} and list(totals) == ["MXN", "USD"]
    assert totals_by_currency([10**20, 1], ["MXN", "MXN"]) == {"MXN": 10**20 + 1}  # exact, however large


def test_totals_refuse_amounts_and_currencies_that_do_not_pair_up():
    with pytest.raises(ValueError):
        totals_by_currency([100, 200], ["MXN"])


def test_totals_are_written_one_figure_per_currency():
    assert format_totals({"MXN": 150000, "USD": 2000}) == "$1,500.00 MXN + $20.00 USD"
    assert currency_lines({"MXN": 150000, "USD": 2000}) == ["$1,500.00 MXN", "$20.00 USD"]
    assert format_totals({}) == "$0.00" and currency_lines({}) == ["$0.00"]
