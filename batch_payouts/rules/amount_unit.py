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

from collections.abc import Sequence
from dataclasses import dataclass, field

from batch_payouts.errors import BatchError
from batch_payouts.i18n import DEFAULT_LANG, Text, catalogue, money

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

# Where the unit came from.  OPTION: --amount-unit on the command line or in the config file.
OPTION, HEADER, FORMAT, DEFAULT = "option", "header", "format", "default"
SUSPICIOUS_CENTS_MEDIAN = 1_000  # $10.00: a payroll row in cents is rarely this small
# Cents for cash payouts are whole pesos (multiples of 100), so read as pesos they are all multiples
# of 100 pesos; real peso amounts rarely are.  90%, not all: one typo row must not hide the rest.
ROUND_SHARE = 0.9


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
        return BatchError(TEXT.UNIT_REFUSED, reasons=reasons)


def decide_unit(
    chosen: str, explicit: bool, header: str, header_unit: str | None, formats: tuple[int, int] = (0, 0)
) -> UnitDecision:
    """The unit to read ``header``'s amounts in. ``chosen``/``explicit``: --amount-unit and whether
    it was given; ``header_unit``: what the header names; ``formats``: (money, plain) cell counts."""
    money_cells, plain_cells = formats
    format_unit = "mixed" if money_cells and plain_cells else ("pesos" if money_cells else None)
    notes = []
    if format_unit == "mixed":
        notes.append(UnitNote(TEXT.MIXED_FORMATS, {"header": header, "money": money_cells, "plain": plain_cells}, True))
    if explicit:
        evidence = None
        if header_unit is not None and header_unit != chosen:
            other = header_unit
            evidence = Text(es=TEXT.EVIDENCE_HEADER.format("es", header=header), en=TEXT.EVIDENCE_HEADER.format("en", header=header))
        elif header_unit is None and format_unit == "pesos" and chosen != "pesos":
            evidence, other = TEXT.EVIDENCE_FORMAT, "pesos"
        if evidence is not None:
            notes.append(UnitNote(TEXT.OPTION_DISAGREES, {"unit": chosen, "evidence": evidence, "other": TEXT._UNIT_NAMES[other]}))
        return UnitDecision(chosen, OPTION, notes)
    if header_unit is not None:
        return UnitDecision(header_unit, HEADER, [UnitNote(TEXT.UNIT_FROM_HEADER, {"unit": TEXT._UNIT_NAMES[header_unit], "header": header})])
    if format_unit == "pesos":
        return UnitDecision("pesos", FORMAT, [UnitNote(TEXT.UNIT_FROM_FORMAT, {"header": header})])
    return UnitDecision(chosen, DEFAULT, notes)


def check_amounts(decision: UnitDecision, amounts: list[int]) -> None:
    """Add the doubts the valid rows' amounts (cents) raise about ``decision``'s unit."""
    if not amounts:
        return
    round_ = sum(1 for cents in amounts if cents % 10_000 == 0)
    if decision.unit == "pesos" and decision.source != FORMAT and round_ >= ROUND_SHARE * len(amounts):
        params = {"round": round_, "rows": len(amounts), "total": money(sum(amounts))}
        decision.notes.append(UnitNote(TEXT.PESOS_LOOK_LIKE_CENTS, params, True))
    if decision.unit == "cents" and _median(amounts) < SUSPICIOUS_CENTS_MEDIAN:
        decision.notes.append(UnitNote(TEXT.CENTS_LOOK_LIKE_PESOS, {"median": money(_median(amounts))}, True))


def _median(amounts: Sequence[int]) -> int:
    """The middle amount (the lower of the two middle ones for an even count: a real row's amount).
    A partial sort in numpy: sorting a million Python ints was a tenth of a validation's time."""
    import numpy as np

    middle = (len(amounts) - 1) // 2
    return int(np.partition(np.asarray(amounts, dtype=np.int64), middle)[middle])


@dataclass(frozen=True)
class AmountFigures:
    """One currency's valid rows: count, total, largest and median amount, in cents."""

    currency: str
    rows: int
    total: int
    largest: int
    median: int

    def line(self, unit: str, lang: str = DEFAULT_LANG) -> str:
        return TEXT.FIGURES_LINE.format(
            lang, currency=self.currency, rows=self.rows, total=money(self.total), largest=money(self.largest),
            median=money(self.median), unit=TEXT._UNIT_NAMES.get(unit, Text(es=unit, en=unit)),
        )

    def as_json(self) -> dict:
        return {"currency": self.currency, "rows": self.rows, "total": self.total, "largest": self.largest,
                "median": self.median}


def amount_figures(amounts: Sequence[int], currencies: Sequence[str]) -> list[AmountFigures]:
    """Per currency, in the order each first appears: the figures of these (valid) rows' amounts.
    Column-wise (numpy): a million rows took ~0.6 s row by row.  Every amount is under
    ``MAX_AMOUNT_CENTS`` (10**15), so int64 holds each; the total is summed as Python ints."""
    import numpy as np
    import pandas as pd

    if len(amounts) != len(currencies):
        raise ValueError("amounts and currencies differ in length")
    cents = np.asarray(amounts, dtype=np.int64)
    codes, names = pd.factorize(np.asarray(currencies, dtype=object))  # in order of first appearance
    figures = []
    for code, currency in enumerate(names):
        values = cents[codes == code]
        figures.append(AmountFigures(str(currency), len(values), sum(values.tolist()), int(values.max()),
                                     _median(values)))
    return figures


def figure_lines(figures: list[AmountFigures], unit: str, lang: str = DEFAULT_LANG) -> list[str]:
    return [figure.line(unit, lang) for figure in figures] or [TEXT.NO_FIGURES.format(lang)]


def overview(decision: UnitDecision, figures: list[AmountFigures], lang: str = DEFAULT_LANG) -> str:
    """The amount lines of a summary: the figures per currency, then each note about the unit
    (doubts marked as warnings)."""
    lines = [TEXT.AMOUNTS_HEADING.format(lang)] + ["  " + line for line in figure_lines(figures, decision.unit, lang)]
    for note in decision.notes:
        lines.append((TEXT.NOTE_PREFIX.format(lang) if note.doubt else "") + note.message(lang))
    return "\n".join(lines)
