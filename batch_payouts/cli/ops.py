"""Commands that talk to Conekta about a sent batch: status, cancel, reconcile.

Registered on the ``batch-payouts`` group when first asked for (``_LAZY_COMMANDS`` in
``cli/main.py``).  The work is in ``operations``; here: options, printing, exit codes
(``exit_codes``).  The ledger and ``--json`` helpers here are shared with ``cli/history.py``.
"""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import click

from batch_payouts.cli.console import _fail
from batch_payouts.cli.main import lang_option, main, timezone_option
from batch_payouts.cli.config import config_option
from batch_payouts.contracts import versioned
from batch_payouts.errors import BatchError
from batch_payouts import ledger_address, states
from batch_payouts.i18n import catalogue, money
from batch_payouts.ledger_address import LedgerParam
from batch_payouts.totals import format_totals, totals_by_currency

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

if TYPE_CHECKING:
    from batch_payouts import operations as ops
    from batch_payouts.payout.ledger import Ledger
    from batch_payouts.payout.records import BatchRecord

# ``operations`` (pandas, the Conekta client) and the ledger (sqlite3) are imported by the
# commands that use them, so registering these commands costs `batch-payouts validate` nothing.


ledger_option = click.option(
    "--ledger", "ledger_path", type=LedgerParam(),
    help="Ledger: a file, or postgresql://user@host:port/db (also BATCH_PAYOUTS_LEDGER; default: a file in the user data folder).",
)
connection_options = [
    click.option("--api-base", help="Conekta API address (also CONEKTA_API_BASE). Default https://api.conekta.io."),
    click.option("--api-version", default=None, help="Conekta API version (default: the one the batch ran with)."),
    click.option("--sandbox/--no-sandbox", help="Query the built-in emulator (a batch `run --sandbox` sent is queried there anyway, with no API key)."),
    click.option("--rate-limit", type=click.FloatRange(min=0.1), default=None,
                 help="At most this many requests per second (default: no limit)."),
]


json_option = click.option(
    "--json/--no-json", "as_json",
    help="Also print a machine-readable JSON object as the last line on stdout (for cron and scripts).",
)


def print_json(data: dict) -> None:
    """Every document carries ``schema_version``: its contract is schemas/<command>.schema.json."""
    click.echo(json.dumps(versioned(data), ensure_ascii=False, default=str))


def per_status_json(counts: dict[str, dict[str, list[int]]]) -> dict:
    """``ops.status_counts`` (status -> currency -> [count, cents]) as --json prints it."""
    return {status: {currency: {"count": n, "amount": cents} for currency, (n, cents) in per.items()}
            for status, per in counts.items()}


def option_stack(*options):
    """Several click options as one decorator, shown by --help in the order given: commands that
    take the same options take them from one place."""
    def apply(command):
        for option in reversed(options):
            command = option(command)
        return command
    return apply


with_connection = option_stack(*connection_options)
# What every command about the ledger's batches takes (here and in cli/history.py).
ledger_command_options = option_stack(ledger_option, lang_option, timezone_option, config_option, json_option)


def open_ledger(stack: ExitStack, ledger_path: Path | None) -> Ledger:
    from batch_payouts.payout.ledger import Ledger

    path = ledger_address.resolve(ledger_path)
    if not ledger_address.exists(path):
        raise BatchError(TEXT.NO_LEDGER, path=ledger_address.display(path))
    return stack.enter_context(Ledger(path))


def open_batch(stack: ExitStack, ledger_path: Path | None, ref: str) -> tuple[Ledger, BatchRecord]:
    """The ledger (closed with ``stack``) and the batch REF names in it: where every command about
    one batch starts."""
    from batch_payouts import operations as ops

    ledger = open_ledger(stack, ledger_path)
    return ledger, ops.find_batch(ledger, ref)


def _client(stack, batch, ledger, command, api_base, api_version, sandbox, rate_limit, lang, workers=8):
    """A Conekta client for the batch's own account (``operations.open_client``), closed with ``stack``;
    the arguments after ``command`` are the ``with_connection`` options."""
    from batch_payouts import operations as ops

    connection = ops.Connection(api_base=api_base, api_version=api_version, sandbox=sandbox, rate_limit=rate_limit,
                                workers=workers, lang=lang)
    return ops.open_client(stack, batch, ledger, connection, command=command)


def _status_lines(counts: dict[str, dict[str, list[int]]], lang: str) -> list[str]:
    lines = []
    for status, per_currency in counts.items():
        count = sum(v[0] for v in per_currency.values())
        label = states.order_label(status, lang, count)
        lines.append(f"  {count:>6}  {label:<32} {format_totals({currency: v[1] for currency, v in per_currency.items()})}")
    return lines


def _write_sheet(ledger, batch, ref, output_path, changed, lang) -> tuple[Path | None, str | None]:
    """The refreshed sheet, or why it could not be written: the ledger already holds the news."""
    from batch_payouts import operations as ops

    try:
        return ops.write_status_sheet(ledger, batch, ops.sheet_source(batch, ref), output_path, changed, lang), None
    except BatchError as error:
        return None, error.message(lang)


@main.command()
@click.argument("ref", metavar="RESULTS_OR_BATCH_ID", required=False)
@click.option("--all-open/--no-all-open",
              help="Instead of one batch: every order still open (pending) in every batch of the ledger, least "
                   "recently checked first (for a nightly cron; stopped, it continues where it left off).")
@with_connection
@click.option("--workers", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Orders fetched at the same time.")
@click.option("--output", "output_path", type=click.Path(path_type=Path),
              help="Write the refreshed sheet here (default: overwrite the batch's results sheet).")
@click.option("--notify/--no-notify",
              help="Afterwards, email the summary as `notify` does (SMTP settings: the config file's [notify] table); "
                   "a summary that cannot be sent is said on stderr and does not change the exit code.")
@ledger_command_options
def status(ref, all_open, api_base, api_version, sandbox, rate_limit, workers, output_path, notify, ledger_path, lang,
           as_json) -> None:
    """Fetch the current status of every payout order of a batch (cashed? expired?).

    Updates the ledger and the results sheet (columns order_status, status_checked_at,
    status_change; changed rows highlighted) and prints counts and amounts per status.
    Exit 1 if some orders could not be fetched.

    Example: batch-payouts status pagos.results.xlsx
    """
    from batch_payouts import operations as ops

    if all_open or not ref:
        if not all_open or ref or output_path:
            raise click.UsageError("Give RESULTS_OR_BATCH_ID, or --all-open alone (no batch, no --output).")
        _status_all_open(api_base, api_version, sandbox, rate_limit, workers, ledger_path, lang, as_json, notify)
    try:
        with ExitStack() as stack:
            ops.check_output(output_path)
            ledger, batch = open_batch(stack, ledger_path, ref)
            short = batch.batch_id[:12]
            rows = ops.created_rows(ledger, batch.batch_id)
            results: list[ops.RowStatus] = []
            if rows:
                client = _client(stack, batch, ledger, "status", api_base, api_version, sandbox, rate_limit, lang,
                                 workers)
                results = ops.refresh_status(ledger, client, batch, workers=workers)
            else:
                click.echo(TEXT.none_created.format(lang, batch=short))
            changed = [r.row.row_key for r in results if r.changed]
            sheet, sheet_error = _write_sheet(ledger, batch, ref, output_path, changed, lang)
            counts = ops.status_counts(ledger, batch.batch_id)
    except BatchError as error:
        _fail(error, lang)
    failed = [r for r in results if r.error is not None]
    if rows:
        click.echo(TEXT.status_title.format(lang, batch=short, count=len(results), when=ops.time_text(ops.now())))
        for line in _status_lines(counts, lang):
            click.echo(line)
        click.echo(TEXT.changed.format(lang, count=len(changed)))
    if failed:
        click.echo(TEXT.fetch_failed.format(lang, count=len(failed)))
        for r in failed:
            click.echo(TEXT.row_error.format(lang, row=r.row.row_number, order=r.row.payout_order_id, error=r.error))
    _sheet_line(sheet, sheet_error, lang)
    code = 1 if failed or sheet_error else 0
    if notify:
        _notify(ledger.path, lang)
    if as_json:
        print_json({
            "batch_id": batch.batch_id, "exit_code": code, "checked": len(results), "changed": len(changed),
            "statuses": per_status_json(counts),
            "not_fetched": [{"row": r.row.row_number, "payout_order_id": r.row.payout_order_id, "error": str(r.error)}
                            for r in failed],
            "sheet": str(sheet) if sheet else None,
        })
    sys.exit(code)


def _notify(ledger_path: Path | None, lang: str) -> None:
    from batch_payouts.cli.after import notify_after

    notify_after(ledger_path, lang)


def _status_all_open(api_base, api_version, sandbox, rate_limit, workers, ledger_path, lang, as_json,
                     notify=False) -> None:
    """``status --all-open``: every order not cashed, expired or cancelled yet, across batches, each batch
    with its own key and sheet; one batch that cannot be asked (another key) is reported, the rest go on."""
    from batch_payouts import operations as ops

    checked, changed, problems = 0, 0, []
    documents: list[dict] = []  # one per batch asked, for --json
    not_checked: list[dict] = []  # batches that could not be asked at all (another key, refused)
    try:
        with ExitStack() as stack:
            ledger = open_ledger(stack, ledger_path)
            for batch, rows in ops.open_rows_by_batch(ledger):
                try:
                    with ExitStack() as batch_stack:
                        client = _client(batch_stack, batch, ledger, "status --all-open", api_base, api_version,
                                         sandbox, rate_limit, lang, workers)
                        results = ops.refresh_status(ledger, client, batch, workers=workers, rows=rows)
                        moved = [r.row.row_key for r in results if r.changed]
                        sheet, sheet_error = _write_sheet(ledger, batch, batch.output_path or "", None, moved, lang)
                except BatchError as error:
                    problems.append(TEXT.all_open_batch_failed.format(lang, batch=batch.batch_id[:12],
                                                                      error=error.message(lang)))
                    not_checked.append({"batch_id": batch.batch_id, "error": error.message(lang)})
                    continue
                checked += len(results)
                changed += len(moved)
                failed = [r for r in results if r.error is not None]
                problems += [TEXT.row_error.format(lang, row=r.row.row_number, order=r.row.payout_order_id,
                                                   error=r.error) for r in failed]
                if sheet_error:
                    problems.append(sheet_error)
                click.echo(TEXT.all_open_batch.format(lang, batch=batch.batch_id[:12], count=len(results),
                                                      changed=len(moved)))
                documents.append({
                    "batch_id": batch.batch_id, "checked": len(results), "changed": len(moved),
                    "statuses": per_status_json(ops.status_counts(ledger, batch.batch_id)),
                    "not_fetched": [{"row": r.row.row_number, "payout_order_id": r.row.payout_order_id,
                                     "error": str(r.error)} for r in failed],
                    "sheet": str(sheet) if sheet else None,
                })
    except BatchError as error:
        _fail(error, lang)
    click.echo(TEXT.all_open_done.format(lang, count=checked, changed=changed))
    for line in problems:
        click.echo(line)
    code = 1 if problems else 0
    if notify:
        _notify(ledger_path, lang)
    if as_json:  # status.schema.json's --all-open variant: no batch_id at the top, one entry per batch
        print_json({"all_open": True, "exit_code": code, "checked": checked, "changed": changed,
                    "batches": documents, "not_checked": not_checked})
    sys.exit(code)


def _sheet_line(sheet: Path | None, error: str | None, lang: str) -> None:
    if error:
        click.echo(error, err=True)
    else:
        click.echo(TEXT.sheet.format(lang, path=sheet) if sheet else TEXT.no_sheet.format(lang))


@main.command()
@click.argument("ref", metavar="RESULTS_OR_BATCH_ID")
@click.option("--rows", "rows_spec", help="Spreadsheet row numbers to cancel, e.g. 4,7-9.")
@click.option("--external-id", "external_ids", multiple=True, help="Folio (external_id) of a row to cancel; repeatable.")
@click.option("--all-pending/--no-all-pending", help="Every order whose last known status is pending or open.")
@click.option("--yes/--no-yes", help="Do not ask for confirmation (required when not on a terminal).")
@with_connection
@click.option("--output", "output_path", type=click.Path(path_type=Path),
              help="Write the updated sheet here (default: overwrite the batch's results sheet).")
@ledger_command_options
def cancel(ref, rows_spec, external_ids, all_pending, yes, api_base, api_version, sandbox, rate_limit, output_path,
           ledger_path, lang, as_json) -> None:
    """Cancel payout orders of a batch: their references can no longer be cashed.

    Shows what will be cancelled and asks for confirmation (on a terminal; --yes otherwise).
    Rows already cashed, cancelled or expired are reported, not errors. Exit 1 if Conekta
    refused some cancellation.

    Example: batch-payouts cancel pagos.results.xlsx --rows 4,7-9
    """
    from batch_payouts import operations as ops

    try:
        with ExitStack() as stack:
            ops.check_output(output_path)
            ledger, batch = open_batch(stack, ledger_path, ref)
            short = batch.batch_id[:12]
            chosen = ops.select_rows(ledger, batch, rows=rows_spec, external_ids=external_ids, all_pending=all_pending,
                                     lang=lang)
            if not chosen:
                click.echo(TEXT.nothing_to_cancel.format(lang, batch=short))
                if as_json:
                    print_json(_cancel_json(batch, 0, []))
                sys.exit(0)
            client = _client(stack, batch, ledger, "cancel", api_base, api_version, sandbox, rate_limit, lang)
            totals = totals_by_currency((row.amount for row in chosen), (row.currency for row in chosen))
            click.echo(TEXT.to_cancel.format(lang, count=len(chosen), batch=short, total=format_totals(totals)))
            for row in chosen:
                click.echo(TEXT.cancel_line.format(
                    lang, row=row.row_number, email=row.email, amount=money(row.amount), currency=row.currency,
                    reference=row.reference, status=row.order_status or "?"))
                if row.reissue_of:
                    original = next((r for r in ledger.rows(batch.batch_id) if r.row_key == row.reissue_of), None)
                    click.echo(TEXT.live_reissue.format(lang, row=row.row_number, reference=row.reference,
                                                        original=(original.reference if original else "") or "—"))
            if not yes:
                if not sys.stdin.isatty():
                    raise BatchError(TEXT.NEED_YES, count=len(chosen))
                if not click.confirm(TEXT.confirm.format(lang, count=len(chosen)), default=False):
                    click.echo(TEXT.declined.format(lang))
                    if as_json:
                        print_json({**_cancel_json(batch, 1, []), "declined": True})
                    sys.exit(1)
            outcomes = ops.cancel_rows(ledger, client, batch, chosen)
            changed = [o.row.row_key for o in outcomes if o.result == "cancelled" or o.status != o.row.order_status]
            sheet, sheet_error = _write_sheet(ledger, batch, ref, output_path, changed, lang)
    except BatchError as error:
        _fail(error, lang)
    cancelled = [o.row for o in outcomes if o.result == "cancelled"]
    done = totals_by_currency((row.amount for row in cancelled), (row.currency for row in cancelled))
    for o in outcomes:
        if o.result == "cancelled":
            click.echo(TEXT.cancelled.format(lang, row=o.row.row_number, reference=o.row.reference))
        elif o.result == "already":
            click.echo(TEXT.already.format(lang, row=o.row.row_number, status=states.order_label(o.status, lang)))
        else:
            click.echo(TEXT.cancel_failed.format(lang, row=o.row.row_number, error=o.error))
    count = {kind: sum(1 for o in outcomes if o.result == kind) for kind in ("cancelled", "already", "failed")}
    click.echo(TEXT.cancel_summary.format(lang, amount=format_totals(done), **count))
    _sheet_line(sheet, sheet_error, lang)
    code = 1 if count["failed"] or sheet_error else 0
    if as_json:
        print_json(_cancel_json(batch, code, outcomes, done, sheet))
    sys.exit(code)


def _cancel_json(batch: dict, code: int, outcomes: list, cancelled: dict[str, int] | None = None,
                 sheet: Path | None = None) -> dict:
    """What `cancel --json` prints: each chosen row's outcome, and the money (``cancelled``,
    cents per currency) that can no longer be cashed."""
    def row(o) -> dict:
        return {"row": o.row.row_number, "payout_order_id": o.row.payout_order_id, "reference": o.row.reference,
                "amount": o.row.amount, "currency": o.row.currency, "status": o.status,
                **({"error": str(o.error)} if o.result == "failed" else {})}

    return {
        "batch_id": batch.batch_id, "exit_code": code,
        **{kind: [row(o) for o in outcomes if o.result == kind] for kind in ("cancelled", "already", "failed")},
        "amount_cancelled": cancelled or {}, "sheet": str(sheet) if sheet else None,
    }


@main.command()
@click.argument("ref", metavar="BATCH_ID")
@with_connection
@ledger_command_options
def reconcile(ref, api_base, api_version, sandbox, rate_limit, ledger_path, lang, as_json) -> None:
    """Compare the payout orders Conekta holds for a batch with the ledger; exit 1 if they differ.

    Reports orphans (orders at Conekta the ledger does not have as created), ledger rows whose
    order is missing at Conekta, and different amounts, currencies or references.

    Example: batch-payouts reconcile 3f9a1c2b7d4e
    """
    from batch_payouts import operations as ops

    try:
        with ExitStack() as stack:
            ledger, batch = open_batch(stack, ledger_path, ref)
            client = _client(stack, batch, ledger, "reconcile", api_base, api_version, sandbox, rate_limit, lang)
            result = ops.reconcile(ledger, client, batch)
    except BatchError as error:
        _fail(error, lang)
    click.echo(TEXT.rec_title.format(lang, batch=batch.batch_id[:12], conekta=result.at_conekta,
                                     ledger=result.in_ledger, agreed=result.agreed))
    if result.orphans:
        click.echo(TEXT.orphans.format(lang, count=len(result.orphans)))
        for order, row in result.orphans:
            known = (TEXT.orphan_known.format(lang, row=row.row_number, state=states.label(row.state, lang))
                     if row is not None else "")
            click.echo(TEXT.orphan.format(
                lang, order=order.get("id"), amount=money(int(order.get("amount") or 0)), currency=order.get("currency"),
                reference=order.get("reference"), status=order.get("status"),
                row_key=(order.get("metadata") or {}).get("row_key", "—"), known=known))
    if result.missing:
        click.echo(TEXT.missing.format(lang, count=len(result.missing)))
        for row in result.missing:
            click.echo(TEXT.missing_line.format(lang, row=row.row_number, order=row.payout_order_id,
                                                amount=money(row.amount), currency=row.currency,
                                                reference=row.reference))
    if result.mismatched:
        click.echo(TEXT.mismatched.format(lang, count=len(result.mismatched)))
        for m in result.mismatched:
            click.echo(TEXT.mismatch_line.format(lang, row=m.row.row_number, order=m.order_id, field=m.field,
                                                 mine=m.ledger_value, theirs=m.conekta_value))
    if result.exit_code == 0:
        click.echo(TEXT.rec_ok.format(lang))
    if as_json:
        print_json({
            "batch_id": batch.batch_id, "exit_code": result.exit_code, "at_conekta": result.at_conekta,
            "in_ledger": result.in_ledger, "agreed": result.agreed,
            "orphans": [{"payout_order_id": order.get("id"), "amount": order.get("amount"),
                         "currency": order.get("currency"), "reference": order.get("reference"),
                         "row_key": (order.get("metadata") or {}).get("row_key")} for order, _row in result.orphans],
            "missing": [{"row": row.row_number, "payout_order_id": row.payout_order_id} for row in result.missing],
            "mismatched": [{"row": m.row.row_number, "payout_order_id": m.order_id, "field": m.field,
                            "ledger": m.ledger_value, "conekta": m.conekta_value} for m in result.mismatched],
        })
    sys.exit(result.exit_code)
