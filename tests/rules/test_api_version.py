"""A phone for every row when ``--api-version`` is one whose spec requires it (2.3.0 on; API.md)."""

from __future__ import annotations

import pytest

from batch_payouts.rules.api_version import phone_required, version_tuple
from conftest import beneficiary, read_xlsx, write_csv


@pytest.mark.parametrize(
    ("version", "required"),
    [("2.0.0", False), ("2.1.0", False), ("2.2.0", False), ("2.3.0", True), ("2.3", True), ("v2.4.1", True),
     ("3", True), ("latest", False), ("", False), (None, False)],
)
def test_the_phone_is_required_from_api_2_3_0(version, required):
    assert phone_required(version) is required


def test_version_numbers_are_read_leniently():
    assert version_tuple(" 2.3 ") == (2, 3, 0) and version_tuple("2.10.1") == (2, 10, 1)
    assert version_tuple("2.3.0-beta") is None


def _file(env):
    rows = [beneficiary(1), beneficiary(2, telefono=""), beneficiary(3, telefono="12")]
    return rows, write_csv(env / "pagos.csv", rows)


def test_run_with_api_2_3_0_refuses_rows_without_a_phone_before_sending(sandbox, env, cli):
    rows, source = _file(env)
    out = env / "out.xlsx"
    result = cli("run", source, "--api-base", sandbox.url, "--api-version", "2.3.0", "--output", out, "--lang", "en")
    assert result.exit_code == 1, result.output
    sheet = read_xlsx(out)
    assert [r["status"] for r in sheet] == ["created", "invalid", "invalid"]
    assert sheet[1]["error_code"] == "missing_phone"
    assert "requires each beneficiary's phone" in sheet[1]["error_message"]
    assert sheet[2]["error_code"] == "invalid_phone"  # a malformed phone keeps its own, single message
    assert "Row 3, column «telefono»: is empty. Conekta API version 2.3.0 requires" in result.output
    assert [o["customer_info"]["email"] for o in sandbox.payout_orders()] == [rows[0]["correo"]]


def test_run_with_api_2_0_0_sends_rows_without_a_phone(sandbox, env, cli):
    rows, source = _file(env)
    result = cli("run", source, "--api-base", sandbox.url, "--output", env / "out.xlsx")
    assert result.exit_code == 1, result.output  # only the malformed phone
    assert sorted(o["customer_info"]["email"] for o in sandbox.payout_orders()) == sorted(
        r["correo"] for r in rows[:2]
    )


def test_validate_has_no_api_version_and_never_asks_for_a_phone(env, cli):
    _rows, source = _file(env)
    result = cli("validate", source, "--output", env / "out.xlsx")
    assert [r["error_code"] or "" for r in read_xlsx(env / "out.xlsx")] == ["", "", "invalid_phone"], result.output
