"""validation.py: every rule, every message a finance person reads, and the failure table behind them."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest

from batch_payouts.errors import InputFileError
from batch_payouts.rules.validation import OUTPUT_COLUMNS, validate
from rule_rows import BASE, MX, NOW, table


def check(*rows: dict, **options) -> pd.DataFrame:
    """The validated frame of these rows."""
    options.setdefault("now", NOW)
    return validate(table(*rows), **options).frame


def codes(result: pd.DataFrame) -> list[str]:
    return result["error_code"].tolist()


# --------------------------------------------------------------------------- valid rows


def test_valid_row_is_normalised():
    raw = table(
        {
            "nombre": "  José Ángel  ",
            "correo": " jose@example.com ",
            "telefono": "+52 (55) 1234-5678",
            "monto": "3,000.0",
            "moneda": "mxn",
            "meta_depto": " Ventas ",
            "meta_vacía": "",
            "id cliente": "cus_123",
            "folio": "F-1",
            "notas": "ignorada",
        },
        start=7,
    )
    result = validate(raw, now=NOW).frame
    row = result.loc[7]
    assert list(result.columns) == list(OUTPUT_COLUMNS)
    assert row["valid"] and row["error_code"] == "" and row["error_message"] == ""
    assert row["name"] == "José Ángel"
    assert row["email"] == "jose@example.com"
    assert row["phone"] == "525512345678"
    assert row["amount"] == 3000
    assert row["currency"] == "MXN"
    assert row["customer_id"] == "cus_123"
    assert row["external_id"] == "F-1"
    assert row["metadata"] == {"depto": "Ventas"}
    assert pd.isna(row["expires_at"])


def test_output_dtypes():
    result = check({}, {"monto": "x", "correo": "b@example.com"})
    assert str(result["amount"].dtype) == "Int64"
    assert str(result["expires_at"].dtype) == "Int64"
    assert result["valid"].dtype == bool
    for column in ("name", "email", "phone", "currency", "reason", "customer_id", "external_id", "error_code", "error_message"):
        assert all(isinstance(v, str) for v in result[column]), column
    assert pd.isna(result.loc[3, "amount"])


def test_header_only_table():
    result = validate(table({}).iloc[0:0], now=NOW).frame
    assert len(result) == 0 and list(result.columns) == list(OUTPUT_COLUMNS)


def test_optional_columns_absent_and_nan_cells():
    raw = pd.DataFrame({"Beneficiario": ["Ana", None], "E-mail": ["a@example.com", "b@example.com"], "Importe": [3000, 200.0], "Concepto": ["Pago", "Pago"]})
    result = validate(raw, now=NOW).frame
    assert codes(result) == ["", "missing_name"]
    assert result["currency"].tolist() == ["MXN", "MXN"]
    assert result["phone"].tolist() == ["", ""]
    assert result["amount"].tolist() == [3000, 200]
    assert result["metadata"].tolist() == [{}, {}]


# --------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"nombre": "   "}, "missing_name"),
        ({"correo": ""}, "missing_email"),
        ({"correo": "juan@@x"}, "invalid_email"),
        ({"correo": "juan perez@example.com"}, "invalid_email"),
        ({"correo": "juan@example"}, "invalid_email"),
        ({"correo": "josé@example.com"}, "invalid_email"),
        ({"telefono": "12345"}, "invalid_phone"),
        ({"telefono": "1234567890123456"}, "invalid_phone"),
        ({"telefono": "55-1234-abcd"}, "invalid_phone"),
        ({"monto": ""}, "missing_amount"),
        ({"monto": "mil pesos"}, "invalid_amount"),
        ({"monto": "$1,500"}, "invalid_amount"),
        ({"monto": "1.5E+05"}, "invalid_amount"),
        ({"monto": "3,00"}, "invalid_amount"),
        ({"monto": "30.5"}, "amount_not_integer"),
        ({"monto": "0"}, "amount_not_positive"),
        ({"monto": "-3000"}, "amount_not_positive"),
        ({"monto": "150050"}, "amount_not_multiple_of_100"),
        ({"moneda": "pesos"}, "invalid_currency"),
        ({"moneda": "MNX"}, "invalid_currency"),
        ({"motivo": ""}, "missing_reason"),
        ({"motivo": "x" * 41}, "reason_too_long"),
        ({"vence": "31/12/2030"}, "invalid_expires_at"),
        ({"vence": "2030-02-30"}, "invalid_expires_at"),
        ({"vence": "2024-12-31"}, "expires_at_in_past"),
    ],
)
def test_each_rule(override, code):
    result = check(override)
    assert codes(result) == [code]
    assert not result["valid"].iloc[0]


@pytest.mark.parametrize(
    ("text", "unit", "amount", "code"),
    [
        ("3000", "cents", 3000, ""),
        ("3000.0", "cents", 3000, ""),
        ("3000.00", "cents", 3000, ""),
        ("3,000", "cents", 3000, ""),
        ("1,234,500", "cents", 1234500, ""),
        (" 3000 ", "cents", 3000, ""),
        ("+3000", "cents", 3000, ""),
        ("3000.5", "cents", None, "amount_not_integer"),
        ("1,500.00", "pesos", 150000, ""),
        ("$30", "pesos", 3000, ""),
        ("$ 1,500", "pesos", 150000, ""),
        ("1500", "pesos", 150000, ""),
        ("3,000", "pesos", 300000, ""),
        ("30.5", "pesos", 3050, "amount_not_multiple_of_100"),
        ("30.50", "pesos", 3050, "amount_not_multiple_of_100"),
        ("30.555", "pesos", None, "amount_not_integer"),
        ("-$30", "pesos", -3000, "amount_not_positive"),
        ("$", "pesos", None, "invalid_amount"),
        ("1.500,00", "pesos", None, "invalid_amount"),
        ("99999999999999999999", "cents", None, "invalid_amount"),
    ],
)
def test_amount_parsing(text, unit, amount, code):
    result = check({"monto": text}, amount_unit=unit)
    assert codes(result) == [code]
    got = result["amount"].iloc[0]
    assert (pd.isna(got) and amount is None) or got == amount


def test_amount_is_exact_for_large_values():
    result = check({"monto": "123,456,789,012.00"}, amount_unit="pesos")
    assert result["amount"].iloc[0] == 12345678901200


@pytest.mark.parametrize(
    ("text", "digits"),
    [("55 1234 5678", "5512345678"), ("(55) 1234-5678", "5512345678"), ("55.1234.5678", "5512345678"),
     ("+52 1 55 1234 5678", "5215512345678"), ("", ""), ("123456789012345", "123456789012345")],
)
def test_phone_normalisation(text, digits):
    result = check({"telefono": text})
    assert codes(result) == [""] and result["phone"].iloc[0] == digits


def test_invalid_phone_is_blanked_in_output():
    result = check({"telefono": "123"})
    assert result["phone"].iloc[0] == ""


def test_currency_default_and_case():
    assert check({"moneda": ""})["currency"].iloc[0] == "MXN"
    assert check({"moneda": " usd "})["currency"].iloc[0] == "USD"
    raw = table({}).drop(columns=["moneda"])
    assert validate(raw, now=NOW).frame["currency"].iloc[0] == "MXN"


def test_reason_length_counts_characters_not_bytes():
    forty = "Nómina" + "ñ" * 34
    assert codes(check({"motivo": forty})) == [""]
    decomposed = "No\u0301mina" + "n\u0303" * 34  # the same 40 characters, decomposed
    result = check({"motivo": decomposed})
    assert codes(result) == [""] and result["reason"].iloc[0] == forty


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2030-01-31", datetime(2030, 1, 31, 23, 59, 59, tzinfo=MX)),
        ("2030-01-31 10:30", datetime(2030, 1, 31, 10, 30, tzinfo=MX)),
        ("2030-01-31T10:30:00", datetime(2030, 1, 31, 10, 30, tzinfo=MX)),
        ("2030-01-31T10:30:00Z", datetime(2030, 1, 31, 10, 30, tzinfo=timezone.utc)),
        ("2030-01-31T10:30:00-05:00", datetime(2030, 1, 31, 15, 30, tzinfo=timezone.utc)),
    ],
)
def test_expiry_parsing(text, expected):
    result = check({"vence": text})
    assert codes(result) == [""]
    assert result["expires_at"].iloc[0] == int(expected.timestamp())


def test_expiry_today_is_still_valid_until_the_day_ends():
    today = datetime.now(MX).date().isoformat()
    result = validate(table({"vence": today})).frame
    assert codes(result) == [""]


def test_duplicate_external_id_flags_every_row_sharing_it():
    result = check({"folio": "A-1", "correo": "a@example.com"}, {"folio": "A-2", "correo": "b@example.com"},
                   {"folio": "A-1", "correo": "c@example.com"}, {"folio": "", "correo": "d@example.com"},
                   {"folio": "", "correo": "e@example.com"})
    assert codes(result) == ["duplicate_external_id", "", "duplicate_external_id", "", ""]
    assert "filas 2, 4" in result["error_message"].iloc[0]


def test_duplicate_external_id_message_stays_short():
    rows = [{"folio": "X", "correo": f"p{i}@example.com"} for i in range(12)]
    message = check(*rows)["error_message"].iloc[0]
    assert "2, 3, 4, 5, 6… (+7)" in message


def test_duplicate_rows_second_and_later():
    rows = [
        {"correo": "Ana@Example.com", "meta_area": "RH"},
        {"correo": "ana@example.com", "meta_area": "RH", "nombre": "Otra Persona"},
        {"correo": "ana@example.com", "meta_area": "TI"},
        {"correo": "ana@example.com ", "meta_area": "RH", "monto": "150,000"},
        {"correo": "ana@example.com", "meta_area": "RH", "motivo": "Pago de nómina 2"},
    ]
    result = check(*rows)
    assert codes(result) == ["", "duplicate_row", "", "duplicate_row", ""]
    assert "repite la fila 2" in result["error_message"].iloc[1]
    allowed = check(*rows, allow_duplicate_rows=True)
    assert codes(allowed) == [""] * 5


def test_several_problems_in_stable_order():
    result = check({"nombre": "", "correo": "x", "monto": "15", "motivo": "y" * 50, "vence": "ayer"})
    assert result["error_code"].iloc[0] == (
        "missing_name;invalid_email;amount_not_multiple_of_100;reason_too_long;invalid_expires_at"
    )
    assert result["error_message"].iloc[0].count(" | ") == 4


def test_message_names_column_as_written_value_and_fix():
    raw = table({"correo": "juan@@x"}).rename(columns={"correo": "Correo"})
    message = validate(raw, now=NOW).frame["error_message"].iloc[0]
    assert message == (
        "Columna «Correo»: «juan@@x» no es un correo válido. "
        "Escríbelo como nombre@dominio.com, sin espacios ni acentos."
    )
    english = validate(raw, now=NOW, lang="en").frame["error_message"].iloc[0]
    assert english.startswith("Column «Correo»: «juan@@x» is not a valid email address.")


def test_long_values_are_shortened_in_messages():
    message = check({"motivo": "a" * 300})["error_message"].iloc[0]
    assert "a" * 49 + "…" in message and "a" * 51 not in message
    assert "300 caracteres" in message


def test_pesos_messages_speak_of_pesos():
    message = check({"monto": "30.555"}, amount_unit="pesos")["error_message"].iloc[0]
    assert "2 decimales" in message
    message = check({"monto": "$30"})["error_message"].iloc[0]
    assert "centavos" in message


def test_index_is_kept_and_rows_are_named_by_it():
    raw = table({"correo": "a@example.com"}, {"correo": "bad"}, start=10)
    raw.index = [10, 15]
    validation = validate(raw, now=NOW)
    assert list(validation.frame.index) == [10, 15]
    assert [problem.line() for problem in validation.problems] == [
        "Fila 15, columna «correo»: «bad» no es un correo válido. Escríbelo como nombre@dominio.com, "
        "sin espacios ni acentos."
    ]


def test_problem_lines_english_and_one_line_per_problem():
    problems = validate(table({"nombre": "", "monto": "x"}, {}), now=NOW).problems
    lines = [problem.line("en") for problem in problems]
    assert [line.split(":")[0] for line in lines] == ["Row 2, column «nombre»", "Row 2, column «monto»"]


def test_failure_table_carries_row_column_as_written_code_and_value():
    raw = table({"correo": "juan@@x", "monto": "15"}, {}, {"nombre": "", "motivo": "y" * 45}, start=7)
    raw = raw.rename(columns={"correo": "Correo Electrónico", "monto": "IMPORTE"})
    validation = validate(raw, now=NOW)
    failures = validation.table()
    assert failures[["row", "column", "code", "value"]].values.tolist() == [
        [7, "Correo Electrónico", "invalid_email", "juan@@x"],
        [7, "IMPORTE", "amount_not_multiple_of_100", "15"],
        [9, "nombre", "missing_name", ""],
        [9, "motivo", "reason_too_long", "y" * 45],
    ]
    assert failures["params"].tolist()[3] == {"length": 45}
    # The frame's codes are the same failures, row by row.
    assert validation.frame["error_code"].tolist() == [
        "invalid_email;amount_not_multiple_of_100", "", "missing_name;reason_too_long"
    ]


@pytest.mark.parametrize("lang", ["es", "en"])
def test_the_frame_message_is_the_failure_table_rendered(lang):
    validation = validate(table({"nombre": "", "monto": "x"}, {}), now=NOW, lang=lang)
    assert validation.frame["error_message"].tolist() == [
        " | ".join(problem.labelled(lang) for problem in validation.problems), ""
    ]
    assert [problem.column for problem in validation.problems] == ["nombre", "monto"]
    for problem in validation.problems:
        assert problem.text(lang) == f"{problem.problem(lang)} {problem.fix(lang)}"
    assert validation.problems[1].problem(lang) == (
        "«x» no es un monto válido." if lang == "es" else "«x» is not a valid amount."
    )


def test_problems_render_in_either_language_whatever_the_frame_was_rendered_in():
    problems = validate(table({"correo": "bad"}), now=NOW, lang="es").problems
    assert problems[0].line("en") == (
        "Row 2, column «correo»: «bad» is not a valid email address. "
        "Write it like name@domain.com, without spaces or accents."
    )


def test_bad_options():
    with pytest.raises(ValueError):
        check({}, amount_unit="dollars")
    with pytest.raises(ValueError):
        check({}, lang="fr")


def test_missing_columns_raise_before_validation():
    with pytest.raises(InputFileError):
        validate(pd.DataFrame({"nombre": ["Ana"]}, dtype="str"))


def test_many_rows_are_judged_row_by_row_by_the_column_fast_paths():
    """20,000 rows through the whole-column paths: exactly the rows with cents not ending in 00 fail.
    How fast is measured by benchmarks/bench_validate.py, never by a timed assertion here."""
    n = 20_000
    raw = pd.DataFrame(
        {
            "nombre": [f"Persona {i}" for i in range(n)],
            "correo": [f"persona{i}@empresa{i % 40}.com.mx" for i in range(n)],
            "telefono": [f"55{i:08d}" for i in range(n)],
            "monto": ["150,000" if i % 3 else "150050" for i in range(n)],
            "motivo": ["Pago de nómina"] * n,
            "folio": [f"F{i}" for i in range(n)],
            "meta_area": ["RH"] * n,
        },
        dtype="str",
    )
    result = validate(raw, now=NOW).frame
    assert (~result["valid"]).sum() == len(range(0, n, 3))
    assert set(result.index[~result["valid"]]) == {raw.index[i] for i in range(0, n, 3)}
    assert set(result.loc[~result["valid"], "error_code"]) == {"amount_not_multiple_of_100"}


def test_email_local_part_over_64_characters_is_invalid():
    """RFC 5321: the part before the "@" holds at most 64 characters (already enforced; kept by this test)."""
    at_limit, over = "a" * 64 + "@ejemplo.mx", "a" * 65 + "@ejemplo.mx"
    result = validate(table({"correo": at_limit}, {"correo": over}), now=NOW).frame
    assert result["valid"].tolist() == [True, False]
    assert result["error_code"].tolist() == ["", "invalid_email"]
