"""The words for the columns and facts that several sheets and commands show.

Why one table: the results sheet ("Resumen", "Errores"), the month-end report and
``show`` each used to spell their own "Lote", "Fila", "Correo", "Monto"...  Finance
filters the same column in files that different commands wrote, so a column must be
called the same everywhere, and a change of wording is made once.  A word that differs
on purpose (the results sheet's "Archivo de entrada") stays beside the table that uses it.

Imports nothing heavy: ``validate`` and ``--help`` load the modules that read it.
"""

from __future__ import annotations

from batch_payouts.i18n import Text

# Keyed by the field a value comes from (a ledger record, a frame's column).
COLUMN_WORDS = {
    "batch_id": Text(es="Lote", en="Batch"),
    "input_name": Text(es="Archivo", en="File"),
    "input_sha256": Text(es="SHA-256 del archivo", en="File SHA-256"),
    "mode": Text(es="Modo", en="Mode"),
    "row": Text(es="Fila", en="Row"),
    "name": Text(es="Nombre", en="Name"),
    "email": Text(es="Correo", en="Email"),
    "status": Text(es="Estado", en="Status"),
    "item": Text(es="Concepto", en="Item"),
    "amount": Text(es="Monto", en="Amount"),
    "currency": Text(es="Moneda", en="Currency"),
}


def column_words(*keys: str) -> dict[str, Text]:
    """The shared words of ``keys``, in that order, to start a module's own table of headers."""
    return {key: COLUMN_WORDS[key] for key in keys}
