"""The pesos/cents trap, end to end: the file tells the unit where it can, doubtful amounts are
warned about, a run nobody settled the unit for is refused, and every summary shows the figures
(total, largest, median) that make a hundredfold mistake visible. Runs go over real HTTP to the sandbox."""

from __future__ import annotations

from pathlib import Path

import xlsxwriter

from conftest import beneficiary, read_xlsx, write_csv

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "beneficiaries.xlsx"
HEADERS = ["nombre", "correo", "telefono", "monto", "motivo"]


def _workbook(path: Path, amounts: list[tuple[float, str | None]]) -> Path:
    """A workbook whose amount cells carry the given Excel number formats (None: General)."""
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet("Pagos")
    sheet.write_row(0, 0, HEADERS)
    formats: dict[str, object] = {}
    for number, (amount, code) in enumerate(amounts, start=1):
        row = beneficiary(number)
        sheet.write_row(number, 0, [row["nombre"], row["correo"], row["telefono"]])
        style = None if code is None else formats.setdefault(code, book.add_format({"num_format": code}))
        sheet.write_number(number, 3, amount, style)
        sheet.write_string(number, 4, row["motivo"])
    book.close()
    return path


def _posts(sandbox) -> list:
    return [r for r in sandbox.request_log if r["method"] == "POST"]


def test_sample_in_cents_read_as_pesos_is_warned_about_and_over_the_default_cap(env, cli):
    result = cli("validate", SAMPLE, "--amount-unit", "pesos", "--output", env / "out.xlsx")
    assert result.exit_code == 1
    assert "19 de 20 montos leídos en pesos son múltiplos de 100" in result.output
    assert "--amount-unit cents" in result.output
    # $1,500.00 as pesos is $150,000.00: over the default $10,000.00 per row, so nothing is valid
    assert "supera el máximo por fila de $10,000.00" in result.output
    assert "--max-amount 50000" in result.output  # how to raise the cap
    assert all(row["status"] == "invalid" for row in read_xlsx(env / "out.xlsx"))


def test_validate_shows_total_largest_and_median_per_currency(env, cli):
    result = cli("validate", SAMPLE, "--output", env / "out.xlsx", "--lang", "en")
    assert "MXN: 14 valid rows, total $21,899.00, largest $3,000.00, median $1,400.00 (amounts in cents)" in result.output


def test_dry_run_shows_the_figures_too(sandbox, env, cli):
    source = write_csv(env / "p.csv", [beneficiary(1, moneda="MXN"), beneficiary(2, moneda="USD"), beneficiary(3, moneda="MXN")])
    result = cli("run", source, "--api-base", sandbox.url, "--dry-run", "--skip-balance-check")  # no USD balance
    assert "MXN: 2 filas válidas, total $204.00, monto mayor $103.00, mediana $101.00" in result.output
    assert "USD: 1 filas válidas, total $102.00" in result.output
    assert _posts(sandbox) == []


def test_a_header_naming_pesos_reads_pesos(sandbox, env, cli):
    rows = [{**{k: v for k, v in beneficiary(n).items() if k != "monto"}, "monto (pesos)": "1,500.00"} for n in (1, 2)]
    source = write_csv(env / "p.csv", rows)
    result = cli("run", source, "--api-base", sandbox.url)
    assert result.exit_code == 0, result.output
    assert [order["amount"] for order in sandbox.payout_orders()] == [150000, 150000]


def test_a_header_naming_cents_wins_over_nothing(env, cli):
    rows = [{**{k: v for k, v in beneficiary(n).items() if k != "monto"}, "importe_centavos": "150000"} for n in (1, 2)]
    result = cli("validate", write_csv(env / "p.csv", rows), "--output", env / "out.xlsx")
    assert result.exit_code == 0, result.output
    assert "lo dice el encabezado «importe_centavos»" in result.output
    assert "total $3,000.00" in result.output


def test_currency_formatted_cells_are_read_as_pesos(sandbox, env, cli):
    source = _workbook(env / "p.xlsx", [(1500, "$#,##0.00"), (2750.5, "$#,##0.00")])
    checked = cli("validate", source, "--output", env / "out.xlsx")
    assert "formato de moneda" in checked.output and "total $1,500.00" in checked.output
    assert "«2750.5» tiene centavos" in checked.output  # read as pesos: the pesos wording
    result = cli("run", source, "--api-base", sandbox.url, "--output", env / "run.xlsx")
    assert result.exit_code == 1  # $2,750.50 has centavos: cash is whole pesos
    assert [order["amount"] for order in sandbox.payout_orders()] == [150000]


def test_two_decimal_format_counts_as_money_and_an_explicit_unit_wins_with_a_warning(env, cli):
    source = _workbook(env / "p.xlsx", [(150000, "#,##0.00"), (200000, "#,##0.00")])
    result = cli("validate", source, "--amount-unit", "cents", "--output", env / "out.xlsx")
    assert result.exit_code == 0, result.output
    assert "Se usa --amount-unit cents como pediste" in result.output
    assert "total $3,500.00" in result.output


def test_mixed_cell_formats_warn_and_a_run_is_refused_until_the_unit_is_given(sandbox, env, cli):
    source = _workbook(env / "p.xlsx", [(1500, "$#,##0.00"), (150000, None), (120000, None)])
    checked = cli("validate", source, "--output", env / "out.xlsx")
    assert "mezcla celdas con formato de moneda (1) y sin él (2)" in checked.output
    refused = cli("run", source, "--api-base", sandbox.url, "--output", env / "run.xlsx")
    assert refused.exit_code == 2
    assert "no está claro si los montos están en pesos o en centavos" in refused.output
    assert _posts(sandbox) == []
    chosen = cli("run", source, "--api-base", sandbox.url, "--amount-unit", "cents", "--output", env / "run.xlsx")
    assert chosen.exit_code == 0, chosen.output
    assert sorted(order["amount"] for order in sandbox.payout_orders()) == [1500, 120000, 150000]


def test_pesos_typed_in_the_default_cents_mode_are_refused_for_a_run(sandbox, env, cli):
    source = write_csv(env / "p.csv", [beneficiary(n, monto=str(amount)) for n, amount in enumerate((500, 800, 300), 1)])
    checked = cli("validate", source, "--output", env / "out.xlsx", "--lang", "en")
    assert checked.exit_code == 0
    assert "The median amount read as cents is $5.00" in checked.output
    refused = cli("run", source, "--api-base", sandbox.url)
    assert refused.exit_code == 2 and _posts(sandbox) == []
    planned = cli("run", source, "--api-base", sandbox.url, "--dry-run")
    assert planned.exit_code == 0 and "mediana $5.00" in planned.output
    chosen = cli("run", source, "--api-base", sandbox.url, "--amount-unit", "cents")
    assert chosen.exit_code == 0, chosen.output
    assert len(sandbox.payout_orders()) == 3


def test_default_max_amount_and_raising_it(env, cli):
    source = write_csv(env / "p.csv", [beneficiary(1, monto="1000000"), beneficiary(2, monto="1000100")])
    capped = cli("validate", source, "--output", env / "out.xlsx")
    assert capped.exit_code == 1
    assert [row["status"] for row in read_xlsx(env / "out.xlsx")] == ["valid", "invalid"]
    raised = cli("validate", source, "--max-amount", "20000", "--output", env / "out.xlsx")
    assert raised.exit_code == 0, raised.output
    config = env / "config.toml"
    config.write_text('max-amount = "20000"\n', encoding="utf-8")
    configured = cli("validate", source, "--config", config, "--output", env / "out.xlsx")
    assert configured.exit_code == 0, configured.output
