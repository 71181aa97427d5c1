"""Commands for what happens after the payout: events sync, reissue, notify.

Registered on the ``batch-payouts`` group when first asked for (``_LAZY_COMMANDS`` in
``cli/main.py``).  The work is in ``operations``; here: options, printing, exit codes.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

import click

from batch_payouts.cli.config import config_option
from batch_payouts.cli.console import _fail
from batch_payouts.cli.main import PesosType, lang_option, main, timezone_option
from batch_payouts.cli.ops import ledger_option, open_ledger
from batch_payouts.errors import BatchError
from batch_payouts.i18n import Plural, Text

M = {
    "synced": Text(
        es="Eventos de Conekta leídos: {read}; aplicados: {applied}; ya conocidos o sin cambio: {stale}; "
        "de órdenes que la bitácora no conoce: {unknown}",
        en="Conekta events read: {read}; applied: {applied}; already known or no change: {stale}; "
        "for orders the ledger does not know: {unknown}"),
    "event_line": Text(es="  fila {row} del lote {batch}: {previous} → {status}",
                       en="  row {row} of batch {batch}: {previous} → {status}"),
}


@main.group()
def events() -> None:
    """Conekta's events about payout orders (cashed, expired, cancelled)."""


@events.command("sync")
@click.option("--api-base", help="Conekta API address (also CONEKTA_API_BASE). Default https://api.conekta.io.")
@click.option("--sandbox/--no-sandbox", help="Read the events of the built-in emulator (no API key needed).")
@ledger_option
@lang_option
@timezone_option
@config_option
def events_sync(api_base, sandbox, ledger_path, lang) -> None:
    """Read GET /events since the last sync and apply them (for servers webhooks cannot reach).

    Same rules as the webhook: each event once, statuses only move forward, events of unknown
    orders recorded as such.

    Example: CONEKTA_API_KEY=key_... batch-payouts events sync
    """
    import os

    from batch_payouts import states
    from batch_payouts.jobs.endpoint import resolve_endpoint
    from batch_payouts.operations.events import sync_events
    from batch_payouts.payout.conekta import ClientConfig, ConektaClient

    try:
        with ExitStack() as stack:
            ledger = open_ledger(stack, ledger_path)
            api_key, base = resolve_endpoint(stack, sandbox=sandbox, api_base=api_base, ledger_path=ledger.path,
                                             environ=os.environ)
            client = stack.enter_context(ConektaClient(ClientConfig(api_key=api_key, api_base=base, lang=lang)))
            result = sync_events(ledger, client)
            rows = {(o.batch_id, o.row_key): ledger.row(o.batch_id, o.row_key)
                    for o in result.outcomes if o.outcome == "applied"}
    except BatchError as error:
        _fail(error, lang)
    for outcome in result.outcomes:
        row = rows.get((outcome.batch_id, outcome.row_key))
        if row is not None:
            click.echo(M["event_line"].format(lang, row=row.row_number, batch=outcome.batch_id[:12],
                                              previous=states.order_label(outcome.previous, lang) or "—",
                                              status=states.order_label(outcome.status, lang)))
    click.echo(M["synced"].format(lang, read=result.read, applied=result.count("applied"),
                                  stale=result.count("stale") + result.count("duplicate") + result.count("not_an_order"),
                                  unknown=result.count("unknown_order")))
    sys.exit(0)
