"""Unit decisions and cell formats in isolation (the CLI tests cover them end to end)."""

from __future__ import annotations

import pytest

from batch_payouts.files.formats import is_money_format
from batch_payouts.rules.amount_unit import DEFAULT, FORMAT, HEADER, OPTION, amount_figures, check_amounts, decide_unit
from batch_payouts.rules.headers import resolve_headers


@pytest.mark.parametrize(
    "code, money",
    [("$#,##0.00", True), ('"MXN" #,##0.00', True), ("[$$-80A]#,##0", True), ("0.00", True), ("#,##0.00;(#,##0.00)", True),
     ("General", False), ("0", False), ("#,##0", False), ("@", False), ("0.000", False), ('"$" 0', False)],
)
def test_money_formats(code, money):
    assert is_money_format(code) is money


@pytest.mark.parametrize(
    "header, unit",
    [("monto (pesos)", "pesos"), ("importe_centavos", "cents"), ("Amount in cents", "cents"), ("Monto en pesos", "pesos"),
     ("monto $", "pesos"), ("monto", None)],
)
def test_amount_header_naming_its_unit(header, unit):
    found = resolve_headers(["nombre", "correo", header, "motivo"])
    assert found.canonical["amount"] == header and found.amount_unit == unit


def test_where_the_unit_comes_from():
    assert decide_unit("cents", True, "monto", "pesos").source == OPTION
    assert decide_unit("cents", False, "monto", "pesos").unit == "pesos"
    assert decide_unit("cents", False, "monto", None, (3, 0)).source == FORMAT
    assert decide_unit("cents", False, "monto (centavos)", "cents", (3, 0)).source == HEADER
    mixed = decide_unit("cents", False, "monto", None, (1, 2))
    assert mixed.source == DEFAULT and mixed.refuses_run
    assert not decide_unit("cents", True, "monto", None, (1, 2)).refuses_run


def test_doubtful_amounts():
    cents = decide_unit("cents", False, "monto", None)
    check_amounts(cents, [500, 800, 300000])
    assert cents.refuses_run  # median $8.00
    pesos = decide_unit("pesos", True, "monto", None)
    check_amounts(pesos, [15_000_000, 25_000_000, 8_990_000])
    assert [note.doubt for note in pesos.notes] == [True] and not pesos.refuses_run  # asked for: a warning only


def test_figures_per_currency():
    figures = amount_figures([100, 300, 200, 5000], ["MXN", "MXN", "MXN", "USD"])
    assert [(f.currency, f.rows, f.total, f.largest, f.median) for f in figures] == [
        ("MXN", 3, 600, 300, 200), ("USD", 1, 5000, 5000, 5000)
    ]


def test_figures_keep_first_appearance_order_the_lower_middle_and_exact_totals():
    """An even count's median is the lower middle amount (a real row's); totals beyond int64 stay exact."""
    big = 10**15 - 1  # under MAX_AMOUNT_CENTS: each fits int64, their sum does not
    figures = amount_figures([400, 100, big] * 10000 + [300.0, 200], ["USD", "MXN", "EUR"] * 10000 + ["MXN", "MXN"])
    by_currency = {f.currency: f for f in figures}
    assert [f.currency for f in figures] == ["USD", "MXN", "EUR"]
    assert (by_currency["MXN"].rows, by_currency["MXN"].median, by_currency["MXN"].largest) == (10002, 100, 300)
    assert by_currency["EUR"].total == 10000 * big and isinstance(by_currency["EUR"].total, int)
    assert amount_figures([], []) == []
