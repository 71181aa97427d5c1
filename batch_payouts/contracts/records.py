"""Line- and row-shaped outputs: a results sheet row, a ``--log-json`` line, an audit log line.

Why generated: the results sheet's columns come from ``report.RESULT_COLUMNS`` and
``operations.STATUS_COLUMNS``, its ``status`` codes from ``states``, the audit entries' fields
from the signatures of ``AuditLog``'s writers and its reserved fields from ``audit.RESERVED_FIELDS``;
adding a column, a status or an audit field shows up in the schema at the next
``batch-payouts schemas write schemas/`` (and the drift test says so before that).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable

from batch_payouts import report, states
from batch_payouts.contracts import parts as p
from batch_payouts.contracts.documents import summary_record
from batch_payouts.operations import CHANGED, STATUS_COLUMNS
from batch_payouts.payout import audit, audit_verify
from batch_payouts.rules.messages import ERROR_CODES

# A cell as a spreadsheet reader gives it: text, or null for an empty XLSX cell ("" in CSV).
CELL = {"type": ["string", "null"]}
RESULT_NOTES = {
    "row": "The spreadsheet row number (header = 1): an integer (a CSV reader must convert it).",
    "status": "What happened to the row. `unknown`: sent, no answer: it may exist at Conekta; run the same "
    "file again, never pay it by hand.",
    "status_label": "The status in words, in the language of the run (--lang): \"creada\", \"sin confirmar\", "
    "\"inválida\"... For people; scripts read `status`.",
    "amount_pesos": "The amount in pesos (major units of amount_currency) whatever unit the input used: a number "
    "with a currency format in XLSX (Excel sums it); in CSV a decimal text such as \"1500.50\" (a CSV reader "
    "must convert it); empty when the "
    "amount could not be read.",
    "amount_currency": "The currency of amount_pesos (ISO 4217, MXN when the input has no currency column).",
    "customer_id": "The Conekta customer used.",
    "payout_order_id": "The payout order's id.",
    "reference": "The 16-digit reference the beneficiary takes to OXXO (text: never a number).",
    "expires_at": "When the reference expires, ISO 8601 in Mexico City time.",
    "error_code": "Stable codes joined with ';': ours (validation: x-validation-codes; also not_sent, "
    "api_unavailable, repeat_payout...) or Conekta's own.",
    "error_message": "What went wrong and how to fix it, in Spanish (or English with --lang en).",
    "order_status": "After `status`: the order's latest status at Conekta.",
    "status_checked_at": "After `status`: when it was checked (ISO 8601, Mexico City).",
    "status_change": f"After `status`: \"{CHANGED}\" when the status changed in that check.",
}


def _result_cell(column: str) -> dict:
    if column == "row":
        return {"type": "integer", "minimum": 2}
    if column == "status":
        return p.enum(states.RESULT_STATUSES)
    if column == "error_code":
        return {**CELL, "x-validation-codes": list(ERROR_CODES)}
    if column == "amount_pesos":
        return {"type": ["number", "null"], "minimum": 0}
    if column == "status_change":
        return {"type": ["string", "null"], "enum": [CHANGED, "", None]}
    return CELL


def results_row_schema() -> dict:
    columns = [*report.RESULT_COLUMNS, *STATUS_COLUMNS]
    properties = {c: {**_result_cell(c), "description": RESULT_NOTES.get(c, "")} for c in columns}
    body = p.record(properties, optional=[c for c in columns if c not in ("row", "status", "error_code", "error_message")])
    return p.document(
        "results-row", "One row of the results sheet",
        "The first sheet of <input>.results.xlsx, one row as {header: cell}: every input column as the user "
        "wrote it (any name: additionalProperties: true), then these columns. `validate` writes only row, status "
        "(valid/invalid), error_code and error_message; `run` also status_label, amount_pesos and amount_currency; "
        "`status` adds order_status, status_checked_at and status_change. The other sheets (Resumen, Errores) are for people, not a contract.",
        body,
    )


LEVELS = ("info", "warning", "error")
LOG_EVENTS = {  # event -> (meaning, its extra fields)
    "invalid_row": ("One problem of one row of the file (the value and the fix are in the message).", {
        "row": p.described(p.COUNT, "The spreadsheet row number (header = 1)."),
        "column": p.described(p.TEXT, "The column's header as written in the file."),
        "code": p.described(p.TEXT, "The stable error code (beneficiaries.yaml lists them)."),
    }),
    "csv_output": ("The results sheet is a CSV: Excel opening it rounds references and drops leading zeros.", {}),
    "invalid_rows_more": ("How many more problems the console did not list.", {}),
    "progress": ("Every 10% of the rows sent.", {"done": p.COUNT, "total": p.COUNT}),
    "batch_stopped": ("The batch stopped part-way (the key was refused, ...): rerun to continue.", {}),
    "interrupted": ("Ctrl-C or SIGTERM: rows in flight finished and were recorded.", {}),
    "batch_error": ("The batch could not run.", {"exit_code": {"type": "integer"}}),
    "summary": ("The end of a run: the human summary as message, and every key of run --json.", None),
}


def _tagged(base: dict, tag: str, kinds: Iterable[tuple[str, dict, str]]) -> dict:
    """A record whose further fields depend on one field, its ``tag`` (a log line's event, an audit
    entry's type): the ``base`` fields, and one allOf rule per (value, its record, what it means)."""
    rules = [{"if": {"properties": {tag: {"const": value}}, "required": [tag]},
              "then": {**then, "description": meaning}} for value, then, meaning in kinds]
    return {**base, "allOf": rules}


def log_line_schema() -> dict:
    kinds = [(event, summary_record("run", versioned=False) if fields is None else p.record(fields), meaning)
             for event, (meaning, fields) in LOG_EVENTS.items()]
    body = p.record({
        "ts": p.TIMESTAMP,
        "level": p.enum(LEVELS),
        "event": p.described(p.TEXT, "What happened; known events: " + ", ".join(LOG_EVENTS)
                             + ". A reader must ignore events it does not know (new ones are MINOR)."),
        "message": p.described(p.TEXT, "The same line a person reads, in the language asked for (--lang)."),
    })
    return p.document(
        "log-line", "One --log-json line",
        "`validate`/`run --log-json` write their log to stderr as one JSON object per line (for cron and log "
        "shippers). Fields beyond these depend on the event (see allOf).",
        _tagged(body, "event", kinds),
    )


AUDIT_FIELD_NOTES = {
    "input_name": ("The input file's name as the user gave it.", p.TEXT),
    "input_sha256": ("SHA-256 of the input file's bytes.", p.SHA256),
    "batch_id": ("The batch.", p.nullable(p.TEXT)),
    "api_base": ("The Conekta API address.", p.TEXT),
    "api_version": ("The Conekta API version (Accept header).", p.TEXT),
    "options": ("The options of the run; never a key (secrets are dropped).", {"type": "object"}),
    "started_at": ("When the run started (UTC).", p.TIMESTAMP),
    "tool_version": ("batch-payouts' version.", p.TEXT),
    "operator": ("The OS user who ran it.", p.nullable(p.TEXT)),
    "host": ("The machine.", p.nullable(p.TEXT)),
    "method": ("HTTP method.", p.TEXT),
    "path": ("Request path (no query secrets; key-like text redacted).", p.TEXT),
    "idempotency_key": ("The Idempotency-Key sent (POSTs).", p.nullable(p.TEXT)),
    "http_status": ("HTTP status; null when no answer came.", {"type": ["integer", "null"]}),
    "log_id": ("Conekta's log_id of the answer, for support.", p.nullable(p.TEXT)),
    "duration_ms": ("How long the request took.", {"type": "number", "minimum": 0}),
    "ended_at": ("When the run ended (UTC).", p.TIMESTAMP),
    "mode": ("LIVE or TEST.", p.MODE),
    "counts": ("Rows per result status.", p.keyed(p.enum(states.RESULT_STATUSES), p.COUNT)),
    "totals": ("Cents per result status (rows whose amount could be read).", p.keyed(p.enum(states.RESULT_STATUSES), p.CENTS)),
    "exit_code": ("The run's exit code.", {"type": "integer"}),
    "results_path": ("The results sheet.", p.nullable(p.PATH)),
    "command": ("The command: status, cancel, reconcile or reissue.", p.TEXT),
    "source": ("Where the event came from: webhook (POST /webhooks/conekta) or sync (`events sync`).",
               p.enum(("webhook", "sync"))),
    "event_id": ("Conekta's event id (evt_...).", p.TEXT),
    "event_type": ("Conekta's event type (cashout.confirmed, cashout.expired, cashout.canceled...).", p.TEXT),
    "payout_order_id": ("The payout order.", p.nullable(p.TEXT)),
    "previous_payout_order_id": ("The expired (or cancelled) order paid again.", p.nullable(p.TEXT)),
    "row_key": ("The ledger row's key.", p.nullable(p.TEXT)),
    "reissue_row_key": ("The new ledger row that pays again (r:<row_key>).", p.TEXT),
    "row": ("The spreadsheet row number.", {"type": "integer"}),
    "previous_status": ("The order's status before.", p.nullable(p.TEXT)),
    "status": ("The order's status after (order_event) or the new row's result status (reissue).", p.nullable(p.TEXT)),
}
# Entries the pipeline writes through AuditLog's writers (fields = the writer's parameters) ...
AUDIT_WRITERS = {"run_started": "The start of a run (not --dry-run).", "api_call": "One HTTP request: no bodies, "
                 "no personal data, never the key.", "run_finished": "The end of a run."}
# ... and the ones operations.py appends directly around status/cancel/reconcile.
AUDIT_COMMAND_ENTRIES = {
    "command_started": ("A status/cancel/reconcile/reissue command starts calling Conekta about the batch.",
                        ("command", "batch_id", "operator", "host")),
    "command_finished": ("That command is done.", ("command",)),
    "order_event": ("A Conekta event moved one of the batch's orders forward (cashed, expired, cancelled).",
                    ("source", "event_id", "event_type", "payout_order_id", "row_key", "previous_status", "status")),
    "reissue": ("`reissue` paid an expired (or cancelled) reference again with a new payout order.",
                ("batch_id", "row", "row_key", "previous_payout_order_id", "previous_status", "reissue_row_key",
                 "payout_order_id", "status")),
}


def _writer_fields(kind: str) -> list[str]:
    signature = inspect.signature(getattr(audit.AuditLog, kind))
    return [name for name, parameter in signature.parameters.items()
            if name != "self" and parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)]


def _entry(kind: str, meaning: str, fields: list[str] | tuple[str, ...]) -> tuple[str, dict, str]:
    properties = {}
    for name in fields:
        note, shape = AUDIT_FIELD_NOTES.get(name, ("(not described yet: add it to contracts/records.py)", {}))
        properties[name] = {**shape, "description": note}
    return kind, p.record(properties), meaning


def audit_line_schema() -> dict:
    seq, ts, prev = audit.RESERVED_FIELDS
    kinds = [_entry(kind, meaning, _writer_fields(kind)) for kind, meaning in AUDIT_WRITERS.items()]
    kinds += [_entry(kind, meaning, fields) for kind, (meaning, fields) in AUDIT_COMMAND_ENTRIES.items()]
    base = p.record({
        seq: {"type": "integer", "minimum": 1, "description": "1, 2, 3... across every run appended to this file."},
        ts: p.described(p.TIMESTAMP, "When the line was written (UTC, microseconds)."),
        prev: p.described(p.SHA256, "The hash chain: SHA-256 (hex) of the previous line's exact bytes without its "
                          f"newline; {audit_verify.ZERO_HASH[:8]}... (64 zeros) on the first line. Editing, removing, "
                          "inserting or reordering any line breaks it; the ledger keeps the last line's hash and "
                          "the line count so a cut-off tail is noticed too (`batch-payouts audit verify FILE`)."),
        "type": p.described(p.TEXT, "The entry: " + ", ".join([*AUDIT_WRITERS, *AUDIT_COMMAND_ENTRIES]) + "."),
        "previous_chain_broken": {"const": True, "description": "On the first entry after a file that did not "
                                  "verify (or a crash): the chain before it is not vouched for."},
        "recovered_partial_line": {"type": "integer", "minimum": 1, "description": "The line number a crash "
                                   "left half-written; this entry continues the chain from it."},
    }, optional=["previous_chain_broken", "recovered_partial_line"])
    return p.document(
        "audit-line", "One line of the audit log (<results sheet>.audit.jsonl)",
        "UTF-8 JSON, keys sorted, no spaces, one object per line, append-only and hash-chained. Fields beyond "
        "seq/ts/prev/type depend on the type (see allOf); a reader must ignore types it does not know.",
        _tagged(base, "type", kinds),
    )


RECORDS = {
    "results-row.schema.json": results_row_schema,
    "log-line.schema.json": log_line_schema,
    "audit-line.schema.json": audit_line_schema,
}
