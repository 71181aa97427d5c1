"""The blank workbook users start from: the right headers, an example, instructions.

Most input problems are headers nobody recognises and amounts typed in the
wrong unit.  Handing out a template whose headers already match, whose phone
and folio columns are formatted as text (so Excel keeps leading zeros and long
numbers), and whose second sheet explains every column in the user's language
prevents them before any validation runs.  Aliases and required columns come
from ``schema`` so the instructions can never disagree with the rules.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from batch_payouts.files import sheets
from batch_payouts.rules import schema
from batch_payouts.i18n import DEFAULT_LANG, Text

# (canonical column or "metadata", header in Spanish, header in English)
TEMPLATE_COLUMNS = (
    ("name", "nombre", "name"),
    ("email", "correo", "email"),
    ("phone", "telefono", "phone"),
    ("amount", "monto", "amount"),
    ("currency", "moneda", "currency"),
    ("reason", "motivo", "reason"),
    ("external_id", "folio", "external_id"),
    ("metadata", "meta_cliente", "meta_client"),
    ("expires_at", "vence", "expires_at"),
)
TEXT_COLUMNS = ("phone", "external_id", "metadata", "expires_at")

SHEET_NAMES = {
    "es": ("Beneficiarios", "Instrucciones"),
    "en": ("Beneficiaries", "Instructions"),
}
INSTRUCTION_HEADERS = {
    "es": ("Columna", "¿Obligatoria?", "También se acepta", "Formato", "Ejemplo"),
    "en": ("Column", "Required?", "Also accepted", "Format", "Example"),
}
YES_NO = {"es": ("Sí", "No"), "en": ("Yes", "No")}

# What each column holds, in words a finance person uses.
FORMATS: dict[str, Text] = {
    "name": Text(
        es="Nombre completo de la persona que cobrará el dinero.",
        en="Full name of the person who will collect the cash.",
    ),
    "email": Text(
        es="Correo válido, sin espacios ni acentos: ahí llega la referencia de retiro.",
        en="A valid email without spaces or accents: the withdrawal reference is sent there.",
    ),
    "phone": Text(
        es="De 10 a 15 dígitos. Se ignoran espacios, guiones, puntos, paréntesis y el + inicial.",
        en="10 to 15 digits. Spaces, dashes, dots, parentheses and a leading + are ignored.",
    ),
    "amount": Text(
        es="En centavos: número entero terminado en 00 (150000 = $1,500.00). Se acepta la coma "
        "de miles (150,000). Si ejecutas en pesos, escribe pesos: 1500, 1,500.00 o $1,500.",
        en="In cents: a whole number ending in 00 (150000 = $1,500.00). A thousands comma is "
        "accepted (150,000). If you run in pesos, write pesos: 1500, 1,500.00 or $1,500.",
    ),
    "currency": Text(
        es="Código de 3 letras (ISO 4217). Si la dejas vacía se usa MXN.",
        en="3-letter code (ISO 4217). Left empty, MXN is used.",
    ),
    "reason": Text(
        es="Motivo del pago, hasta 40 caracteres.",
        en="Reason for the payment, up to 40 characters.",
    ),
    "customer_id": Text(
        es="Id de un cliente de Conekta ya registrado (cus_...), si lo tienes.",
        en="Id of an existing Conekta customer (cus_...), if you have one.",
    ),
    "external_id": Text(
        es="Tu referencia interna para este pago; no puede repetirse en el archivo.",
        en="Your own reference for this payment; it cannot repeat within the file.",
    ),
    "metadata": Text(
        es="Cada columna meta_<clave> (o metadata.<clave>) viaja como dato adicional del pago, "
        "por ejemplo meta_departamento. Máximo 100 columnas; las celdas vacías no se envían.",
        en="Each meta_<key> (or metadata.<key>) column travels as extra data of the payment, "
        "for example meta_department. At most 100 columns; empty cells are not sent.",
    ),
    "expires_at": Text(
        es="Fecha AAAA-MM-DD (vence a las 23:59:59, hora de la Ciudad de México) o "
        "AAAA-MM-DD HH:MM. Debe ser una fecha futura. Vacía: se usa el plazo predeterminado.",
        en="Date YYYY-MM-DD (expires at 23:59:59, Mexico City time) or YYYY-MM-DD HH:MM. "
        "It must be in the future. Empty: the default term applies.",
    ),
    "other": Text(
        es="Cualquier otra columna se conserva en el archivo de resultados, pero no se revisa "
        "ni se envía a Conekta.",
        en="Any other column is kept in the results file, but it is neither checked nor "
        "sent to Conekta.",
    ),
}
OTHER_COLUMNS = Text(es="(otras columnas)", en="(other columns)")
METADATA_ALIASES = Text(es="metadata.<clave>, meta_<clave>", en="metadata.<key>, meta_<key>")


def _example_row(lang: str) -> dict[str, str]:
    """One realistic, valid row; its expiry is a week from today so the
    example never turns into an error."""
    expiry = (datetime.now(schema.LOCAL_TIMEZONE) + timedelta(days=7)).date().isoformat()
    return {
        "name": "María Fernanda López Hernández",
        "email": "maria.lopez@example.com",
        "phone": "5512345678",
        "amount": "150000",
        "currency": "MXN",
        "reason": "Pago de nómina" if lang == "es" else "Payroll payment",
        "external_id": "F-2025-0001",
        "metadata": "CL-1024",
        "expires_at": expiry,
    }


def _instructions(lang: str, example: dict[str, str]) -> pd.DataFrame:
    yes, no = YES_NO[lang]
    headers = {column: (es if lang == "es" else en) for column, es, en in TEMPLATE_COLUMNS}
    rows = []
    for column in (*schema.CANONICAL_COLUMNS, "metadata"):
        header = headers.get(column, schema.ALIASES.get(column, (column,))[0] if lang == "es" else column)
        if column == "metadata":
            aliases = METADATA_ALIASES.format(lang)
        else:
            spellings = (*schema.ALIASES[column], column)
            aliases = ", ".join(s for s in spellings if schema.header_key(s) != schema.header_key(header))
        required = yes if column in schema.REQUIRED_COLUMNS else no
        shown = example.get(column, "cus_2pwMQPxiLJ8WzzqZJ" if column == "customer_id" else "")
        rows.append((header, required, aliases, FORMATS[column].format(lang), shown))
    rows.append((OTHER_COLUMNS.format(lang), no, "", FORMATS["other"].format(lang), ""))
    return pd.DataFrame(rows, columns=list(INSTRUCTION_HEADERS[lang]), dtype="str")


def write_template(path: str | os.PathLike[str], lang: str = DEFAULT_LANG) -> Path:
    """Write the input template (``.xlsx``; a ``.csv`` gets only the headers and
    the example row) atomically, like every file this tool writes."""
    lang = lang if lang in SHEET_NAMES else DEFAULT_LANG
    example = _example_row(lang)
    headers = [es if lang == "es" else en for _, es, en in TEMPLATE_COLUMNS]
    frame = pd.DataFrame([[example[column] for column, _, _ in TEMPLATE_COLUMNS]], columns=headers, dtype="str")
    by_column = dict(zip((column for column, _, _ in TEMPLATE_COLUMNS), headers))
    main_sheet, instructions_sheet = SHEET_NAMES[lang]
    return sheets.write_table(
        frame,
        path,
        text_columns=[by_column[c] for c in TEXT_COLUMNS],
        integer_columns=[by_column["amount"]],
        sheet_name=main_sheet,
        extra_sheets={instructions_sheet: _instructions(lang, example)},
    )
