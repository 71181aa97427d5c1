"""headers.py: every alias, metadata and extra columns, and the header problems that stop a file."""

from __future__ import annotations

import pytest

from batch_payouts.errors import InputFileError
from batch_payouts.rules import columns
from batch_payouts.rules.headers import resolve_headers


@pytest.mark.parametrize(
    ("header", "canonical"),
    [(alias, column) for column, aliases in columns.ALIASES.items() for alias in (column, *aliases)]
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
    found = resolve_headers([header, *required.values()])
    assert found.canonical[canonical] == header


def test_metadata_and_extra_columns():
    found = resolve_headers(
        ["nombre", "correo", "monto", "motivo", "metadata.centro", "meta_departamento", "Meta Región", "notas", "meta"]
    )
    assert found.metadata == {"centro": "metadata.centro", "departamento": "meta_departamento", "Región": "Meta Región"}
    assert found.extra == ["notas", "meta"]
    assert found.header("currency") == "moneda"
    assert found.header("email") == "correo"


def test_missing_required_columns_are_listed_with_aliases():
    with pytest.raises(InputFileError) as excinfo:
        resolve_headers(["Nombre", "notas"])
    es, en = excinfo.value.message("es"), excinfo.value.message("en")
    assert "«correo» (también se acepta: correo electrónico, e-mail, email)" in es
    assert "«monto» (también se acepta: importe, amount)" in es
    assert "«motivo»" in es and "«nombre»" not in es.split("Encabezados")[0]
    assert "«email» (also accepted: correo, correo electrónico, e-mail)" in en
    assert "«Nombre», «notas»" in en


def test_two_headers_for_one_column():
    with pytest.raises(InputFileError) as excinfo:
        resolve_headers(["nombre", "Correo", "E-mail", "monto", "motivo"])
    assert "«Correo» = «E-mail»" in excinfo.value.message("es")


def test_same_metadata_key_twice():
    with pytest.raises(InputFileError):
        resolve_headers(["nombre", "correo", "monto", "motivo", "meta_area", "metadata.area"])


def test_too_many_metadata_columns():
    limit = columns.MAX_METADATA_KEYS
    assert limit == 98  # Conekta's 100, less batch_id and row_key
    headers = ["nombre", "correo", "monto", "motivo"] + [f"meta_k{i}" for i in range(limit + 1)]
    with pytest.raises(InputFileError) as excinfo:
        resolve_headers(headers)
    assert str(limit) in excinfo.value.message("es")
    resolve_headers(headers[:-1])
