"""Row states, result statuses and order statuses: their names, their words, and how to count them.

Why one module: the same row used to be "desconocida" in the CLI and "fallida"
on the web, because each surface had its own labels and its own counting rule.
A finance person who reads "failed" may pay that beneficiary by hand, and the
order may already exist at Conekta: a double payment.  So every name, every
label and the one grouping used to count rows live here, and everything else
(the ledger's CHECK constraint and batch query, the pipeline, the results
sheet, the CLI, the web and the ``--json`` documents) takes them from here.

Three vocabularies, never mixed up:

* **row states** -- what the ledger stores for a row (never rename: old ledgers
  hold these strings);
* **result statuses** -- the ``status`` column of the results sheet and the
  ``counts`` of ``--json`` (documented codes: never rename);
* **order statuses** -- what Conekta says of a payout order after it exists.

The rule that matters most: a row that may already exist at Conekta
(``unknown``, ``in_flight``) is *unconfirmed* -- never counted, labelled or
coloured as failed.  Running the same file again resolves it.

This module imports nothing heavy: ``validate`` loads it too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from batch_payouts.i18n import Plural, Text, catalogue

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

# -- row states, as the ledger stores them ---------------------------------------------------------
PENDING = "pending"  # known to the ledger, not sent yet (or sending was known not to happen)
IN_FLIGHT = "in_flight"  # the request may be on its way: committed before sending
CREATED = "created"
FAILED = "failed"  # Conekta refused it: nothing was created
UNKNOWN = "unknown"  # sent, no usable answer: it may exist at Conekta
DUPLICATE = "duplicate"  # refused by the repeat guard: identical to a payout of another batch
ROW_STATES = (PENDING, IN_FLIGHT, CREATED, FAILED, UNKNOWN, DUPLICATE)
IN_DOUBT_STATES = (IN_FLIGHT, UNKNOWN)  # may already exist at Conekta: a rerun looks them up

# -- result statuses: the results sheet's `status` column and `--json` counts ----------------------
VALID = "valid"  # `validate` only: would be sent
INVALID = "invalid"  # never sent: the file must be fixed
RESULT_STATUSES = (CREATED, VALID, INVALID, FAILED, DUPLICATE, UNKNOWN)  # also the order summaries list them in

STATUS_OF_STATE = {  # the one map from a ledger row to the result sheet's status
    PENDING: FAILED,  # not sent (the batch stopped, or Conekta was unavailable): error_code says which
    IN_FLIGHT: UNKNOWN,
    CREATED: CREATED,
    FAILED: FAILED,
    UNKNOWN: UNKNOWN,
    DUPLICATE: DUPLICATE,
}

# -- Conekta's payout order statuses -------------------------------------------------------------
ORDER_PENDING, ORDER_OPEN, ORDER_CASHED, ORDER_EXPIRED, ORDER_CANCELLED = "pending", "open", "cashed", "expired", "cancelled"
ORDER_STATUSES = (ORDER_PENDING, ORDER_OPEN, ORDER_CASHED, ORDER_EXPIRED, ORDER_CANCELLED)
ORDER_NOT_CASHED = (ORDER_PENDING, ORDER_OPEN)  # a beneficiary can still cash it; it can be cancelled
ORDER_FINAL = (ORDER_CANCELLED, ORDER_CASHED, ORDER_EXPIRED)
ORDER_NEVER_PAID = (ORDER_CANCELLED, ORDER_EXPIRED)  # created, but no money left: never part of a "paid" total
ORDER_NOT_CHECKED = ""  # the ledger's order_status before `status` ever asked Conekta

# -- the one counting rule -------------------------------------------------------------------------
UNCONFIRMED = "unconfirmed"
GROUPS = (CREATED, UNCONFIRMED, FAILED, PENDING, DUPLICATE, INVALID, VALID)
GROUP_OF = {  # row state or result status -> the group it is counted in
    CREATED: CREATED,
    UNKNOWN: UNCONFIRMED,
    IN_FLIGHT: UNCONFIRMED,
    FAILED: FAILED,
    PENDING: PENDING,
    DUPLICATE: DUPLICATE,
    INVALID: INVALID,
    VALID: VALID,
}


@dataclass(frozen=True)
class Counts:
    """Rows per group.  ``unconfirmed`` rows may exist at Conekta: never add them to ``failed``."""

    created: int = 0
    unconfirmed: int = 0
    failed: int = 0
    pending: int = 0  # not sent yet: running the file again sends them
    duplicate: int = 0
    invalid: int = 0
    valid: int = 0

    @property
    def total(self) -> int:
        return sum(asdict(self).values())

    @property
    def to_resolve(self) -> int:
        """Rows a rerun (or a fix) must still settle: unconfirmed, failed and not sent."""
        return self.unconfirmed + self.failed + self.pending

    def as_json(self) -> dict[str, int]:
        """Every group, plus ``unknown`` (the same number as ``unconfirmed``) for scripts written before it."""
        return {**asdict(self), UNKNOWN: self.unconfirmed}


def count_rows(values: Iterable[str] | Mapping[str, int]) -> Counts:
    """Count row states or result statuses (or a ``{value: count}`` mapping of them) into groups.

    A value this module does not know is a programming error, not a row to drop
    silently: it raises ``KeyError``.
    """
    pairs = values.items() if isinstance(values, Mapping) else ((value, 1) for value in values)
    totals = dict.fromkeys(GROUPS, 0)
    for value, count in pairs:
        totals[GROUP_OF[value]] += int(count)
    return Counts(**totals)


def sql_in(values: Iterable[str]) -> str:
    """``('a','b')`` for a SQL ``IN``; the values are this module's constants, never user input."""
    return "(" + ",".join(f"'{value}'" for value in values) + ")"


def sql_state_check(column: str = "state") -> str:
    """The ledger's CHECK constraint on a row's state, from ``ROW_STATES``."""
    return f"{column} IN {sql_in(ROW_STATES)}"


def sql_group_sums(column: str = "r.state") -> str:
    """One ``SUM`` per group a ledger state can fall in, named after the group, for a batch query."""
    parts = []
    for group in GROUPS:
        states = [state for state in ROW_STATES if GROUP_OF[state] == group]
        if states:
            parts.append(f"COALESCE(SUM(CASE WHEN {column} IN {sql_in(states)} THEN 1 ELSE 0 END), 0) AS {group}")
    return ",\n".join(parts)


# -- words -----------------------------------------------------------------------------------------
def _p(es_one: str, es_other: str, en_one: str, en_other: str) -> Plural:
    return Plural(one=Text(es=es_one, en=en_one), other=Text(es=es_other, en=en_other))


# What a group (or one row in it) is called: `.format(lang, count=n)` picks "creada"/"creadas".
GROUP_LABELS = {
    CREATED: _p("creada", "creadas", "created", "created"),
    UNCONFIRMED: _p("sin confirmar", "sin confirmar", "unconfirmed", "unconfirmed"),
    FAILED: _p("fallida", "fallidas", "failed", "failed"),
    PENDING: _p("sin enviar", "sin enviar", "not sent", "not sent"),
    DUPLICATE: _p("duplicada", "duplicadas", "duplicate", "duplicate"),
    INVALID: _p("inválida", "inválidas", "invalid", "invalid"),
    VALID: _p("válida", "válidas", "valid", "valid"),
}
# The same, with what to do, for summaries that a person acts on.
GROUP_HINTS = {
    CREATED: GROUP_LABELS[CREATED],
    UNCONFIRMED: _p(
        "sin confirmar (vuelve a ejecutar el mismo archivo para resolverla; no la pagues a mano)",
        "sin confirmar (vuelve a ejecutar el mismo archivo para resolverlas; no las pagues a mano)",
        "unconfirmed (run the same file again to resolve it; do not pay it by hand)",
        "unconfirmed (run the same file again to resolve them; do not pay them by hand)",
    ),
    FAILED: GROUP_LABELS[FAILED],
    PENDING: _p(
        "sin enviar (vuelve a ejecutar el mismo archivo para enviarla)",
        "sin enviar (vuelve a ejecutar el mismo archivo para enviarlas)",
        "not sent (run the same file again to send it)",
        "not sent (run the same file again to send them)",
    ),
    DUPLICATE: _p("duplicada (no se pagó otra vez)", "duplicadas (no se pagaron otra vez)",
                  "duplicate (not paid again)", "duplicate (not paid again)"),
    INVALID: _p("inválida (corrige el archivo)", "inválidas (corrige el archivo)", "invalid (fix the file)",
                "invalid (fix the file)"),
    VALID: GROUP_LABELS[VALID],
}
ORDER_LABELS = {  # a payout order's status at Conekta, said of one order
    ORDER_PENDING: Text(es="pendiente", en="pending"),
    ORDER_OPEN: Text(es="abierta", en="open"),
    ORDER_CASHED: Text(es="cobrada", en="cashed"),
    ORDER_EXPIRED: Text(es="vencida", en="expired"),
    ORDER_CANCELLED: Text(es="cancelada", en="cancelled"),
}
ORDER_COUNT_LABELS = {  # the same, said of several orders in a count ("3 cobradas")
    ORDER_PENDING: _p("pendiente de cobro", "pendientes de cobro", "pending (not cashed yet)", "pending (not cashed yet)"),
    ORDER_OPEN: _p("abierta (pendiente de cobro)", "abiertas (pendientes de cobro)", "open (not cashed yet)",
                   "open (not cashed yet)"),
    ORDER_CASHED: _p("cobrada", "cobradas", "cashed", "cashed"),
    ORDER_EXPIRED: _p("vencida (no se cobró)", "vencidas (no se cobraron)", "expired (never cashed)",
                      "expired (never cashed)"),
    ORDER_CANCELLED: _p("cancelada", "canceladas", "cancelled", "cancelled"),
}
# The CSS class a row or a counter of each group wears: unconfirmed has its own, never the failed one.
GROUP_CLASSES = {
    CREATED: "good", UNCONFIRMED: "unconfirmed", FAILED: "bad", PENDING: "waiting", DUPLICATE: "neutral",
    INVALID: "bad", VALID: "good",
}


def group_of(value: str) -> str:
    """The group of a row state or a result status (``unknown`` and ``in_flight`` -> ``unconfirmed``)."""
    return GROUP_OF[value]


def label(value: str | None, lang: str, count: int = 1) -> str:
    """The word for a row state or result status, for ``count`` rows; an unknown value is shown as is."""
    if value in GROUP_OF:
        return GROUP_LABELS[GROUP_OF[value]].format(lang, count=count)
    return value or ""


def hint(value: str, lang: str, count: int = 2) -> str:
    """The word with what to do about it ("inválidas (corrige el archivo)"), for summaries."""
    if value in GROUP_OF:
        return GROUP_HINTS[GROUP_OF[value]].format(lang, count=count)
    return value


def order_label(status: str | None, lang: str, count: int | None = None) -> str:
    """A payout order's status at Conekta in words: of one order, or of ``count`` orders."""
    if status in ORDER_LABELS:
        if count is None:
            return ORDER_LABELS[status].format(lang)
        return ORDER_COUNT_LABELS[status].format(lang, count=count)
    return status or ""


def report_order_label(status: str | None, lang: str, count: int | None = None) -> str:
    """``order_label`` for a created order in a report: one never checked says so ("sin consultar")."""
    return order_label(status, lang, count) if status else TEXT.ORDER_NOT_CHECKED_LABEL.format(lang)


# -- after the payout: what became of a created row's reference -----------------------------------
# What finance reads per row in `show`, the batch page and the results sheet.  ``reissued``: it
# expired (or was cancelled) and `reissue` paid it again with a new reference, now the live one.
STAGE_PENDING, STAGE_CASHED, STAGE_EXPIRED, STAGE_CANCELLED, STAGE_REISSUED = (
    "pending", "cashed", "expired", "cancelled", "reissued")
PAYOUT_STAGES = (STAGE_PENDING, STAGE_CASHED, STAGE_EXPIRED, STAGE_CANCELLED, STAGE_REISSUED)
STAGE_LABELS = {
    STAGE_PENDING: Text(es="pendiente de cobro", en="pending (not cashed yet)"),
    STAGE_CASHED: Text(es="cobrada", en="cashed"),
    STAGE_EXPIRED: Text(es="vencida (no se cobró)", en="expired (never cashed)"),
    STAGE_CANCELLED: Text(es="cancelada", en="cancelled"),
    STAGE_REISSUED: Text(es="reexpedida como {reference}", en="reissued as {reference}"),
}
# Money after the payout, per currency: cashed, still to be cashed (outstanding), or never paid.
MONEY_CASHED, MONEY_OUTSTANDING, MONEY_NEVER_PAID = "cashed", "outstanding", "never_paid"
MONEY_LABELS = {
    MONEY_CASHED: Text(es="cobrado", en="cashed"),
    MONEY_OUTSTANDING: Text(es="por cobrar", en="outstanding"),
    MONEY_NEVER_PAID: Text(es="vencido o cancelado", en="expired or cancelled"),
}


def payout_stage(state: str, order_status: str | None, reissued: bool = False) -> str | None:
    """A created row's reference after the payout (None for a row with no order).  ``reissued``: a
    new order pays it again (``reissue``), whatever became of this one."""
    if state != CREATED:
        return None
    if reissued:
        return STAGE_REISSUED
    if order_status in (ORDER_CASHED, ORDER_EXPIRED, ORDER_CANCELLED):
        return order_status
    return STAGE_PENDING  # pending, open, or not checked yet: a beneficiary may still cash it


def money_stage(state: str, order_status: str | None) -> str | None:
    """Where a row's money is: cashed, outstanding (may still be cashed) or never paid; None: no order.
    The one rule for `batches`, `show`, the summary email and the web."""
    if state != CREATED:
        return None
    if order_status == ORDER_CASHED:
        return MONEY_CASHED
    if order_status in ORDER_NEVER_PAID:
        return MONEY_NEVER_PAID
    return MONEY_OUTSTANDING
