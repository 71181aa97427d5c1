"""Regenerate samples/beneficiaries.csv and samples/beneficiaries.xlsx.

    .venv/bin/python samples/make_samples.py

Twenty rows as a payroll clerk in Mexico would type them: Spanish headers,
names with accents, 10-digit phones (numeric cells in the XLSX, as Excel
stores what people type), amounts in cents, a ``folio``, a metadata column
``meta_departamento`` and a free-text ``notas`` column the tool keeps but
ignores.  Six rows are deliberately wrong, one problem each, so ``make demo``
shows what an invalid row looks like in the results sheet:

* row 5: email ``jorge.ramirez@@example.com``      -> invalid_email
* row 8: amount ``150050`` (does not end in 00)    -> amount_not_multiple_of_100
* row 11: reason longer than 40 characters         -> reason_too_long
* row 14: empty name                               -> missing_name
* rows 17 and 20: the same folio ``F-2025-0116``   -> duplicate_external_id
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

import pandas as pd  # noqa: E402

from batch_payouts.files.write import write_table  # noqa: E402

HEADERS = ["nombre", "correo", "telefono", "monto", "moneda", "motivo", "folio", "meta_departamento", "notas"]

ROWS = [
    ["María Fernanda López Hernández", "maria.lopez@example.com", "5512345678", "150000", "MXN", "Pago de nómina quincena 1", "F-2025-0101", "Ventas", ""],
    ["José Ángel Ramírez Ortiz", "jose.ramirez@example.com", "3312345678", "250000", "MXN", "Pago de nómina quincena 1", "F-2025-0102", "Operaciones", "Turno nocturno"],
    ["Guadalupe Sánchez Núñez", "lupita.sanchez@example.com", "8112345678", "89900", "", "Reembolso de viáticos", "F-2025-0103", "Logística", ""],
    ["Jorge Ramírez Peña", "jorge.ramirez@@example.com", "5523456789", "120000", "MXN", "Pago de nómina quincena 1", "F-2025-0104", "Ventas", "Correo por confirmar"],
    ["Ana Sofía Martínez Ríos", "ana.martinez@example.com", "", "300000", "MXN", "Bono de productividad", "F-2025-0105", "Finanzas", ""],
    ["Luis Enrique Gómez Téllez", "luis.gomez@example.com", "5534567890", "75000", "MXN", "Apoyo de transporte", "F-2025-0106", "Operaciones", ""],
    ["Verónica Castañeda Ibarra", "vero.castaneda@example.com", "3323456789", "150050", "MXN", "Pago de nómina quincena 1", "F-2025-0107", "Recursos Humanos", "Revisar centavos"],
    ["Raúl Domínguez Fuentes", "raul.dominguez@example.com", "8123456789", "180000", "MXN", "Pago de nómina quincena 1", "F-2025-0108", "Logística", ""],
    ["Itzel Hernández Cruz", "itzel.hernandez@example.com", "5545678901", "95000", "MXN", "Reembolso de gastos médicos", "F-2025-0109", "Finanzas", ""],
    ["Óscar Muñoz Villaseñor", "oscar.munoz@example.com", "3334567890", "220000", "MXN", "Pago de honorarios por consultoría externa del mes de marzo", "F-2025-0110", "Ventas", "Motivo demasiado largo"],
    ["Daniela Pérez Solís", "daniela.perez@example.com", "8134567890", "60000", "MXN", "Apoyo de transporte", "F-2025-0111", "Operaciones", ""],
    ["Fernando Aguilar Luna", "fernando.aguilar@example.com", "5556789012", "140000", "MXN", "Pago de nómina quincena 1", "F-2025-0112", "Logística", "Incluye bono de puntualidad"],
    ["", "sin.nombre@example.com", "5567890123", "100000", "MXN", "Pago de nómina quincena 1", "F-2025-0113", "Ventas", "Falta el nombre"],
    ["Mónica Juárez Beltrán", "monica.juarez@example.com", "3345678901", "275000", "MXN", "Bono de productividad", "F-2025-0114", "Finanzas", ""],
    ["Alejandro Vázquez Ochoa", "alejandro.vazquez@example.com", "8145678901", "130000", "MXN", "Pago de nómina quincena 1", "F-2025-0115", "Recursos Humanos", ""],
    ["Paola Rentería Campos", "paola.renteria@example.com", "5578901234", "110000", "MXN", "Pago de nómina quincena 1", "F-2025-0116", "Operaciones", ""],
    ["Héctor Olvera Zúñiga", "hector.olvera@example.com", "3356789012", "85000", "MXN", "Reembolso de viáticos", "F-2025-0117", "Logística", ""],
    ["Natalia Chávez Robles", "natalia.chavez@example.com", "", "160000", "MXN", "Pago de nómina quincena 1", "F-2025-0118", "Ventas", ""],
    ["Ramón Espinoza Lara", "ramon.espinoza@example.com", "8156789012", "90000", "MXN", "Apoyo de transporte", "F-2025-0116", "Operaciones", "Folio repetido por error"],
    ["Karla Ivonne Treviño Salas", "karla.trevino@example.com", "5589012345", "200000", "MXN", "Pago de nómina quincena 1", "F-2025-0119", "Finanzas", ""],
]


def build_frame() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=HEADERS, dtype="str")


def main() -> None:
    frame = build_frame()
    write_table(frame, HERE / "beneficiaries.csv")
    write_table(
        frame,
        HERE / "beneficiaries.xlsx",
        text_columns=["folio"],
        integer_columns=["telefono", "monto"],
        sheet_name="Beneficiarios",
    )
    print(f"Wrote {len(frame)} rows to {HERE / 'beneficiaries.csv'} and {HERE / 'beneficiaries.xlsx'}")


if __name__ == "__main__":
    main()
