"""The input contract: the beneficiaries sheet, as pandera's YAML and as a JSON Schema of one row.

Why two files: ``beneficiaries.yaml`` is pandera's own serialisation of THE schema the tool runs
(``rules.schema.build_schema``), for Python readers who use pandera; but our checks are vectorised
functions pandera cannot serialise, so the YAML lists each one by name and error code instead.
``beneficiaries.schema.json`` is for everybody else: one input row (canonical column names) with
the types, limits and the amount rule, built from ``rules.columns`` so it cannot drift from them.
"""

from __future__ import annotations

import re
import warnings

from batch_payouts.contracts import parts
from batch_payouts.rules import columns as cols
from batch_payouts.rules.messages import CODE_COLUMNS, ERROR_CODES

# What each canonical column means, for the JSON Schema's descriptions.
COLUMN_NOTES = {
    "name": "The beneficiary's full name. Not empty.",
    "email": "Where Conekta sends the withdrawal reference. Address syntax only (no DNS).",
    "phone": "Optional. Once spaces, - . ( ) and one leading + are removed: only digits, {digits}.",
    "amount": "Integer cents by default (3000 = $30.00): > 0, a multiple of 100 (whole pesos, cash), "
    "below {max_cents}. Thousands separators (\"3,000\") and a zero fraction (\"3000.0\") are read too. "
    "With --amount-unit pesos the tool reads pesos instead (\"$1,500.00\"); this schema describes cents.",
    "currency": "Optional; empty means {default}. A circulating ISO 4217 code (the tool upper-cases it).",
    "reason": "The payout's reason, 1 to {reason_max} characters (Conekta's limit).",
    "customer_id": "Optional: pay through this existing Conekta customer instead of creating one.",
    "external_id": "Optional folio: the row's identity for exactly-once; unique within the file.",
    "expires_at": "Optional ISO 8601 date or date-time in the future; Mexico City time without an offset; "
    "a date alone means 23:59:59 that day.",
}
# Mirrors rules.headers' metadata header rule (meta_KEY, metadata.KEY, any case): JSON Schema regexes
# have no case-insensitive flag.  tests/test_contracts.py checks both agree on sample headers.
METADATA_HEADER = r"^[Mm][Ee][Tt][Aa](?:[Dd][Aa][Tt][Aa])?[\s._-]+\S"
_SEPARATOR = "[\\s\\-.()]"  # the phone separators rules.normalize removes (spaces, - . ( ))


def _phone_pattern() -> str:
    """``PHONE_PATTERN`` ("[0-9]{10,15}") with the separators and the leading + the tool accepts."""
    low, high = re.fullmatch(r"\[0-9\]\{(\d+),(\d+)\}", cols.PHONE_PATTERN).groups()
    return f"^(?:{_SEPARATOR}*\\+?(?:{_SEPARATOR}*[0-9]){{{low},{high}}}{_SEPARATOR}*)?$"


# Positive whole pesos in cents: plain digits ending in 00, or with thousands separators; an optional
# ".0" fraction; surrounding spaces (the tool strips cells).
AMOUNT_TEXT = r"^\s*\+?(?:0*[1-9][0-9]*00|[1-9][0-9]{0,2}(?:,[0-9]{3})*,[0-9]00)(?:\.0*)?\s*$"


def beneficiary_row_schema() -> dict:
    """JSON Schema of one input row keyed by canonical column name (aliases in ``x-aliases``)."""
    notes = {
        column: text.format(digits=cols.PHONE_PATTERN, max_cents=cols.MAX_AMOUNT_CENTS,
                            default=cols.DEFAULT_CURRENCY, reason_max=cols.REASON_MAX_CHARS)
        for column, text in COLUMN_NOTES.items()
    }
    shapes: dict[str, dict] = {
        "name": {"type": "string", "pattern": "\\S"},
        "email": {"type": "string", "format": "email", "pattern": "^\\s*[^@\\s]+@[^@\\s]+\\.[^@\\s]+\\s*$"},
        "phone": {"type": "string", "pattern": _phone_pattern()},
        "amount": {"oneOf": [
            {"type": "integer", "minimum": 100, "multipleOf": 100, "exclusiveMaximum": cols.MAX_AMOUNT_CENTS},
            {"type": "string", "pattern": AMOUNT_TEXT},
        ]},
        "currency": {"type": "string", "enum": ["", *sorted(cols.ISO_4217)]},
        "reason": {"type": "string", "pattern": "\\S", "maxLength": cols.REASON_MAX_CHARS},
        "customer_id": {"type": "string"},
        "external_id": {"type": "string"},
        "expires_at": {"type": "string", "pattern": "^(?:\\s*[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9:.]+"
                       "(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?\\s*)?$"},
    }
    missing = set(cols.CANONICAL_COLUMNS) - set(shapes)
    if missing:  # a new column must be described here before the schema can be published
        raise KeyError(f"describe the input column(s) {sorted(missing)} in batch_payouts/contracts/inputs.py")
    codes_of = {column: [code for code in ERROR_CODES if CODE_COLUMNS[code] == column] for column in cols.CANONICAL_COLUMNS}
    properties = {
        column: {**shapes[column], "description": notes[column], "x-aliases": list(cols.ALIASES[column]),
                 "x-error-codes": codes_of[column]}
        for column in cols.CANONICAL_COLUMNS
    }
    body = {
        "type": "object",
        "properties": properties,
        "required": list(cols.REQUIRED_COLUMNS),
        "patternProperties": {METADATA_HEADER: {
            "type": "string",
            "description": f"meta_KEY / metadata.KEY: sent as the payout order's metadata KEY "
            f"(at most {cols.MAX_METADATA_KEYS} such columns; empty cells are not sent).",
        }},
        "additionalProperties": True,  # other columns are copied to the results sheet, never sent
    }
    return parts.document(
        "beneficiaries", "One beneficiary row of the input sheet",
        "A row keyed by canonical column name (the tool matches headers ignoring case, accents, spaces, "
        "'-' and '_', and accepts the names in x-aliases). Cells are text as read from CSV/XLSX; amount may "
        "also be an integer. Other columns are allowed: they are copied to the results sheet and never sent "
        "(additionalProperties: true). Rules across rows (duplicate_external_id, duplicate_row) and "
        "--max-amount (amount_over_limit) cannot be expressed per row: see beneficiaries.yaml. "
        f"Error codes: {', '.join(ERROR_CODES)}.",
        body,
    )


def pandera_yaml() -> str:
    """``DataFrameSchema.to_yaml()`` of THE schema, plus the checks pandera could not serialise.

    Built with every optional check switched on (``max_amount`` set, duplicates refused) and compared
    with the defaults, so each check says when it runs.  pandera loads the file back
    (``DataFrameSchema.from_yaml``) and ignores the extra ``unserialized_checks`` key."""
    import yaml

    from batch_payouts.rules.schema import build_schema

    full = build_schema(now=0, allow_duplicate_rows=False, max_amount=cols.MAX_AMOUNT_CENTS)
    plain = build_schema(now=0)
    with_duplicates = build_schema(now=0, allow_duplicate_rows=True)
    with warnings.catch_warnings():  # "only registered checks may be serialized": listed below instead
        warnings.simplefilter("ignore", UserWarning)
        text = plain.to_yaml()
    document = yaml.safe_load(text)

    def names(schema) -> set[str]:
        return {c.name for c in schema.checks} | {c.name for col in schema.columns.values() for c in col.checks}

    always, without_duplicates = names(plain), names(with_duplicates)
    listed = []
    places = [(None, full.checks), *((name, col.checks) for name, col in full.columns.items())]
    for table_column, checks in places:
        for check in checks:
            when = "always"
            if check.name not in always:
                when = f"with --max-amount (default {cols.DEFAULT_MAX_AMOUNT_PESOS} pesos per row)"
            elif check.name not in without_duplicates:
                when = "unless --allow-duplicate-rows"
            listed.append({
                "check": check.name, "error_code": check.error,
                "table_column": table_column if table_column else "(whole row)",
                "input_column": CODE_COLUMNS.get(check.error), "when": when,
            })
    listed.sort(key=lambda item: ERROR_CODES.index(item["error_code"]) if item["error_code"] in ERROR_CODES else 999)
    document["unserialized_checks"] = listed
    checked = {item["error_code"] for item in listed}
    # Codes whose rule lives outside this schema (e.g. a rule that depends on --api-version).
    document["rules_outside_this_schema"] = [
        {"error_code": code, "input_column": CODE_COLUMNS[code]} for code in ERROR_CODES if code not in checked
    ]
    header = (
        "# pandera DataFrameSchema.to_yaml() of batch_payouts.rules.schema.build_schema(), generated by\n"
        "# `batch-payouts schemas write schemas/`: do not edit by hand.\n"
        "# It validates the *normalised* table (amount in Int64 cents, phone as digits...), not the raw sheet.\n"
        "# Our checks are vectorised functions pandera cannot serialise (its output says `checks: null`):\n"
        "# `unserialized_checks` names each one by its stable error code, the column it is about and when it runs;\n"
        "# `rules_outside_this_schema`: the error codes checked elsewhere in batch_payouts/rules/.\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
