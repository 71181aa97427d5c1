"""`batch-payouts ledger copy --from OLD --to NEW [--merge]`: move a ledger's history, e.g. a
SQLite file into the PostgreSQL database a team will share (README "Para equipos / For teams").

Registered on the ``batch-payouts`` group by importing this module (``_LAZY_COMMANDS`` in
cli/main.py).  The work is in ``batch_payouts.payout.ledger_copy``.
"""

from __future__ import annotations

from contextlib import ExitStack

import click

from batch_payouts import ledger_address
from batch_payouts.cli.console import _fail
from batch_payouts.cli.main import lang_option, main
from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue
from batch_payouts.ledger_address import LedgerParam

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


@main.group("ledger")
def ledger_group() -> None:
    """Manage the ledger itself: copy its history to another ledger (e.g. to PostgreSQL)."""


@ledger_group.command("copy")
@click.option("--from", "source", type=LedgerParam(), required=True,
              help="The ledger to copy: a file, sqlite:///path or postgresql://... (left unchanged).")
@click.option("--to", "target", type=LedgerParam(), required=True,
              help="The ledger to copy into (created or upgraded as needed).")
@click.option("--merge/--no-merge", help="Add to a target that already has batches (records already there are kept).")
@lang_option
def copy(source, target, merge, lang) -> None:
    """Copy batches, rows, intents, customers and audit heads into another ledger, then check the counts.

    Example: batch-payouts ledger copy --from sqlite:///var/lib/batch-payouts/ledger.sqlite --to postgresql://pagos@db/batch_payouts
    """
    from batch_payouts.payout.ledger import Ledger
    from batch_payouts.payout.ledger_copy import copy_ledger

    try:
        if not ledger_address.exists(source):
            raise BatchError(TEXT.NO_SOURCE, path=ledger_address.display(source))
        with ExitStack() as stack:
            old = stack.enter_context(Ledger(source))
            new = stack.enter_context(Ledger(target))
            copied = copy_ledger(old, new, merge=merge)
    except BatchError as error:
        _fail(error, lang)
    for line in copied:
        click.echo(TEXT.COPIED.format(lang, table=line.table, source=line.source, target=line.target))
    click.echo(TEXT.DONE.format(lang, source=ledger_address.display(source), target=ledger_address.display(target)))
