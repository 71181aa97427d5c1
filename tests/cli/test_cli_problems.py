"""`validate` shows every problem of the file in the language asked for: the same problems
(row, column as written, code) whether the user reads Spanish or English, rendered from
the failure table on the console, in --log-json and in the results sheet (its error_message
column and its Errores sheet)."""

from __future__ import annotations

import json

import openpyxl

from conftest import beneficiary, read_xlsx, write_csv


def _bad_file(env):
    rows = [beneficiary(1), beneficiary(2, correo="juan@@x", monto="15"), beneficiary(3, nombre="")]
    return write_csv(env / "pagos.csv", rows)


def test_validate_renders_the_same_problems_in_spanish_and_english(env, cli):
    source = _bad_file(env)
    spanish = cli("validate", source, "--output", env / "es.xlsx")
    english = cli("validate", source, "--output", env / "en.xlsx", "--lang", "en")
    assert spanish.exit_code == english.exit_code == 1
    assert [line for line in spanish.stderr.splitlines() if line.startswith("Fila ")] == [
        "Fila 3, columna «correo»: «juan@@x» no es un correo válido. "
        "Escríbelo como nombre@dominio.com, sin espacios ni acentos.",
        "Fila 3, columna «monto»: «15» no termina en 00. Los retiros en efectivo son de pesos completos: "
        "escribe centavos que terminen en 00, por ejemplo 150000 para $1,500.00.",
        "Fila 4, columna «nombre»: está vacía. Escribe el nombre completo de la persona que cobrará.",
    ]
    assert [line for line in english.stderr.splitlines() if line.startswith("Row ")] == [
        "Row 3, column «correo»: «juan@@x» is not a valid email address. "
        "Write it like name@domain.com, without spaces or accents.",
        "Row 3, column «monto»: «15» does not end in 00. Cash withdrawals are whole pesos: "
        "write cents ending in 00, for example 150000 for $1,500.00.",
        "Row 4, column «nombre»: is empty. Write the full name of the person who will collect the cash.",
    ]
    es_sheet, en_sheet = read_xlsx(env / "es.xlsx"), read_xlsx(env / "en.xlsx")
    assert [r["error_code"] for r in es_sheet] == [r["error_code"] for r in en_sheet] == [
        None, "invalid_email;amount_not_multiple_of_100", "missing_name"]
    assert es_sheet[1]["error_message"].split(" | ")[1].startswith("Columna «monto»: «15» no termina en 00.")
    assert en_sheet[1]["error_message"].split(" | ")[1].startswith("Column «monto»: «15» does not end in 00.")


def test_log_json_carries_each_problem_as_data_in_either_language(env, cli):
    source = _bad_file(env)
    found = {}
    for lang in ("es", "en"):
        result = cli("validate", source, "--output", env / f"{lang}.csv", "--log-json", "--lang", lang)
        records = [json.loads(line) for line in result.stderr.strip().splitlines()]
        found[lang] = [(r["row"], r["column"], r["code"]) for r in records if r["event"] == "invalid_row"]
    assert found["es"] == found["en"] == [
        (3, "correo", "invalid_email"), (3, "monto", "amount_not_multiple_of_100"), (4, "nombre", "missing_name"),
    ]


def test_the_errors_sheet_has_one_line_per_problem_naming_its_column(env, cli):
    source = _bad_file(env)
    cli("validate", source, "--output", env / "es.xlsx")
    cli("validate", source, "--output", env / "en.xlsx", "--lang", "en")
    spanish = list(openpyxl.load_workbook(env / "es.xlsx")["Errores"].iter_rows(values_only=True))
    english = list(openpyxl.load_workbook(env / "en.xlsx")["Errors"].iter_rows(values_only=True))
    assert spanish[0] == ("Fila", "Nombre", "Correo", "Estado", "Columna", "Código", "Qué corregir")
    assert english[0] == ("Row", "Name", "Email", "Status", "Column", "Code", "What to fix")
    assert [line[:6] for line in spanish[1:]] == [line[:6] for line in english[1:]] == [
        (3, "Beneficiaria Núñez 2", "juan@@x", "invalid", "correo", "invalid_email"),
        (3, "Beneficiaria Núñez 2", "juan@@x", "invalid", "monto", "amount_not_multiple_of_100"),
        (4, None, "persona3@ejemplo.mx", "invalid", "nombre", "missing_name"),
    ]
    assert spanish[3][6] == "está vacía. Escribe el nombre completo de la persona que cobrará."
    assert english[3][6] == "is empty. Write the full name of the person who will collect the cash."
