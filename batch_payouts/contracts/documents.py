"""The ``--json`` documents: ``run``, ``validate``, ``status``, ``cancel``, ``reconcile``, ``batches``,
``show`` and ``report``, one JSON Schema each.

Why here and not beside each command: a reader needs one place that says what every key means,
and the closed vocabularies (result statuses, row states, order statuses) come from
``batch_payouts.states`` so a new status cannot appear in the output without appearing here.
Each document is the last line on stdout; a command that cannot run (exit 2, or 75: another run
holds the batch) prints none, except ``run``/``validate --json``, which print
``{"schema_version", "exit_code", "error"}``.  Exit codes are ``batch_payouts.exit_codes``.
"""

from __future__ import annotations

from batch_payouts import exit_codes as codes, states
from batch_payouts.contracts import parts as p

EXIT_CODES = {"run": [codes.OK, codes.ATTENTION, codes.CANNOT_RUN, codes.INTERRUPTED],
              "validate": [codes.OK, codes.ATTENTION]}
VALIDATE_STATUSES = (states.VALID, states.INVALID)
UNCONFIRMED_NOTE = "may already exist at Conekta (sent, no clear answer): never part of a failure count; run the " \
    "same file again to resolve them, never pay them by hand."
GROUP_NOTES = {  # the groups of states.Counts, as --json prints them (Counts.as_json)
    states.CREATED: "Rows whose payout order exists.",
    states.UNCONFIRMED: "Rows that " + UNCONFIRMED_NOTE,
    states.FAILED: "Rows Conekta refused (nothing was created).",
    states.PENDING: "Rows not sent yet (the batch stopped, or Conekta was unavailable): a rerun sends them.",
    states.DUPLICATE: "Rows not paid again: identical to a payout of another batch.",
    states.INVALID: "Rows that break a rule of the file.",
    states.VALID: "Rows that would be sent (validate, --dry-run).",
    states.UNKNOWN: "The same number as unconfirmed, for scripts written before it.",
}


def _exit_code(values: list[int], meaning: str) -> dict:
    return {"type": "integer", "enum": values, "description": meaning}


def _error_document() -> dict:
    return p.record({
        "schema_version": p.version_property(),
        "exit_code": _exit_code([codes.CANNOT_RUN, codes.TRY_LATER],
                                f"{codes.CANNOT_RUN}: the batch could not run at all (fix what `error` names); "
                                f"{codes.TRY_LATER}: try later, another run holds the batch or the ledger."),
        "error": p.described(p.TEXT, "What stopped it and what to do, in the language asked for (--lang)."),
    }, description="The batch could not run (a missing column, a refused key...): nothing was sent.")


def summary_record(command: str, *, versioned: bool = True) -> dict:
    """``report.result_json``: the same keys for ``run`` and ``validate`` (validate has no batch).
    ``versioned=False``: as the ``summary`` line of ``--log-json`` carries it (no ``schema_version``)."""
    run = command == "run"
    statuses = states.RESULT_STATUSES if run else VALIDATE_STATUSES  # a --dry-run counts valid rows too
    properties = {
        "schema_version": p.version_property(),
        "batch_id": p.described(p.TEXT, "The batch (SHA-256 of the normalised rows and the key's fingerprint, "
                                "or --batch-id).") if run else {"type": "null"},
        "exit_code": _exit_code(EXIT_CODES[command], "0 every row created (validate: valid); 1 some rows not; "
                                "2 the batch stopped; 130 interrupted."),
        "mode": p.MODE if run else {"type": "null"},
        "counts": p.keyed(p.enum(statuses), p.COUNT,
                          "Rows per result status (the results sheet's status column); statuses with no rows are "
                          "left out. `unknown` rows may exist at Conekta: never treat them as failed."),
        "unconfirmed": p.described(p.COUNT, "Rows that " + UNCONFIRMED_NOTE),
        "not_sent": p.described(p.COUNT, "Of counts.failed, the rows never sent because the batch stopped "
                                "(error_code not_sent): nothing was refused; the stop's message says how to send "
                                "them (usually: run the same file again; with a LIVE key: run again with --live)."),
        "amount_created": p.described(p.CENTS, "Cents created in this batch, all currencies added: "
                                      "read totals_created for money."),
        "totals_created": p.money_by_currency("Cents created per currency."),
        "output": p.described(p.PATH, "The results sheet."),
        "audit": p.nullable(p.described(p.PATH, "The audit log (null for a dry run or validate).")),
        "ledger": p.nullable(p.described(p.PATH, "The ledger file (null for validate).")),
        "input": p.record({"name": p.described(p.TEXT, "The input file's name as the user gave it."),
                           "sha256": p.described(p.SHA256, "SHA-256 of the input file's bytes.")}),
        "dry_run": {"type": "boolean"} if run else {"const": False},
        "plan": p.record({
            "rows_to_send": p.described(p.COUNT, "Rows a real run would send now."),
            "already_done": p.described(p.COUNT, "Rows settled by an earlier run of this batch."),
            "totals": p.money_by_currency("Cents a real run would send, per currency."),
        }, description="Run only: what is still to send (always present for a run)."),
        "balance_available": p.money_by_currency("Conekta's available balance per currency, when it was checked."),
    }
    optional = ["plan", "balance_available"]
    if not versioned:
        properties.pop("schema_version")
    if not run:
        for key in ("plan", "balance_available"):
            properties.pop(key)
    return p.record(properties, optional=optional, description="The batch's summary.")


def summary_document(command: str) -> dict:
    title = {"run": "batch-payouts run --json", "validate": "batch-payouts validate --json"}[command]
    return p.document(command, title,
                      f"The last line `{command} --json` prints on stdout (the human summary goes to stderr): "
                      "either the summary, or the error that stopped the batch.",
                      {"oneOf": [summary_record(command), _error_document()]})


def _per_status() -> dict:
    """``{"pending": {"MXN": {"count": 2, "amount": 20300}}}``: orders per Conekta status and currency."""
    cell = p.record({"count": p.COUNT, "amount": p.CENTS})
    return p.keyed(
        p.described(p.TEXT, f"Conekta's status of the order ({', '.join(states.ORDER_STATUSES)}, or any other it "
                    "sends, shown as is); `unknown` for a created row never checked."),
        p.keyed(p.CURRENCY, cell),
        "Orders per latest known status, then per currency: count and cents.",
    )


def _ops_document(name: str, title: str, description: str, properties: dict, optional=()) -> dict:
    body = p.record({"schema_version": p.version_property(), **properties}, optional=optional)
    return p.document(name, title, description + " Printed as the last line on stdout; a command that "
                      "cannot run (exit 2) prints no document.", body)


def _row_ref(**more: dict) -> dict:
    return {"row": p.described(p.COUNT, "The spreadsheet row number (header = 1)."),
            "payout_order_id": p.nullable(p.TEXT), **more}


def _status_fields() -> dict:
    failed = p.record(_row_ref(error=p.described(p.TEXT, "Why it could not be fetched; run status again.")))
    return {
        "batch_id": p.TEXT,
        "checked": p.described(p.COUNT, "Orders fetched now."),
        "changed": p.described(p.COUNT, "Orders whose status changed since the last check."),
        "statuses": _per_status(),
        "not_fetched": {"type": "array", "items": failed},
        "sheet": p.nullable(p.described(p.PATH, "The rewritten results sheet (null: not found or not written).")),
    }


def status_document() -> dict:
    """One batch (``status BATCH --json``) or, with ``--all-open``, every batch that had open orders."""
    exit_code = _exit_code([0, 1], "1: some orders (or a whole batch) could not be fetched, or a sheet not written.")
    fields = _status_fields()
    one = p.record({"schema_version": p.version_property(), "batch_id": fields.pop("batch_id"), "exit_code": exit_code,
                    **fields},
                   description="`status BATCH --json`: one batch.")
    batch = p.record(_status_fields(), description="One batch with open orders, as `status BATCH` reports it; "
                     "statuses: every created order of the batch, not only those asked now.")
    not_checked = p.record({"batch_id": p.TEXT, "error": p.described(p.TEXT, "Why the batch could not be asked "
                                                                       "(another key, a refused key).")})
    every = p.record({
        "schema_version": p.version_property(),
        "all_open": {"const": True, "description": "Present only in this variant: `status --all-open --json`."},
        "exit_code": exit_code,
        "checked": p.described(p.COUNT, "Orders fetched now, in every batch."),
        "changed": p.described(p.COUNT, "Of those, orders whose status changed."),
        "batches": {"type": "array", "items": batch, "description": "The batches asked, in the order asked."},
        "not_checked": {"type": "array", "items": not_checked},
    }, description="`status --all-open --json`: every order still open, across batches (no batch_id at the top).")
    return p.document("status", "batch-payouts status --json",
                      "The refreshed status of payout orders: of one batch, or with --all-open of every batch with "
                      "open orders. Printed as the last line on stdout; a command that cannot run (exit 2) prints "
                      "no document.", {"oneOf": [one, every]})


def cancel_document() -> dict:
    row = p.record(_row_ref(
        reference=p.nullable(p.described(p.TEXT, "The reference that can no longer be cashed.")),
        amount=p.CENTS, currency=p.CURRENCY,
        status=p.nullable(p.described(p.TEXT, "The order's status at Conekta after the attempt.")),
        error=p.described(p.TEXT, "Only in `failed`: Conekta's refusal."),
    ), optional=["error"])
    rows = {"type": "array", "items": row}
    return _ops_document("cancel", "batch-payouts cancel --json", "Which chosen orders were cancelled.", {
        "batch_id": p.TEXT,
        "exit_code": _exit_code([0, 1], "1: Conekta refused some cancellation, or the confirmation was declined."),
        "cancelled": rows, "already": p.described(rows, "Already cashed, cancelled or expired: not an error."),
        "failed": rows,
        "amount_cancelled": p.money_by_currency("Cents that can no longer be cashed, per currency."),
        "sheet": p.nullable(p.PATH),
        "declined": {"const": True, "description": "Present when the operator answered no on a terminal."},
    }, optional=["declined"])


def reconcile_document() -> dict:
    orphan = p.record({"payout_order_id": p.TEXT, "amount": p.nullable(p.CENTS), "currency": p.nullable(p.TEXT),
                       "reference": p.nullable(p.TEXT), "row_key": p.nullable(p.TEXT)})
    mismatch = p.record(_row_ref(field=p.TEXT, ledger={"description": "The ledger's value."},
                                 conekta={"description": "Conekta's value."}))
    return _ops_document("reconcile", "batch-payouts reconcile --json",
                         "Conekta's orders for a batch compared with the ledger.", {
        "batch_id": p.TEXT,
        "exit_code": _exit_code([0, 1], "1: something differs."),
        "at_conekta": p.COUNT, "in_ledger": p.COUNT, "agreed": p.COUNT,
        "orphans": {"type": "array", "items": orphan,
                    "description": "At Conekta, not created in the ledger (rerun the file to resolve)."},
        "missing": {"type": "array", "items": p.record(_row_ref())},
        "mismatched": {"type": "array", "items": mismatch},
    })


def _group_counts(groups) -> dict[str, dict]:
    """Rows per counting group (``states.Counts.as_json``): ``unconfirmed`` is never inside ``failed``."""
    return {group: p.described(p.COUNT, GROUP_NOTES.get(group, "")) for group in groups}


def _batch_fields() -> dict:
    return {
        "batch_id": p.TEXT,
        "input_name": p.TEXT,
        "input_sha256": p.SHA256,
        "operator": p.nullable(p.TEXT),
        "host": p.nullable(p.TEXT),
        "runs": p.COUNT,
        "rows_total": p.COUNT,
        "api_base": p.nullable(p.TEXT),
        "api_version": p.nullable(p.TEXT),
        "output_path": p.nullable(p.described(p.PATH, "The results sheet.")),
        "first_run_at": p.MAYBE_TIMESTAMP,
        "last_run_at": p.MAYBE_TIMESTAMP,
        "mode": p.MODE,
    }


def batches_document() -> dict:
    groups = [g for g in states.Counts().as_json() if g not in (states.INVALID, states.VALID)]  # never in a ledger
    counts = {
        **_group_counts(groups),
        "amount_created": p.described(p.CENTS, "All currencies added (kept for scripts written before "
                                      "totals_created): read totals_created for money."),
        "totals_created": p.money_by_currency("Cents created per currency: pesos and dollars never added."),
        **_money_after(),
    }
    batch = p.record({**_batch_fields(), **counts})
    return _ops_document("batches", "batch-payouts batches --json", "The batches the ledger knows, newest first.", {
        "ledger": p.PATH, "batches": {"type": "array", "items": batch},
    })


def _money_after(never_paid: bool = False) -> dict:
    """Money after the payout (``states.money_stage``), per currency."""
    money = {
        "totals_cashed": p.money_by_currency("Cents per currency of orders Conekta says were cashed."),
        "totals_outstanding": p.money_by_currency("Cents per currency still to be cashed: created orders pending, "
                                                  "open or never checked (expired and cancelled left out)."),
    }
    if never_paid:
        money["totals_never_paid"] = p.money_by_currency("Cents per currency of expired or cancelled orders "
                                                         "(a reissue of one counts on its own row).")
    return money


def _row_stage() -> dict:
    ref = p.nullable(p.described(p.TEXT, "A reference, always text."))
    when = p.nullable(p.TIMESTAMP)
    return p.record({
        "row": p.described(p.COUNT, "The spreadsheet row number; a reissue has its original's."),
        "payout_order_id": p.nullable(p.TEXT),
        "reference": ref,
        "amount": p.CENTS,
        "currency": p.CURRENCY,
        "stage": p.enum(states.PAYOUT_STAGES, "What became of the reference: pending (not cashed yet), cashed, "
                        "expired, cancelled, or reissued (paid again: see reissued_as)."),
        "order_status": p.nullable(p.described(p.TEXT, "Conekta's latest known status; null: never checked.")),
        "cashed_at": when, "expired_at": when, "cancelled_at": when,
        "reissued_as": p.nullable(p.described(p.TEXT, "The new reference that pays this row again.")),
        "reissue_of": p.nullable(p.described(p.TEXT, "This row pays again the expired reference given here.")),
    })


def show_document() -> dict:
    return _ops_document("show", "batch-payouts show --json", "One batch in detail.", {
        **_batch_fields(),
        "states": p.keyed(p.enum(states.ROW_STATES), p.COUNT,
                          "Rows per ledger state (in_flight and unknown may exist at Conekta)."),
        "counts": p.record(_group_counts(states.Counts().as_json()), description="Rows per counting group."),
        "totals_created": p.money_by_currency("Cents created per currency."),
        "order_status": _per_status(),
        **_money_after(never_paid=True),
        "rows": {"type": "array", "items": _row_stage(),
                 "description": "Every created order, in row order; a reissue right after its original."},
    })


def report_document() -> dict:
    return _ops_document("report", "batch-payouts report --json", "The month-end payouts report that was written.", {
        "path": p.described(p.PATH, "The XLSX written."),
        "payouts": p.COUNT,
        "totals": p.money_by_currency("Cents per currency of every payout created in the period, cancelled and "
                                      "expired ones included (see paid)."),
        "paid": p.record({"payouts": p.COUNT, "totals": p.money_by_currency("Cents per currency.")},
                         description="Payouts paid or still to be cashed: cancelled and expired ones left out."),
        "never_paid": p.record({"payouts": p.COUNT, "totals": p.money_by_currency("Cents per currency.")},
                               description="Payouts cancelled or expired: created, but nobody was paid."),
        "since": p.described(p.TEXT, "First day (YYYY-MM-DD), included."),
        "until": p.nullable(p.described(p.TEXT, "Last day, excluded; null: until now.")),
    })


DOCUMENTS = {
    "run.schema.json": lambda: summary_document("run"),
    "validate.schema.json": lambda: summary_document("validate"),
    "status.schema.json": status_document,
    "cancel.schema.json": cancel_document,
    "reconcile.schema.json": reconcile_document,
    "batches.schema.json": batches_document,
    "show.schema.json": show_document,
    "report.schema.json": report_document,
}
