"""Commands that read the ledger's history: batches, show, report.

Registered on the ``batch-payouts`` group when first asked for (``_LAZY_COMMANDS`` in
``cli/main.py``).  They only read the ledger: no API key, no network.
"""

from __future__ import annotations

import dataclasses
import sys
from contextlib import ExitStack
from pathlib import Path

import click

from batch_payouts import ledger_address, states
from batch_payouts.cli.console import _fail
from batch_payouts.cli.main import main
from batch_payouts.cli.ops import ledger_command_options, open_batch, open_ledger, per_status_json, print_json
from batch_payouts.errors import BatchError
from batch_payouts.i18n import Text, catalogue, money as money_text
from batch_payouts.payout.records import BatchRecord
from batch_payouts.totals import format_totals
from batch_payouts.words import column_words
from batch_payouts.words import TEXT as WORDS_TEXT

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

BATCH_HEADERS = {
    "id": Text(es="lote", en="batch"), "when": Text(es="última ejecución", en="last run"),
    "file": Text(es="archivo", en="file"), "operator": Text(es="operador", en="operator"),
    "rows": Text(es="filas", en="rows"),
    # the count columns (created, unconfirmed, failed, pending, duplicate) take their words from `states`
    "total": Text(es="total creado", en="total created"), "mode": Text(es="modo", en="mode"),
    # money after the payout (states.money_stage): cashed, and still to be cashed
    "cashed": states.MONEY_LABELS[states.MONEY_CASHED], "outstanding": states.MONEY_LABELS[states.MONEY_OUTSTANDING],
}
BATCH_COUNTS = ("created", "unconfirmed", "failed", "pending", "duplicate")
SHOW_LABELS = {  # in the order `show` prints them
    **column_words("batch_id", "input_name", "input_sha256"),
    "operator": Text(es="Ejecutado por", en="Run by"),
    "host": Text(es="En el equipo", en="On host"),
    "first_run_at": Text(es="Primera ejecución", en="First run"),
    "last_run_at": Text(es="Última ejecución", en="Last run"),
    "runs": Text(es="Ejecuciones", en="Runs"),
    "api_base": Text(es="API", en="API"),
    "api_version": Text(es="Versión de la API", en="API version"),
    "mode": WORDS_TEXT.COLUMN_WORDS["mode"],
    "rows_total": Text(es="Filas en el archivo", en="Rows in the file"),
    "states": Text(es="Filas por estado", en="Rows per state"),
    "totals": states.TEXT.TOTAL_LABELS["created"],
    "order_status": Text(es="Último estado conocido de las órdenes", en="Latest known order status"),
    "cashed": Text(es="Cobrado", en="Cashed"),
    "outstanding": Text(es="Por cobrar", en="Outstanding (not cashed yet)"),
    "never_paid": states.TEXT.TOTAL_LABELS["never_paid"],
    "output_path": Text(es="Hoja de resultados", en="Results sheet"),
}

def _batch_json(batch: BatchRecord, ops) -> dict:
    """A batch as scripts read it: ids, file, who, when (ISO, Mexico City), mode, results sheet."""
    keep = ("batch_id", "input_name", "input_sha256", "operator", "host", "runs", "rows_total", "api_base",
            "api_version", "output_path")
    data = {key: getattr(batch, key) for key in keep}
    data.update(first_run_at=ops.time_text(batch.first_run_at), last_run_at=ops.time_text(batch.last_run_at),
                mode=ops.mode_text(batch.livemode) or None)
    return data


@main.command()
@ledger_command_options
def batches(ledger_path, lang, as_json) -> None:
    """List the batches the ledger knows, newest first: when, file, who, counts, total created.

    Example: batch-payouts batches
    """
    from batch_payouts import operations as ops
    try:
        with ExitStack() as stack:
            path = ledger_address.resolve(ledger_path)
            ledger = open_ledger(stack, path) if ledger_address.exists(path) else None
            known = ledger.batches() if ledger is not None else []
            money = ops.money_after_by_batch(ledger) if ledger is not None else {}
            path = ledger_address.display(path)  # what it prints: never a password
    except BatchError as error:
        _fail(error, lang)
    if not known:
        click.echo(TEXT.no_batches.format(lang, path=path))
        if as_json:
            print_json({"ledger": str(path), "batches": []})
        sys.exit(0)
    first = ("id", "when", "file", "operator", "rows")
    headers = {**{k: BATCH_HEADERS[k].format(lang) for k in first},
               **{k: states.GROUP_LABELS[k].format(lang, count=2) for k in BATCH_COUNTS},
               **{k: BATCH_HEADERS[k].format(lang) for k in ("total", "cashed", "outstanding", "mode")}}
    keys = list(headers)
    table = [list(headers.values())]
    for b in known:
        table.append([
            b.batch_id[:12], ops.time_text(b.last_run_at), b.input_name, b.operator, str(b.rows_total),
            *(str(getattr(b.counts, k)) for k in BATCH_COUNTS), format_totals(b.totals_created),
            *(format_totals(_money(money, b.batch_id, k)) for k in (states.MONEY_CASHED, states.MONEY_OUTSTANDING)),
            ops.mode_text(b.livemode) or "—",
        ])
    widths = [max(len(line[i]) for line in table) for i in range(len(keys))]
    numeric = {"rows", *BATCH_COUNTS, "total", "cashed", "outstanding"}
    for line in table:
        cells = [cell.rjust(w) if keys[i] in numeric else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths))]
        click.echo("  ".join(cells).rstrip())
    if any(b.counts.unconfirmed for b in known):
        click.echo(states.TEXT.UNCONFIRMED_EXPLAINED.format(lang))
    if as_json:
        # `unknown` repeats `unconfirmed` for scripts written before it; neither is ever part of `failed`
        counts = (*BATCH_COUNTS, "unknown")
        print_json({"ledger": str(path), "batches": [
            {**_batch_json(b, ops), **{key: b.counts.as_json()[key] for key in counts},
             "amount_created": b.amount_created, "totals_created": b.totals_created,
             "totals_cashed": _money(money, b.batch_id, states.MONEY_CASHED),
             "totals_outstanding": _money(money, b.batch_id, states.MONEY_OUTSTANDING)} for b in known]})


def _money(money: dict, batch_id: str, stage: str) -> dict[str, int]:
    return money.get(batch_id, {}).get(stage, {})


@main.command()
@click.argument("ref", metavar="BATCH_ID")
@ledger_command_options
def show(ref, ledger_path, lang, as_json) -> None:
    """Show one batch in detail: file and SHA-256, who ran it where, runs, API, counts, totals.

    BATCH_ID may be the id, 6+ characters of it, or the results sheet's path.

    Example: batch-payouts show 3f9a1c2b7d4e
    """
    from batch_payouts import operations as ops
    from batch_payouts.operations.live_rows import money_after, row_stages

    try:
        with ExitStack() as stack:
            ledger, batch = open_batch(stack, ledger_path, ref)
            by_state = ops.state_counts(ledger, batch.batch_id)
            grouped = ops.batch_counts(ledger, batch.batch_id)
            totals = ops.batch_totals(ledger, batch.batch_id)
            counts = ops.status_counts(ledger, batch.batch_id)
            rows = ledger.rows(batch.batch_id)
            money = money_after(rows)
            stages = row_stages(rows)
    except BatchError as error:
        _fail(error, lang)
    values = {
        **dataclasses.asdict(batch),
        "first_run_at": ops.time_text(batch.first_run_at),
        "last_run_at": ops.time_text(batch.last_run_at),
        "mode": ops.mode_text(batch.livemode) or "—",
        "states": _group_line(grouped, lang),
        "totals": format_totals(totals),
        "order_status": ", ".join(f"{states.order_label(status, lang, n)} {n}"
                                  for status, n in ((s, sum(v[0] for v in per.values())) for s, per in counts.items()))
                        or "—",
        **{stage: format_totals(money[stage]) for stage in money},
    }
    width = max(len(label.format(lang)) for label in SHOW_LABELS.values())
    for key, label in SHOW_LABELS.items():
        value = values.get(key)
        click.echo(f"{label.format(lang):<{width}}  {value if value not in (None, '') else '—'}")
    if grouped.unconfirmed:
        click.echo(states.TEXT.UNCONFIRMED_EXPLAINED.format(lang))
    if stages:
        click.echo(TEXT.ROWS_TITLE.format(lang))
        table = [[str(s.row.row_number), s.row.reference or "—", f"{money_text(s.row.amount)} {s.row.currency}",
                  _stage_text(s, lang, ops.time_text)] for s in stages]
        widths = [max(len(line[i]) for line in table) for i in range(3)]
        for line in table:
            click.echo("  " + "  ".join([line[0].rjust(widths[0]), line[1].ljust(widths[1]),
                                         line[2].rjust(widths[2]), line[3]]))
    if as_json:
        print_json({**_batch_json(batch, ops), "states": by_state, "counts": grouped.as_json(),
                    "totals_created": totals, "order_status": per_status_json(counts),
                    "totals_cashed": money[states.MONEY_CASHED], "totals_outstanding": money[states.MONEY_OUTSTANDING],
                    "totals_never_paid": money[states.MONEY_NEVER_PAID],
                    "rows": [s.as_json(ops.time_text) for s in stages]})


def _stage_text(stage, lang: str, time_text) -> str:
    """"cobrada el 2026-03-02T…", "reexpedida como 1234…", "pendiente de cobro · reexpedición de 9876…"."""
    row = stage.row
    if stage.stage == states.STAGE_CASHED and row.cashed_at:
        text = states.TEXT.CASHED_ON.format(lang, when=time_text(row.cashed_at))
    else:
        text = states.STAGE_LABELS[stage.stage].format(
            lang, reference=(stage.reissued_as.reference if stage.reissued_as else "") or "—")
    if stage.reissue_of is not None:
        text += " · " + states.TEXT.REISSUE_OF.format(lang, reference=stage.reissue_of.reference or "—")
    return text


def _group_line(counts, lang: str) -> str:
    """The nonzero groups of ``states.Counts`` in words, e.g. "creadas 12, <unconfirmed label> 1"."""
    parts = [f"{states.GROUP_LABELS[group].format(lang, count=n)} {n}"
             for group in states.GROUPS if (n := getattr(counts, group))]
    return ", ".join(parts) or "—"


@main.command("report")
@click.option("--since", required=True, help="First day (YYYY-MM-DD, in the --timezone zone), included.")
@click.option("--until", default=None, help="Last day, excluded (YYYY-MM-DD; default: now).")
@click.option("--output", "output_path", type=click.Path(path_type=Path),
              help="XLSX to write (default: payouts-<since>-<until>.xlsx in the current folder).")
@ledger_command_options
def report_command(since, until, output_path, ledger_path, lang, as_json) -> None:
    """One XLSX with every payout created in a period, across batches, with its latest known status.

    Run `status` first for fresh statuses.

    Example: batch-payouts report --since 2026-03-01 --until 2026-04-01
    """
    from batch_payouts import operations as ops

    try:
        first = ops.parse_day(since, "--since")
        last = ops.parse_day(until, "--until") if until else None
        with ExitStack() as stack:
            ledger = open_ledger(stack, ledger_path)
            target, frame = ops.payouts_report(ledger, first, last, output_path, lang=lang)
    except BatchError as error:
        _fail(error, lang)
    totals = ops.payouts_sheet.report_totals(frame)
    click.echo(TEXT.report_written.format(lang, path=target, count=totals.paid_count, totals=format_totals(totals.paid)))
    if totals.never_paid_count:
        click.echo(TEXT.report_never_paid.format(lang, count=totals.never_paid_count,
                                                 totals=format_totals(totals.never_paid)))
    if as_json:
        print_json({"path": str(target), "payouts": len(frame), "totals": totals.created, "since": since, "until": until,
                    "paid": {"payouts": totals.paid_count, "totals": totals.paid},
                    "never_paid": {"payouts": totals.never_paid_count, "totals": totals.never_paid}})
