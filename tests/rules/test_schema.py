"""schema.py: every alias, every rule, every message a finance person reads."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_payouts.rules import schema
from batch_payouts.errors import InputFileError

NOW = int(datetime(2025, 6, 1, tzinfo=timezone.utc).timestamp())
MX = ZoneInfo("America/Mexico_City")

BASE = {
    "nombre": "María López",
    "correo": "maria@example.com",
    "telefono": "5512345678",
    "monto": "150000",
    "moneda": "MXN",
    "motivo": "Pago de nómina",
    "folio": "",
    "vence": "",
}


def table(*rows: dict, start: int = 2) -> pd.DataFrame:
    """A raw frame as read_table returns it: all text, index = sheet row."""
    records = [{**BASE, **row} for row in rows]
    columns = list(dict.fromkeys(k for r in records for k in r))
    frame = pd.DataFrame([[r.get(c, "") for c in columns] for r in records], columns=columns, dtype="str")
    frame.index = range(start, start + len(records))
    return frame


def check(*rows: dict, **options) -> pd.DataFrame:
    options.setdefault("now", NOW)
    return schema.validate(table(*rows), **options)


def codes(result: pd.DataFrame) -> list[str]:
    return result["error_code"].tolist()


# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("header", "canonical"),
    [(alias, column) for column, aliases in schema.ALIASES.items() for alias in (column, *aliases)]
    + [
        ("Correo Electrónico", "email"),
        ("correo_electronico", "email"),
        ("E-mail", "email"),
        ("EMAIL", "email"),
        (" Nombre ", "name"),
        ("Teléfono", "phone"),
        ("telefono", "phone"),
        ("MÓVIL", "phone"),
        ("Id-Cliente", "customer_id"),
        ("ID_EXTERNO", "external_id"),
        ("Expires At", "expires_at"),
        ("Importe", "amount"),
        ("Concepto", "reason"),
    ],
)
def test_every_alias_resolves(header, canonical):
    required = {"name": "nombre", "email": "correo", "amount": "monto", "reason": "motivo"}
    required.pop(canonical, None)
    found = schema.resolve_headers([header, *required.values()])
    assert found.canonical[canonical] == header


def test_metadata_and_extra_columns():
    found = schema.resolve_headers(
        ["nombre", "correo", "monto", "motivo", "metadata.centro", "meta_departamento", "Meta Región", "notas", "meta"]
    )
    assert found.metadata == {"centro": "metadata.centro", "departamento": "meta_departamento", "Región": "Meta Región"}
    assert found.extra == ["notas", "meta"]
    assert found.header("currency") == "moneda"
    assert found.header("email") == "correo"


def test_missing_required_columns_are_listed_with_aliases():
    with pytest.raises(InputFileError) as excinfo:
        schema.resolve_headers(["Nombre", "notas"])
    es, en = excinfo.value.message("es"), excinfo.value.message("en")
    assert "«correo» (también se acepta: correo electrónico, e-mail, email)" in es
    assert "«monto» (también se acepta: importe, amount)" in es
    assert "«motivo»" in es and "«nombre»" not in es.split("Encabezados")[0]
    assert "«email» (also accepted: correo, correo electrónico, e-mail)" in en
    assert "«Nombre», «notas»" in en


def test_two_headers_for_one_column():
    with pytest.raises(InputFileError) as excinfo:
        schema.resolve_headers(["nombre", "Correo", "E-mail", "monto", "motivo"])
    assert "«Correo» = «E-mail»" in excinfo.value.message("es")


def test_same_metadata_key_twice():
    with pytest.raises(InputFileError):
        schema.resolve_headers(["nombre", "correo", "monto", "motivo", "meta_area", "metadata.area"])


def test_too_many_metadata_columns():
    limit = schema.MAX_METADATA_KEYS
    assert limit == 98  # Conekta's 100, less batch_id and row_key
    headers = ["nombre", "correo", "monto", "motivo"] + [f"meta_k{i}" for i in range(limit + 1)]
    with pytest.raises(InputFileError) as excinfo:
        schema.resolve_headers(headers)
    assert str(limit) in excinfo.value.message("es")
    schema.resolve_headers(headers[:-1])


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
    result = schema.validate(raw, now=NOW)
    row = result.loc[7]
    assert list(result.columns) == list(schema.OUTPUT_COLUMNS)
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
    result = schema.validate(table({}).iloc[0:0], now=NOW)
    assert len(result) == 0 and list(result.columns) == list(schema.OUTPUT_COLUMNS)


def test_optional_columns_absent_and_nan_cells():
    raw = pd.DataFrame({"Beneficiario": ["Ana", None], "E-mail": ["a@example.com", "b@example.com"], "Importe": [3000, 200.0], "Concepto": ["Pago", "Pago"]})
    result = schema.validate(raw, now=NOW)
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
    assert schema.validate(raw, now=NOW)["currency"].iloc[0] == "MXN"


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
    result = schema.validate(table({"vence": today}))
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
    message = schema.validate(raw, now=NOW)["error_message"].iloc[0]
    assert message == (
        "Columna «Correo»: «juan@@x» no es un correo válido. "
        "Escríbelo como nombre@dominio.com, sin espacios ni acentos."
    )
    english = schema.validate(raw, now=NOW, lang="en")["error_message"].iloc[0]
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
    result = schema.validate(raw, now=NOW)
    assert list(result.index) == [10, 15]
    assert schema.row_problems(result) == [
        "Fila 15, columna «correo»: «bad» no es un correo válido. Escríbelo como nombre@dominio.com, "
        "sin espacios ni acentos."
    ]


def test_row_problems_english_and_one_line_per_problem():
    result = check({"nombre": "", "monto": "x"}, {}, lang="en")
    lines = schema.row_problems(result, "en")
    assert [line.split(":")[0] for line in lines] == ["Row 2, column «nombre»", "Row 2, column «monto»"]


@pytest.mark.parametrize("lang", ["es", "en"])
def test_split_column_prefix_gives_back_the_header_of_each_problem(lang):
    result = check({"nombre": "", "monto": "x"}, {}, lang=lang)
    parts = result["error_message"].iloc[0].split(" | ")
    split = [schema.split_column_prefix(part) for part in parts]
    assert [column for column, _ in split] == ["nombre", "monto"]
    assert all(rest and not rest.startswith(("Columna", "Column")) for _, rest in split)
    assert schema.split_column_prefix("sin columna: nada") == ("", "sin columna: nada")


def test_bad_options():
    with pytest.raises(ValueError):
        check({}, amount_unit="dollars")
    with pytest.raises(ValueError):
        check({}, lang="fr")


def test_missing_columns_raise_before_validation():
    with pytest.raises(InputFileError):
        schema.validate(pd.DataFrame({"nombre": ["Ana"]}, dtype="str"))


# --------------------------------------------------------------------------- the schema itself


def test_every_code_has_a_check_and_a_message():
    built = schema.build_schema(now=NOW, max_amount=100_000)  # every optional check switched on
    names = {c.name for c in built.checks}
    for column in built.columns.values():
        names |= {c.name for c in column.checks}
    assert names == set(schema.ERROR_CODES)
    assert set(schema.MESSAGES) == set(schema.ERROR_CODES)
    assert set(schema.PESOS_MESSAGES) <= set(schema.ERROR_CODES)
    allowed = schema.build_schema(now=NOW, allow_duplicate_rows=True)
    assert "duplicate_row" not in {c.name for col in allowed.columns.values() for c in col.checks}


def test_every_message_renders_in_both_languages():
    params = {"value": "v", "length": 41, "rows": "2, 3", "first": "2", "limit": "$1,000.00"}
    for code in schema.ERROR_CODES:
        for unit in schema.AMOUNT_UNITS:
            for lang in ("es", "en"):
                text = schema.message_text(code, unit).format(lang, **params)
                assert text and "{" not in text


_LOCAL = st.text(alphabet="abcxyzAZ09._%+-!#'", min_size=0, max_size=70)
_DOMAIN = st.text(alphabet="abcxyz09.-", min_size=0, max_size=30)


@settings(max_examples=300, deadline=None)
@given(local=_LOCAL, domain=_DOMAIN, tld=st.sampled_from(["com", "mx", "c", "", "com.mx", "local"]))
def test_fast_email_check_agrees_with_email_validator(local, domain, tld):
    address = f"{local}@{domain}.{tld}" if tld else f"{local}@{domain}"
    try:
        validate_email(address, check_deliverability=False, allow_smtputf8=False)
        expected = True
    except EmailNotValidError:
        expected = False
    got = schema._emails_ok(pd.Series([address], dtype="str")).iloc[0]
    assert bool(got) == expected


def test_many_rows_in_reasonable_time():
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
    started = time.perf_counter()
    result = schema.validate(raw, now=NOW)
    assert time.perf_counter() - started < 10
    assert (~result["valid"]).sum() == len(range(0, n, 3))


# --------------------------------------------------------------------------- what pandera runs


_CELL_TEXT = st.sampled_from(
    ["", " ", "x", "ana@ejemplo.mx", "no-es-correo", "150000", "150.50", "$1,500.00", "-100", "12-34", "55 1234 5678",
     "MXN", "mnx", "2030-12-31", "ayer", "F1", "josé@x.mx", "9" * 30, "Motivo " * 8, "=1+1", "\u00a0", "NaN", "None"]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.fixed_dictionaries({k: _CELL_TEXT for k in BASE}), min_size=1, max_size=6),
       st.sampled_from(schema.AMOUNT_UNITS))
def test_the_table_normalize_builds_passes_pandera_schema_level_checks(rows, unit):
    """Validation runs pandera with DATA_ONLY (every rule, on every row): the schema-level checks
    (dtypes, nulls, the column set) test only what normalize() builds, so they run here instead,
    on every kind of cell: they never fail, and the rules find exactly the same problems."""
    raw = table(*rows)
    headers = schema.resolve_headers(list(raw.columns))
    normalized, _ = schema.normalize(raw, headers, unit)
    built = schema.build_schema(now=NOW)
    full = schema._failures(built, normalized, schema.FULL_DEPTH)  # raises on a failure outside the rules
    assert full.equals(schema._failures(built, normalized))


@pytest.mark.parametrize("setting", [{"PANDERA_VALIDATION_DEPTH": "SCHEMA_ONLY"}, {"PANDERA_VALIDATION_ENABLED": "False"}])
def test_pandera_settings_in_the_environment_cannot_switch_the_rules_off(tmp_path, setting):
    """pandera reads these at import: with them, an unpinned validate() passes every row as valid."""
    import subprocess
    import sys

    source = tmp_path / "pagos.csv"
    source.write_text("nombre,correo,monto,motivo\nAna,no-es-correo,150.50,Pago\n", encoding="utf-8")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("PANDERA_", "BATCH_PAYOUTS_"))}, **setting}
    done = subprocess.run([sys.executable, "-m", "batch_payouts", "validate", str(source)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "invalid_email" in (tmp_path / "pagos.results.csv").read_text(encoding="utf-8-sig")
