"""Error codes and what each one tells a finance person, in Spanish and English.

Every message is two parts kept apart as data: what is wrong with the cell and how
to fix it.  The console and the results sheet join them into one sentence pair; the
web review shows them in two columns.  Nothing has to cut a rendered text back into
its parts, so a full stop inside a value («a.b@x») can never split a message wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass

from batch_payouts.i18n import DEFAULT_LANG, Text


@dataclass(frozen=True)
class Message:
    """One validation message: ``problem`` (what is wrong) and ``fix`` (what to do), each a ``Text``."""

    problem: Text
    fix: Text

    def format(self, lang: str = DEFAULT_LANG, **params: object) -> str:
        return f"{self.problem.format(lang, **params)} {self.fix.format(lang, **params)}"


# code -> the canonical column it is about, in the order codes are reported.
CODE_COLUMNS: dict[str, str] = {
    "missing_name": "name",
    "missing_email": "email",
    "invalid_email": "email",
    "invalid_phone": "phone",
    "missing_amount": "amount",
    "invalid_amount": "amount",
    "amount_not_integer": "amount",
    "amount_not_positive": "amount",
    "amount_not_multiple_of_100": "amount",
    "amount_over_limit": "amount",
    "invalid_currency": "currency",
    "missing_reason": "reason",
    "reason_too_long": "reason",
    "invalid_expires_at": "expires_at",
    "expires_at_in_past": "expires_at",
    "duplicate_external_id": "external_id",
    "duplicate_row": "email",
}
ERROR_CODES = tuple(CODE_COLUMNS)

# How a problem is labelled with the column it is about: in a row's error_message
# (the results sheet) and on a console line, which also names the row.
COLUMN_MESSAGE = Text(es="Columna «{column}»: {message}", en="Column «{column}»: {message}")
ROW_MESSAGE = Text(es="Fila {row}, columna «{column}»: {message}", en="Row {row}, column «{column}»: {message}")

_EMPTY = Text(es="está vacía.", en="is empty.")

MESSAGES: dict[str, Message] = {
    "missing_name": Message(
        _EMPTY,
        Text(
            es="Escribe el nombre completo de la persona que cobrará.",
            en="Write the full name of the person who will collect the cash.",
        ),
    ),
    "missing_email": Message(
        _EMPTY,
        Text(
            es="Escribe el correo del beneficiario, como nombre@dominio.com: ahí recibe su referencia de retiro.",
            en="Write the beneficiary's email, like name@domain.com: the withdrawal reference is sent there.",
        ),
    ),
    "invalid_email": Message(
        Text(es="«{value}» no es un correo válido.", en="«{value}» is not a valid email address."),
        Text(
            es="Escríbelo como nombre@dominio.com, sin espacios ni acentos.",
            en="Write it like name@domain.com, without spaces or accents.",
        ),
    ),
    "invalid_phone": Message(
        Text(es="«{value}» no es un teléfono válido.", en="«{value}» is not a valid phone number."),
        Text(
            es="Escribe de 10 a 15 dígitos (por ejemplo 5512345678) o deja la celda vacía.",
            en="Write 10 to 15 digits (for example 5512345678) or leave the cell empty.",
        ),
    ),
    "missing_amount": Message(
        _EMPTY,
        Text(
            es="Escribe el monto en centavos: por ejemplo 150000 para $1,500.00.",
            en="Write the amount in cents: for example 150000 for $1,500.00.",
        ),
    ),
    "invalid_amount": Message(
        Text(es="«{value}» no es un monto válido.", en="«{value}» is not a valid amount."),
        Text(
            es="Escribe solo números, en centavos y sin $ ni letras: por ejemplo 150000 para $1,500.00.",
            en="Write digits only, in cents, without $ or letters: for example 150000 for $1,500.00.",
        ),
    ),
    "amount_not_integer": Message(
        Text(
            es="«{value}» tiene decimales, pero el monto va en centavos.",
            en="«{value}» has decimals, but the amount is in cents.",
        ),
        Text(
            es="Escribe un número entero: por ejemplo 150000 para $1,500.00.",
            en="Write a whole number: for example 150000 for $1,500.00.",
        ),
    ),
    "amount_not_positive": Message(
        Text(es="«{value}» no es mayor que cero.", en="«{value}» is not greater than zero."),
        Text(es="Escribe el monto a pagar.", en="Write the amount to pay."),
    ),
    "amount_not_multiple_of_100": Message(
        Text(es="«{value}» no termina en 00.", en="«{value}» does not end in 00."),
        Text(
            es="Los retiros en efectivo son de pesos completos: "
            "escribe centavos que terminen en 00, por ejemplo 150000 para $1,500.00.",
            en="Cash withdrawals are whole pesos: write cents ending in 00, for example 150000 for $1,500.00.",
        ),
    ),
    "amount_over_limit": Message(
        Text(
            es="«{value}» supera el máximo por fila de {limit} (--max-amount).",
            en="«{value}» is over the per-row maximum of {limit} (--max-amount).",
        ),
        Text(
            es="Revisa el monto (¿está en la unidad correcta, pesos o centavos?); si es correcto, sube el límite "
            "con --max-amount, por ejemplo --max-amount 50000, o con max-amount en el archivo de configuración.",
            en="Check the amount (is it in the right unit, pesos or cents?); if it is right, raise the cap "
            "with --max-amount, for example --max-amount 50000, or with max-amount in the config file.",
        ),
    ),
    "invalid_currency": Message(
        Text(es="«{value}» no es una moneda válida.", en="«{value}» is not a valid currency."),
        Text(
            es="Escribe el código de 3 letras, por ejemplo MXN, o deja la celda vacía para usar MXN.",
            en="Write its 3-letter code, for example MXN, or leave the cell empty to use MXN.",
        ),
    ),
    "missing_reason": Message(
        _EMPTY,
        Text(
            es="Escribe el motivo del pago (hasta 40 caracteres), por ejemplo «Pago de nómina marzo».",
            en="Write the reason for the payment (up to 40 characters), for example «March payroll».",
        ),
    ),
    "reason_too_long": Message(
        Text(
            es="«{value}» tiene {length} caracteres y el máximo es 40.",
            en="«{value}» has {length} characters and the maximum is 40.",
        ),
        Text(es="Escribe un motivo más corto.", en="Write a shorter reason."),
    ),
    "invalid_expires_at": Message(
        Text(es="«{value}» no es una fecha válida.", en="«{value}» is not a valid date."),
        Text(
            es="Escríbela como AAAA-MM-DD (por ejemplo 2030-12-31), "
            "si quieres con hora AAAA-MM-DD HH:MM, o deja la celda vacía.",
            en="Write it as YYYY-MM-DD (for example 2030-12-31), "
            "optionally with a time YYYY-MM-DD HH:MM, or leave the cell empty.",
        ),
    ),
    "expires_at_in_past": Message(
        Text(es="«{value}» ya pasó.", en="«{value}» is already past."),
        Text(es="Escribe una fecha futura o deja la celda vacía.", en="Write a future date or leave the cell empty."),
    ),
    "duplicate_external_id": Message(
        # {rows} always lists two rows or more: a value found once is not repeated.
        Text(es="«{value}» se repite en las filas {rows}.", en="«{value}» appears in rows {rows}."),
        Text(
            es="Cada valor de esta columna debe ser único: corrige los repetidos.",
            en="Every value in this column must be unique: fix the repeated ones.",
        ),
    ),
    "duplicate_row": Message(
        Text(
            es="esta fila repite la fila {first} (mismo correo, monto, moneda, motivo y metadatos).",
            en="this row repeats row {first} (same email, amount, currency, reason and metadata).",
        ),
        Text(
            es="Si es un error, bórrala; si son dos pagos distintos, cambia el motivo para distinguirlos.",
            en="If it is a mistake, delete it; if they are two different payments, change the reason "
            "to tell them apart.",
        ),
    ),
}

# With amount_unit="pesos" the amount advice speaks of pesos, not cents.
PESOS_MESSAGES: dict[str, Message] = {
    "missing_amount": Message(
        _EMPTY,
        Text(es="Escribe el monto en pesos, por ejemplo 1500.", en="Write the amount in pesos, for example 1500."),
    ),
    "invalid_amount": Message(
        Text(es="«{value}» no es un monto válido.", en="«{value}» is not a valid amount."),
        Text(
            es="Escribe el monto en pesos con números, por ejemplo 1500 o $1,500.00.",
            en="Write the amount in pesos with digits, for example 1500 or $1,500.00.",
        ),
    ),
    "amount_not_integer": Message(
        Text(es="«{value}» tiene más de 2 decimales.", en="«{value}» has more than 2 decimals."),
        Text(
            es="Escribe pesos con 2 decimales como máximo, por ejemplo 1500.00.",
            en="Write pesos with at most 2 decimals, for example 1500.00.",
        ),
    ),
    "amount_not_multiple_of_100": Message(
        Text(es="«{value}» tiene centavos.", en="«{value}» has cents."),
        Text(
            es="Los retiros en efectivo son de pesos completos: quita los centavos, por ejemplo 1500 en vez de 1500.50.",
            en="Cash withdrawals are whole pesos: drop the cents, for example 1500 instead of 1500.50.",
        ),
    ),
}


def message_text(code: str, amount_unit: str = "cents") -> Message:
    """The message for ``code`` (without the column it is about)."""
    if amount_unit == "pesos" and code in PESOS_MESSAGES:
        return PESOS_MESSAGES[code]
    return MESSAGES[code]
