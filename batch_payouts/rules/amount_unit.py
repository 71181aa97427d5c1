"""Pesos or cents: deciding how the amount column is read, and saying so when it looks wrong.

The same "1500" is $1,500.00 read as pesos and $15.00 read as cents; a file of
cents read as pesos pays a hundred times too much.  A flag alone (``--amount-unit``)
is easy to get wrong, so:

* the file decides where it tells: an amount header naming its unit
  ("monto (pesos)", "importe_centavos"), else XLSX cells all formatted as money
  ("$1,500.00", "0.00": ``files/formats.py``).  An explicit ``--amount-unit``
  (command line or config file) always wins, with a warning when the file says
  otherwise;
* the amounts themselves are checked once read: in pesos, every amount a
  multiple of 100 looks like cents; in cents, a median under $10 looks like
  pesos; a mix of money and plain cell formats means part of the column is one
  unit and part the other.  Each is a warning; when nothing chose the unit
  (neither the option nor the file), ``run`` refuses (exit 2) until
  ``--amount-unit`` says which;
* every summary shows the figures that make a wrong unit obvious at a glance:
  rows, total, largest and median amount per currency (``AmountFigures``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from batch_payouts.errors import BatchError
from batch_payouts.i18n import DEFAULT_LANG, Text, money

# Where the unit came from.  OPTION: --amount-unit on the command line or in the config file.
OPTION, HEADER, FORMAT, DEFAULT = "option", "header", "format", "default"
SUSPICIOUS_CENTS_MEDIAN = 1_000  # $10.00: a payroll row in cents is rarely this small
# Cents for cash payouts are whole pesos (multiples of 100), so read as pesos they are all multiples
# of 100 pesos; real peso amounts rarely are.  90%, not all: one typo row must not hide the rest.
ROUND_SHARE = 0.9
_UNIT_NAMES = {"pesos": Text(es="pesos", en="pesos"), "cents": Text(es="centavos", en="cents")}

UNIT_FROM_HEADER = Text(
    es="Montos leídos en {unit}: lo dice el encabezado «{header}».",
    en="Amounts read as {unit}: the header «{header}» says so.",
)
UNIT_FROM_FORMAT = Text(
    es="Montos leídos en pesos: las celdas de la columna «{header}» tienen formato de moneda en Excel "
    "(por ejemplo $1,500.00). Si son centavos, usa --amount-unit cents.",
    en="Amounts read as pesos: the cells of column «{header}» have a currency format in Excel "
    "(for example $1,500.00). If they are cents, use --amount-unit cents.",
)
OPTION_DISAGREES = Text(
    es="Se usa --amount-unit {unit} como pediste, pero {evidence} dice {other}. Revisa el total antes de pagar.",
    en="Using --amount-unit {unit} as asked, but {evidence} says {other}. Check the total before paying.",
)
EVIDENCE_HEADER = Text(es="el encabezado «{header}»", en="the header «{header}»")
EVIDENCE_FORMAT = Text(es="el formato de moneda de las celdas", en="the cells' currency format")
MIXED_FORMATS = Text(
    es="La columna «{header}» mezcla celdas con formato de moneda ({money}) y sin él ({plain}): "
    "quizá unas son pesos y otras centavos. Da a toda la columna el mismo formato y "
    "di la unidad con --amount-unit pesos o --amount-unit cents.",
    en="Column «{header}» mixes currency-formatted cells ({money}) with plain ones ({plain}): "
    "perhaps some are pesos and others cents. Give the whole column one format and "
    "state the unit with --amount-unit pesos or --amount-unit cents.",
)
PESOS_LOOK_LIKE_CENTS = Text(
    es="{round} de {rows} montos leídos en pesos son múltiplos de 100 (suman {total}): ¿están en centavos? "
    "Si es así, usa --amount-unit cents.",
    en="{round} of {rows} amounts read as pesos are multiples of 100 (they add up to {total}): are they cents? "
    "If so, use --amount-unit cents.",
)
CENTS_LOOK_LIKE_PESOS = Text(
    es="La mediana de los montos leídos en centavos es {median} (menos de $10.00): ¿están en pesos? "
    "Si es así, usa --amount-unit pesos.",
    en="The median amount read as cents is {median} (under $10.00): are they pesos? "
    "If so, use --amount-unit pesos.",
)
UNIT_REFUSED = Text(
    es="No se envió nada: no está claro si los montos están en pesos o en centavos.\n{reasons}\n"
    "Revisa el archivo y vuelve a correr con --amount-unit pesos o --amount-unit cents.",
    en="Nothing was sent: it is not clear whether the amounts are pesos or cents.\n{reasons}\n"
    "Check the file and run again with --amount-unit pesos or --amount-unit cents.",
)
FIGURES_LINE = Text(
    es="{currency}: {rows} filas válidas, total {total}, monto mayor {largest}, mediana {median} (montos en {unit})",
    en="{currency}: {rows} valid rows, total {total}, largest {largest}, median {median} (amounts in {unit})",
)
NO_FIGURES = Text(es="Ninguna fila se pagaría: no hay montos que sumar.", en="No row would be paid: no amounts to add up.")


@dataclass(frozen=True)
class UnitNote:
    """One thing to tell about the unit: ``doubt`` marks a warning that, when nothing chose the
    unit, stops a run (as opposed to a plain note of where the unit came from)."""

    text: Text
    params: dict = field(default_factory=dict)
    doubt: bool = False

    def message(self, lang: str = DEFAULT_LANG) -> str:
        return self.text.format(lang, **self.params)


@dataclass
class UnitDecision:
    """The unit amounts are read in, where it came from, and what to tell about it."""

    unit: str
    source: str
    notes: list[UnitNote] = field(default_factory=list)

    @property
    def refuses_run(self) -> bool:
        """A doubt no one settled: neither --amount-unit nor the file's header chose the unit."""
        return self.source in (DEFAULT, FORMAT) and any(note.doubt for note in self.notes)

    def refusal(self) -> BatchError:
        reasons = Text(
            es="\n".join("- " + note.message("es") for note in self.notes if note.doubt),
            en="\n".join("- " + note.message("en") for note in self.notes if note.doubt),
        )
        return BatchError(UNIT_REFUSED, reasons=reasons)


def decide_unit(
    chosen: str, explicit: bool, header: str, header_unit: str | None, formats: tuple[int, int] = (0, 0)
) -> UnitDecision:
    """The unit to read ``header``'s amounts in. ``chosen``/``explicit``: --amount-unit and whether
    it was given; ``header_unit``: what the header names; ``formats``: (money, plain) cell counts."""
    money_cells, plain_cells = formats
    format_unit = "mixed" if money_cells and plain_cells else ("pesos" if money_cells else None)
    notes = []
    if format_unit == "mixed":
        notes.append(UnitNote(MIXED_FORMATS, {"header": header, "money": money_cells, "plain": plain_cells}, True))
    if explicit:
        evidence = None
        if header_unit is not None and header_unit != chosen:
            other = header_unit
            evidence = Text(es=EVIDENCE_HEADER.format("es", header=header), en=EVIDENCE_HEADER.format("en", header=header))
        elif header_unit is None and format_unit == "pesos" and chosen != "pesos":
            evidence, other = EVIDENCE_FORMAT, "pesos"
        if evidence is not None:
            notes.append(UnitNote(OPTION_DISAGREES, {"unit": chosen, "evidence": evidence, "other": _UNIT_NAMES[other]}))
        return UnitDecision(chosen, OPTION, notes)
    if header_unit is not None:
        return UnitDecision(header_unit, HEADER, [UnitNote(UNIT_FROM_HEADER, {"unit": _UNIT_NAMES[header_unit], "header": header})])
    if format_unit == "pesos":
        return UnitDecision("pesos", FORMAT, [UnitNote(UNIT_FROM_FORMAT, {"header": header})])
    return UnitDecision(chosen, DEFAULT, notes)


def check_amounts(decision: UnitDecision, amounts: list[int]) -> None:
    """Add the doubts the valid rows' amounts (cents) raise about ``decision``'s unit."""
    if not amounts:
        return
    round_ = sum(1 for cents in amounts if cents % 10_000 == 0)
    if decision.unit == "pesos" and decision.source != FORMAT and round_ >= ROUND_SHARE * len(amounts):
        params = {"round": round_, "rows": len(amounts), "total": money(sum(amounts))}
        decision.notes.append(UnitNote(PESOS_LOOK_LIKE_CENTS, params, True))
    if decision.unit == "cents" and _median(amounts) < SUSPICIOUS_CENTS_MEDIAN:
        decision.notes.append(UnitNote(CENTS_LOOK_LIKE_PESOS, {"median": money(_median(amounts))}, True))


def _median(amounts: list[int]) -> int:
    """The middle amount (the lower of the two middle ones for an even count: a real row's amount)."""
    ordered = sorted(amounts)
    return ordered[(len(ordered) - 1) // 2]


@dataclass(frozen=True)
class AmountFigures:
    """One currency's valid rows: count, total, largest and median amount, in cents."""

    currency: str
    rows: int
    total: int
    largest: int
    median: int

    def line(self, unit: str, lang: str = DEFAULT_LANG) -> str:
        return FIGURES_LINE.format(
            lang, currency=self.currency, rows=self.rows, total=money(self.total), largest=money(self.largest),
            median=money(self.median), unit=_UNIT_NAMES.get(unit, Text(es=unit, en=unit)),
        )

    def as_json(self) -> dict:
        return {"currency": self.currency, "rows": self.rows, "total": self.total, "largest": self.largest,
                "median": self.median}


def amount_figures(amounts: list[int], currencies: list[str]) -> list[AmountFigures]:
    """Per currency, in the order each first appears: the figures of these (valid) rows' amounts."""
    grouped: dict[str, list[int]] = {}
    for cents, currency in zip(amounts, currencies, strict=True):
        grouped.setdefault(str(currency), []).append(int(cents))
    return [
        AmountFigures(currency, len(values), sum(values), max(values), _median(values))
        for currency, values in grouped.items()
    ]


def figure_lines(figures: list[AmountFigures], unit: str, lang: str = DEFAULT_LANG) -> list[str]:
    return [figure.line(unit, lang) for figure in figures] or [NO_FIGURES.format(lang)]


NOTE_PREFIX = Text(es="Aviso: ", en="Warning: ")
AMOUNTS_HEADING = Text(es="Montos:", en="Amounts:")


def overview(decision: UnitDecision, figures: list[AmountFigures], lang: str = DEFAULT_LANG) -> str:
    """The amount lines of a summary: the figures per currency, then each note about the unit
    (doubts marked as warnings)."""
    lines = [AMOUNTS_HEADING.format(lang)] + ["  " + line for line in figure_lines(figures, decision.unit, lang)]
    for note in decision.notes:
        lines.append((NOTE_PREFIX.format(lang) if note.doubt else "") + note.message(lang))
    return "\n".join(lines)
