"""The library's messages as a person in a browser must read them: no server paths, no CLI options.

``jobs``, ``files.read`` and the pipeline write their messages for the command line: they name
the file by its path and the fix by an option ("indícala con --sheet", "vuelve a ejecutar con
--live").  On the web the file is an upload stored under a random name in the server's data
folder, which the user never saw and must not see, and there is no command line.  So the web
renders those errors here: the same facts (the same ``params``) with web wording where the
advice differs, and every server path replaced by the name the user gave the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from batch_payouts.errors import BatchError
from batch_payouts.files import read
from batch_payouts.i18n import Text, catalogue
from batch_payouts.jobs.run import TEXT as RUN_TEXT
from batch_payouts.payout.row_executor import TEXT as ROW_EXECUTOR_TEXT
from batch_payouts.rules import amount_unit
from batch_payouts.rules.validation import Problem

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

# The same facts as the CLI's message (the same placeholders), with the advice a web user can follow.
WEB_TEXTS: dict[Text, Text] = {
    read.TEXT.ONLY_HIDDEN_DATA: Text(
        es="El libro «{path}» no tiene datos en ninguna hoja visible ({sheets}); las hojas ocultas ({hidden}) "
        "no se leen solas. Elige la hoja en la lista «Hoja» de esta página, o muéstrala en Excel (clic derecho "
        "en una pestaña > Mostrar) y sube el archivo de nuevo.",
        en="Workbook «{path}» has no data on any visible sheet ({sheets}); hidden sheets ({hidden}) are not read "
        "unless chosen. Choose the sheet in the «Sheet» list on this page, or unhide it in Excel (right-click a "
        "tab > Unhide) and upload the file again.",
    ),
    read.TEXT.NO_SHEET_WITH_DATA: Text(
        es="El libro «{path}» no tiene datos en ninguna hoja visible ({sheets}). Descarga la plantilla en blanco "
        "(en la página «Subir archivo»), llena una fila por beneficiario y súbela.",
        en="Workbook «{path}» has no data on any visible sheet ({sheets}). Download the blank template (on the "
        "«Upload file» page), fill one row per beneficiary and upload it.",
    ),
    read.TEXT.EMPTY_FILE: Text(
        es="El archivo «{path}» está vacío: no tiene ni la fila de encabezados. Descarga la plantilla en blanco "
        "(en la página «Subir archivo»), llena una fila por beneficiario y súbela.",
        en="File «{path}» is empty: it has no header row. Download the blank template (on the «Upload file» "
        "page), fill one row per beneficiary and upload it.",
    ),
    RUN_TEXT.OVER_MAX_TOTAL: Text(
        es="El lote suma {total} y el máximo por lote de este servidor es {cap}: no se envió nada. Divide el "
        "archivo, o pide a quien administra el servidor que suba el límite si el monto es correcto.",
        en="The batch adds up to {total} and this server's maximum per batch is {cap}: nothing was sent. Split "
        "the file, or ask whoever runs the server to raise the cap if the amount is right.",
    ),
    ROW_EXECUTOR_TEXT.LIVE_REFUSED: TEXT.LIVE_NOT_ALLOWED,
}
# Problems of a row whose fix names a CLI option: (what is wrong, how to fix it) as a web user reads them.
WEB_PROBLEMS: dict[str, tuple[Text, Text]] = {
    "amount_over_limit": (
        Text(es="«{value}» supera el máximo por fila de este servidor, {limit}.",
             en="«{value}» is over this server's per-row maximum of {limit}."),
        Text(es="Revisa el monto (¿está en la unidad correcta, pesos o centavos?); si es correcto, pide a quien "
             "administra el servidor que suba el máximo por fila.",
             en="Check the amount (is it in the right unit, pesos or cents?); if it is right, ask whoever runs "
             "the server to raise the per-row maximum."),
    ),
}
# What the review says about the amounts' unit, where the CLI's words name --amount-unit: on the
# web the person chose the unit on the upload form, and changes it by uploading again.
WEB_UNIT_NOTES: dict[Text, Text] = {
    amount_unit.TEXT.OPTION_DISAGREES: Text(
        es="Se usa la unidad que elegiste al subir el archivo, pero {evidence} dice {other}. "
        "Revisa el total antes de pagar.",
        en="Using the unit you chose when uploading, but {evidence} says {other}. Check the total "
        "before paying.",
    ),
    amount_unit.TEXT.PESOS_LOOK_LIKE_CENTS: Text(
        es="{round} de {rows} montos leídos en pesos son múltiplos de 100 (suman {total}): ¿están en centavos? "
        "Si es así, vuelve a subir el archivo eligiendo «centavos».",
        en="{round} of {rows} amounts read as pesos are multiples of 100 (they add up to {total}): are they "
        "cents? If so, upload the file again choosing «cents».",
    ),
    amount_unit.TEXT.CENTS_LOOK_LIKE_PESOS: Text(
        es="La mediana de los montos leídos en centavos es {median} (menos de $10.00): ¿están en pesos? "
        "Si es así, vuelve a subir el archivo eligiendo «pesos».",
        en="The median amount read as cents is {median} (under $10.00): are they pesos? If so, upload the "
        "file again choosing «pesos».",
    ),
    amount_unit.TEXT.MIXED_FORMATS: Text(
        es="La columna «{header}» mezcla celdas con formato de moneda ({money}) y sin él ({plain}): quizá unas "
        "son pesos y otras centavos. Da a toda la columna el mismo formato y vuelve a subir el archivo.",
        en="Column «{header}» mixes currency-formatted cells ({money}) with plain ones ({plain}): perhaps "
        "some are pesos and others cents. Give the whole column one format and upload the file again.",
    ),
}
HIDDEN = "…"


def web_message(error: BatchError, lang: str, shown_as: dict[Path, str], data_dir: Path) -> str:
    """``error`` in ``lang`` for the web: web advice where the CLI's differs, each server file of
    ``shown_as`` named as the user knows it, and any other path in the data folder left out."""
    text = WEB_TEXTS.get(error.text, error.text)
    message = text.format(lang, **error.params)
    if isinstance(error, read.SheetContentError):
        listed = ", ".join(f"«{name}»" for name in error.sheets)
        message = f"{message} {TEXT.SHEET_NOTE.format(lang, sheet=error.sheet, sheets=listed)}"
    return hide_paths(message, shown_as, data_dir)


def hide_paths(message: str, shown_as: dict[Path, str], data_dir: Path) -> str:
    for path, name in shown_as.items():
        for spelling in {str(path), str(path.resolve())}:
            message = message.replace(spelling, name)
    for folder in {str(data_dir), str(data_dir.resolve())}:
        message = re.sub(re.escape(folder) + r"[^\s«»'\"]*", HIDDEN, message)
    return message


def problem_words(problem: Problem, lang: str) -> tuple[str, str]:
    """(what is wrong, how to fix it) of a row's problem, in web wording where the CLI's names an option."""
    if problem.code in WEB_PROBLEMS:
        wrong, fix = WEB_PROBLEMS[problem.code]
        return (wrong.format(lang, value=problem.value, **problem.params),
                fix.format(lang, value=problem.value, **problem.params))
    return problem.problem(lang), problem.fix(lang)


def unit_note_words(note: amount_unit.UnitNote, lang: str) -> str:
    """A note about the amounts' unit as a web user reads it (no --amount-unit)."""
    return WEB_UNIT_NOTES.get(note.text, note.text).format(lang, **note.params)
