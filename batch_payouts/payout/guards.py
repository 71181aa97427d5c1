"""Checks that run before any money moves: is there enough balance for what is left to send?

They look at what the batch *still* has to send (rows already created in an
earlier run do not count again), so a resumed batch is not refused for money
it already spent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from batch_payouts.payout.conekta import ConektaError
from batch_payouts.errors import BatchError
from batch_payouts.i18n import Text, catalogue, money
from batch_payouts.rules.messages import Message
from batch_payouts.rules.validation import Problem, Validation
from batch_payouts.totals import totals_by_currency

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

if TYPE_CHECKING:
    from batch_payouts.payout.conekta import ConektaClient
    from batch_payouts.payout.ledger import Ledger


NO_BALANCE_CODE = "currency_without_balance"
NO_BALANCE = Message(
    Text(es="la cuenta de Conekta no tiene saldo en «{value}».", en="the Conekta account has no «{value}» balance."),
    Text(
        es="Esta fila no se envió; las demás sí. Deposita fondos en esa moneda y vuelve a correr el mismo archivo "
        "(solo se enviarán las filas pendientes), o paga la fila en otra moneda.",
        en="This row was not sent; the others were. Add funds in that currency and run the same file again "
        "(only the pending rows are sent), or pay the row in another currency.",
    ),
)


@dataclass
class Plan:
    """What a run would do: rows to send and their totals, rows already done."""

    to_send: list = field(default_factory=list)
    already_done: int = 0
    totals: dict[str, int] = field(default_factory=dict)


def plan_batch(
    validated: pd.DataFrame, keys: pd.Series, ledger: Ledger, batch_id: str, *, retry_failed: bool = False
) -> Plan:
    """Rows a run will send: valid, not yet created, and not refused before (unless retrying those)."""
    settled = ("created", "duplicate") if retry_failed else ("created", "duplicate", "failed")
    done = {key for key, state in ledger.row_states(batch_id).items() if state in settled}
    plan = Plan()
    key_of = keys.to_dict()  # a dict lookup per row, not a Series lookup
    # Only the numbers and the valid flags: no dict per row (a rerun of 100k rows built 100k to read one cell).
    for number, valid in zip(validated.index.tolist(), validated["valid"].tolist()):
        if not valid:
            continue
        if key_of[number] in done:
            plan.already_done += 1
            continue
        plan.to_send.append(number)
    sending = validated.loc[plan.to_send]
    plan.totals = totals_by_currency(sending["amount"].tolist(), sending["currency"].tolist())
    return plan


def available_balance(client: ConektaClient) -> dict[str, int]:
    """Available amount per currency, in cents."""
    try:
        balance = client.get_balance()
    except ConektaError as error:
        if error.stops_batch:
            raise
        raise BatchError(TEXT.BALANCE_UNAVAILABLE, detail=str(error)) from error
    available: dict[str, int] = {}
    for entry in balance.get("available") or []:
        currency = str(entry.get("currency", "")).upper()
        available[currency] = available.get(currency, 0) + int(entry.get("amount") or 0)
    return available


def account_mode(client: ConektaClient) -> bool | None:
    """True for a LIVE account, False for TEST, read from its newest customer or payout order
    (two GETs at most, nothing created); None when the account has neither yet.

    A dry run (and the web review) uses it so the person about to confirm sees which money a run
    would move, before the first answer of a real run would tell."""
    for path in ("/customers", "/payout_orders"):
        try:
            page = client.request("GET", path, params={"limit": 1})
        except ConektaError as error:
            if error.stops_batch:
                raise
            return None
        for item in page.get("data") or []:
            if "livemode" in item:
                return bool(item["livemode"])
    return None


def check_balance(plan: Plan, available: dict[str, int]) -> None:
    for currency, needed in plan.totals.items():
        if needed > available.get(currency, 0):
            raise BatchError(
                TEXT.LOW_BALANCE, needed=money(needed), currency=currency, available=money(available.get(currency, 0))
            )


def set_aside_unfunded(
    validated: pd.DataFrame, problems: list[Problem], plan: Plan, available: dict[str, int], *,
    fresh: set[int], header: str, lang: str,
) -> Plan:
    """Mark invalid the rows in a currency the account has no balance in (a USD row when there are
    only pesos) instead of stopping the whole batch at the balance check; the plan without them.

    Only ``fresh`` rows (no ledger record: never sent) are set aside: a row that may already exist
    at Conekta is never labelled invalid.  When no currency of the plan has a balance, nothing is
    set aside and ``check_balance`` stops the batch as a whole, as before.  ``validated`` and
    ``problems`` are changed in place (the results sheet and the console read them)."""
    unfunded = {currency for currency in plan.totals if available.get(currency, 0) <= 0}
    if not unfunded or unfunded == set(plan.totals):
        return plan
    aside = [n for n in plan.to_send if n in fresh and validated.at[n, "currency"] in unfunded]
    if not aside:
        return plan
    # They were valid: no other code or message to keep beside this one.
    Validation(validated, problems).add([
        Problem(row=int(n), column=header, code=NO_BALANCE_CODE, value=str(validated.at[n, "currency"]), explained=NO_BALANCE)
        for n in aside
    ], lang)
    left = [n for n in plan.to_send if n not in set(aside)]
    sending = validated.loc[left]
    totals = totals_by_currency(sending["amount"].tolist(), sending["currency"].tolist())
    return Plan(to_send=left, already_done=plan.already_done, totals=totals)
