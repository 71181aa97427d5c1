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
from batch_payouts.i18n import catalogue

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


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
            click.echo(TEXT.event_line.format(lang, row=row.row_number, batch=outcome.batch_id[:12],
                                              previous=states.order_label(outcome.previous, lang) or "—",
                                              status=states.order_label(outcome.status, lang)))
    click.echo(TEXT.synced.format(lang, read=result.read, applied=result.count("applied"),
                                  stale=result.count("stale") + result.count("duplicate") + result.count("not_an_order"),
                                  unknown=result.count("unknown_order")))
    sys.exit(0)


@main.command()
@click.argument("ref", metavar="BATCH_OR_RESULTS")
@click.option("--expired/--no-expired", help="Pay again every expired reference that was never cashed (required).")
@click.option("--include-cancelled/--no-include-cancelled",
              help="Also pay again the references that were cancelled (refused without it).")
@click.option("--api-base", help="Conekta API address (also CONEKTA_API_BASE). Default https://api.conekta.io.")
@click.option("--api-version", default=None, help="Conekta API version (default: the one the batch ran with).")
@click.option("--sandbox/--no-sandbox", help="Use the built-in emulator (a batch `run --sandbox` sent is used there anyway).")
@click.option("--expires-in", default="48h", show_default=True, help="How long each new reference can be withdrawn (48, 36h, 2d).")
@click.option("--max-total", type=PesosType(), default=None,
              help="Refuse, before any request, if the references to pay again add up to more (per currency).")
@click.option("--live/--no-live", help="Allow a LIVE key (real money); without it a live batch is refused.")
@click.option("--skip-balance-check/--no-skip-balance-check", help="Do not stop when the Conekta balance is too low.")
@click.option("--output", "output_path", type=click.Path(path_type=Path),
              help="Write the updated sheet here (default: overwrite the batch's results sheet).")
@ledger_option
@lang_option
@timezone_option
@config_option
def reissue(ref, expired, include_cancelled, api_base, api_version, sandbox, expires_in, max_total, live,
            skip_balance_check, output_path, ledger_path, lang) -> None:
    """Pay again, with a new payout order, every expired reference of a batch that was never cashed.

    Exactly once: a second call reissues nothing. Run `status` (or `events sync`) first so the
    ledger knows which references expired. Same guards as `run` (balance, --max-total, --live).

    Example: batch-payouts reissue pagos.results.xlsx --expired
    """
    from batch_payouts import operations as ops
    from batch_payouts import states
    from batch_payouts.cli.main import parse_expires_in
    from batch_payouts.cli.ops import _write_sheet, _sheet_line, open_batch
    from batch_payouts.operations.access import open_audited_client
    from batch_payouts.operations.reissue import check_guards, reissue_rows, require_approval, to_reissue
    from batch_payouts.payout.ledger import operator_name
    from batch_payouts.totals import format_totals, totals_by_currency

    if not expired:
        raise click.UsageError("--expired is required: reissue pays again only expired references.")
    try:
        with ExitStack() as stack:
            ops.check_output(output_path)
            seconds = parse_expires_in(expires_in)
            ledger, batch = open_batch(stack, ledger_path, ref)
            rows = to_reissue(ledger, batch.batch_id, include_cancelled)
            if not rows:
                click.echo(TEXT.nothing.format(lang, batch=batch.batch_id[:12]))
                sys.exit(0)
            require_approval(ledger, batch, rows, operator=operator_name())  # four eyes, under a policy
            connection = ops.Connection(api_base=api_base, api_version=api_version, sandbox=sandbox, lang=lang)
            client, audit = open_audited_client(stack, batch, ledger, connection, command="reissue")
            check_guards(client, batch, rows, live=live, max_total=max_total, skip_balance_check=skip_balance_check)
            outcomes = reissue_rows(ledger, client, batch, rows, lang=lang, live=live, expires_in=seconds, audit=audit)
            sheet, sheet_error = _write_sheet(ledger, batch, ref, output_path,
                                              [o.original.row_key for o in outcomes], lang)
    except BatchError as error:
        _fail(error, lang)
    done = [o for o in outcomes if o.status == "created"]
    for o in outcomes:
        if o.status == "created":
            click.echo(TEXT.reissued.format(lang, row=o.original.row_number, old=o.original.reference,
                                            status=states.order_label(o.original.order_status, lang),
                                            new=o.row.reference if o.row else ""))
        else:
            click.echo(TEXT.reissue_failed.format(lang, row=o.original.row_number, label=states.label(o.status, lang),
                                                  error=(o.row.error_message if o.row else "") or ""))
    total = totals_by_currency((o.original.amount for o in done), (o.original.currency for o in done))
    click.echo(TEXT.reissue_summary.format(lang, count=len(done), total=format_totals(total)))
    _sheet_line(sheet, sheet_error, lang)
    sys.exit(0 if len(done) == len(outcomes) and not sheet_error else 1)


@main.command()
@click.option("--smtp-host", help="SMTP server (config file: smtp-host in [notify]).")
@click.option("--smtp-port", type=int, default=587, show_default=True, help="SMTP port.")
@click.option("--starttls/--no-starttls", default=True, show_default=True, help="Upgrade the connection with STARTTLS.")
@click.option("--smtp-user", help="SMTP user; the password only from BATCH_PAYOUTS_SMTP_PASSWORD.")
@click.option("--from", "mail_from", default="batch-payouts@localhost", show_default=True, help="Sender address.")
@click.option("--to", "mail_to", help="Recipients, separated by commas (config file: to = \"a@x.mx, b@x.mx\").")
@ledger_option
@lang_option
@timezone_option
@config_option
def notify(smtp_host, smtp_port, starttls, smtp_user, mail_from, mail_to, ledger_path, lang) -> None:
    """Email finance a summary since the last one: batches run, cashed, expired, money outstanding.

    The results sheet of every batch run in the period is attached.

    Example: batch-payouts notify --config /etc/batch-payouts/nightly.toml
    """
    from batch_payouts.operations.summary import SmtpSettings, send_summary
    from batch_payouts.totals import format_totals

    recipients = [a.strip() for a in (mail_to or "").split(",") if a.strip()]
    try:
        with ExitStack() as stack:
            ledger = open_ledger(stack, ledger_path)
            summary = send_summary(ledger, SmtpSettings(host=smtp_host or "", port=smtp_port, starttls=starttls,
                                                        user=smtp_user, sender=mail_from, recipients=recipients),
                                   lang)
    except BatchError as error:
        _fail(error, lang)
    click.echo(TEXT.notified.format(lang, to=", ".join(recipients), batches=len(summary.batches),
                                    cashed=summary.cashed_count, expired=summary.expired_count,
                                    outstanding=format_totals(summary.outstanding)))
    sys.exit(0)


def notify_after(ledger_path: Path | None, lang: str) -> bool:
    """``run --notify`` / ``status --notify``: send ``notify``'s summary with ``notify``'s own settings
    (its option defaults, then the config file's top level and ``[notify]`` table).  Says what happened
    on stderr, so a ``--json`` document stays the last line on stdout; True when it was sent."""
    from batch_payouts.cli.config import table_for
    from batch_payouts.operations.summary import SmtpSettings, send_summary
    from batch_payouts.totals import format_totals

    ctx = click.get_current_context()
    values = {p.name: p.default for p in notify.params  # notify's own defaults (those that have one)
              if isinstance(p, click.Option) and isinstance(p.default, (str, int, bool))}
    recipients: list[str] = []
    try:
        values.update(table_for(ctx, notify))
        recipients = [a.strip() for a in str(values.get("mail_to") or "").split(",") if a.strip()]
        smtp = SmtpSettings(host=str(values.get("smtp_host") or ""), port=int(values["smtp_port"]),
                            starttls=bool(values["starttls"]), user=values.get("smtp_user"),
                            sender=str(values["mail_from"]), recipients=recipients)
        with ExitStack() as stack:
            summary = send_summary(open_ledger(stack, ledger_path), smtp, lang)
    except BatchError as error:
        click.echo(TEXT.notify_failed.format(lang, error=error.message(lang)), err=True)
        return False
    click.echo(TEXT.notified.format(lang, to=", ".join(recipients), batches=len(summary.batches),
                                    cashed=summary.cashed_count, expired=summary.expired_count,
                                    outstanding=format_totals(summary.outstanding)), err=True)
    return True
