"""schema.py: the one pandera schema, its checks and codes, and what pandera runs."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_payouts.rules import columns, messages, schema
from batch_payouts.rules.headers import resolve_headers
from batch_payouts.rules.normalize import normalize
from rule_rows import BASE, NOW, table


def test_every_code_has_a_check_and_a_message():
    built = schema.build_schema(now=NOW, max_amount=100_000)  # every optional check switched on
    names = {c.name for c in built.checks}
    for column in built.columns.values():
        names |= {c.name for c in column.checks}
    assert names == set(messages.ERROR_CODES)
    assert set(messages.TEXT.MESSAGES) == set(messages.ERROR_CODES)
    assert set(messages.TEXT.PESOS_MESSAGES) <= set(messages.ERROR_CODES)
    allowed = schema.build_schema(now=NOW, allow_duplicate_rows=True)
    assert "duplicate_row" not in {c.name for col in allowed.columns.values() for c in col.checks}


def test_every_message_renders_in_both_languages():
    params = {"value": "v", "length": 41, "rows": "2, 3", "first": "2", "limit": "$1,000.00"}
    for code in messages.ERROR_CODES:
        for unit in columns.AMOUNT_UNITS:
            for lang in ("es", "en"):
                text = messages.message_text(code, unit).format(lang, **params)
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


# --------------------------------------------------------------------------- what pandera runs


_CELL_TEXT = st.sampled_from(
    ["", " ", "x", "ana@ejemplo.mx", "no-es-correo", "150000", "150.50", "$1,500.00", "-100", "12-34", "55 1234 5678",
     "MXN", "mnx", "2030-12-31", "ayer", "F1", "josé@x.mx", "9" * 30, "Motivo " * 8, "=1+1", "\u00a0", "NaN", "None"]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.fixed_dictionaries({k: _CELL_TEXT for k in BASE}), min_size=1, max_size=6),
       st.sampled_from(columns.AMOUNT_UNITS))
def test_the_table_normalize_builds_passes_pandera_schema_level_checks(rows, unit):
    """Validation runs pandera with DATA_ONLY (every rule, on every row): the schema-level checks
    (dtypes, nulls, the column set) test only what normalize() builds, so they run here instead,
    on every kind of cell: they never fail, and the rules find exactly the same problems."""
    raw = table(*rows)
    headers = resolve_headers(list(raw.columns))
    normalized, _ = normalize(raw, headers, unit)
    built = schema.build_schema(now=NOW)
    full = schema.failing_checks(built, normalized, schema.FULL_DEPTH)  # raises on a failure outside the rules
    assert full.equals(schema.failing_checks(built, normalized))


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
    from conftest import read_xlsx

    assert "invalid_email" in str(read_xlsx(tmp_path / "pagos.results.xlsx"))  # CSV in, XLSX results
