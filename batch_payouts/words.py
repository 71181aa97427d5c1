"""The words for the columns and facts that several sheets and commands show.

Why one table: the results sheet ("Resumen", "Errores"), the month-end report and
``show`` each used to spell their own "Lote", "Fila", "Correo", "Monto"...  Finance
filters the same column in files that different commands wrote, so a column must be
called the same everywhere, and a change of wording is made once.  A word that differs
on purpose (the results sheet's "Archivo de entrada") stays beside the table that uses it.

Imports nothing heavy: ``validate`` and ``--help`` load the modules that read it.
"""

from __future__ import annotations

from batch_payouts.i18n import Text, catalogue

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


def column_words(*keys: str) -> dict[str, Text]:
    """The shared words of ``keys``, in that order, to start a module's own table of headers."""
    return {key: TEXT.COLUMN_WORDS[key] for key in keys}
