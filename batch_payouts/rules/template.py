"""The blank workbook users start from: the right headers, an example, instructions.

Most input problems are headers nobody recognises and amounts typed in the
wrong unit.  Handing out a template whose headers already match, whose phone
and folio columns are formatted as text (so Excel keeps leading zeros and long
numbers), and whose second sheet explains every column in the user's language
prevents them before any validation runs.  Aliases and required columns come
from ``rules.columns`` so the instructions can never disagree with the rules.

The example row is valid on purpose (it shows what a good row looks like), so it
must never be paid by accident: it carries an «ejemplo» cell, and ``mark_examples``
turns every row so marked (or copied verbatim from the example) into an invalid
row that says it is the example and must be deleted.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from batch_payouts.files.write import write_table
from batch_payouts.rules import columns
from batch_payouts.rules.headers import header_key, resolve_headers
from batch_payouts.rules.messages import Message
from batch_payouts.rules.validation import Problem, Validation
from batch_payouts.i18n import DEFAULT_LANG, Text, catalogue

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

# (canonical column or "metadata", header in Spanish, header in English)
TEMPLATE_COLUMNS = (
    ("example", "ejemplo", "example"),
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
TEXT_COLUMNS = ("example", "phone", "external_id", "metadata", "expires_at")
# Headers of the marker column, as ``header_key`` compares them.
EXAMPLE_HEADERS = ("ejemplo", "example")
# A marker cell that says "not an example": anything else (sí, x, EJEMPLO…) marks the row.
NOT_EXAMPLE = ("", "no", "n", "0", "false", "falso")
# The example's own email and folio: a row copied verbatim is the example even without the marker.
EXAMPLE_EMAIL = "maria.lopez@example.com"
EXAMPLE_FOLIO = "F-2025-0001"
EXAMPLE_CODE = "example_row"
EXAMPLE_MESSAGE = Message(
    Text(
        es="es la fila de ejemplo de la plantilla («{value}»): nunca se paga.",
        en="is the template's example row («{value}»): it is never paid.",
    ),
    Text(
        es="Bórrala y escribe en su lugar una fila por cada beneficiario (si conservas la columna «ejemplo», déjala vacía).",
        en="Delete it and write one row per beneficiary instead (if you keep the «example» column, leave it empty).",
    ),
)

SHEET_NAMES = {
    "es": ("Beneficiarios", "Instrucciones"),
    "en": ("Beneficiaries", "Instructions"),
}
INSTRUCTION_HEADERS = {
    "es": ("Columna", "¿Obligatoria?", "También se acepta", "Formato", "Ejemplo"),
    "en": ("Column", "Required?", "Also accepted", "Format", "Example"),
}
YES_NO = {"es": ("Sí", "No"), "en": ("Yes", "No")}


def _example_row(lang: str) -> dict[str, str]:
    """One realistic, valid row; its expiry is a week from today so the
    example never turns into an error."""
    expiry = (datetime.now(columns.LOCAL_TIMEZONE) + timedelta(days=7)).date().isoformat()
    return {
        "example": TEXT.EXAMPLE_MARK.format(lang),
        "name": "María Fernanda López Hernández",
        "email": EXAMPLE_EMAIL,
        "phone": "5512345678",
        "amount": "150000",
        "currency": "MXN",
        "reason": "Pago de nómina" if lang == "es" else "Payroll payment",
        "external_id": EXAMPLE_FOLIO,
        "metadata": "CL-1024",
        "expires_at": expiry,
    }


def _instructions(lang: str, example: dict[str, str]) -> pd.DataFrame:
    yes, no = YES_NO[lang]
    headers = {column: (es if lang == "es" else en) for column, es, en in TEMPLATE_COLUMNS}
    other_spelling = "example" if lang == "es" else "ejemplo"
    rows = [(headers["example"], no, other_spelling, TEXT.FORMATS["example"].format(lang), example["example"])]
    for column in (*columns.CANONICAL_COLUMNS, "metadata"):
        header = headers.get(column, columns.ALIASES.get(column, (column,))[0] if lang == "es" else column)
        if column == "metadata":
            aliases = TEXT.METADATA_ALIASES.format(lang)
        else:
            spellings = (*columns.ALIASES[column], column)
            aliases = ", ".join(s for s in spellings if header_key(s) != header_key(header))
        required = yes if column in columns.REQUIRED_COLUMNS else no
        shown = example.get(column, "cus_2pwMQPxiLJ8WzzqZJ" if column == "customer_id" else "")
        rows.append((header, required, aliases, TEXT.FORMATS[column].format(lang), shown))
    rows.append((TEXT.OTHER_COLUMNS.format(lang), no, "", TEXT.FORMATS["other"].format(lang), ""))
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
    return write_table(
        frame,
        path,
        text_columns=[by_column[c] for c in TEXT_COLUMNS],
        integer_columns=[by_column["amount"]],
        sheet_name=main_sheet,
        extra_sheets={instructions_sheet: _instructions(lang, example)},
    )


def example_rows(raw: pd.DataFrame, validated: pd.DataFrame) -> dict[int, Problem]:
    """Row number -> why it is the template's example: its «ejemplo» cell is filled
    (and is not "no"), or it has the example's own email and folio."""
    found: dict[int, Problem] = {}
    marker = next((c for c in raw.columns if header_key(c) in EXAMPLE_HEADERS), None)
    if marker is not None:
        cells = raw[marker].astype(str)
        marked = ~cells.str.strip().str.casefold().isin(NOT_EXAMPLE)
        for number, cell in cells[marked].items():
            found[int(number)] = Problem(row=int(number), column=str(marker), code=EXAMPLE_CODE, value=cell.strip(), explained=EXAMPLE_MESSAGE)
    if {"email", "external_id"} <= set(validated.columns):
        # The folio first: one comparison over the column, then the email of the few rows left.
        same_folio = validated.loc[(validated["external_id"] == EXAMPLE_FOLIO).to_numpy(dtype=bool), "email"]
        copied = same_folio.index[same_folio.astype(str).str.strip().str.casefold() == EXAMPLE_EMAIL]
        email_header = resolve_headers(list(raw.columns)).header("email") if len(copied) else ""
        for number in copied:
            found.setdefault(
                int(number), Problem(row=int(number), column=str(email_header), code=EXAMPLE_CODE, value=EXAMPLE_EMAIL,
                                     explained=EXAMPLE_MESSAGE)
            )
    return found


def mark_examples(raw: pd.DataFrame, validation: Validation, lang: str = DEFAULT_LANG) -> Validation:
    """``validation`` with the template's example rows made invalid (``example_row``,
    first among the row's problems), so neither ``validate`` counts them as valid
    nor ``run`` sends them, and every place that lists problems says why."""
    examples = example_rows(raw, validation.frame)
    if not examples:
        return validation
    marked = Validation(validation.frame.copy(), list(validation.problems))
    marked.add(list(examples.values()), lang, first=True)
    return marked
