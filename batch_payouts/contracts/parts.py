"""Small builders for JSON Schema (draft 2020-12) fragments, shared by every published schema.

Why builders instead of literal dicts: the same shapes (money per currency, a SHA-256, counts per
status, the ``additionalProperties`` policy) appear in a dozen documents; written once here they
cannot disagree between files.

The ``additionalProperties`` policy (documented in schemas/README.md): every *document* and every
*record* object is open (``additionalProperties: true``), so adding a key is a MINOR change that
old readers and old schemas accept; every key we produce today is ``required``, so removing or
renaming one fails validation.  Maps keyed by a closed vocabulary (counts per ``status``, rows per
ledger state) are closed with ``propertyNames``: a new status is a MAJOR change.
"""

from __future__ import annotations

from collections.abc import Iterable

from batch_payouts.contracts import SCHEMA_VERSION

DIALECT = "https://json-schema.org/draft/2020-12/schema"
CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code, e.g. MXN."}
CENTS = {"type": "integer", "minimum": 0, "description": "Integer cents (15000 = $150.00)."}
COUNT = {"type": "integer", "minimum": 0}
SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
TIMESTAMP = {"type": "string", "format": "date-time",
             "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})$",
             "description": "ISO 8601 with its offset (Z for UTC)."}
MAYBE_TIMESTAMP = {"anyOf": [TIMESTAMP, {"const": ""}], "description": "ISO 8601 with offset, or \"\" when unknown."}
MODE = {"type": ["string", "null"], "enum": ["LIVE", "TEST", None],
        "description": "The Conekta account's mode; null while no answer from Conekta has told it."}
TEXT = {"type": "string"}
PATH = {"type": "string", "description": "A file path as the command saw it."}


def nullable(schema: dict) -> dict:
    """``schema`` or ``null`` (the key is always present)."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    if "enum" in schema:
        return {**schema, "enum": [*schema["enum"], None]}
    return {"anyOf": [schema, {"type": "null"}]}


def described(schema: dict, description: str) -> dict:
    return {**schema, "description": description}


def enum(values: Iterable[str], description: str | None = None) -> dict:
    schema: dict = {"type": "string", "enum": list(values)}
    return described(schema, description) if description else schema


def record(properties: dict[str, dict], *, optional: Iterable[str] = (), description: str | None = None) -> dict:
    """An open object: every property required except ``optional``; unknown keys allowed (MINOR additions)."""
    skip = set(optional)
    schema: dict = {"type": "object"}
    if description:
        schema["description"] = description
    schema["properties"] = properties
    schema["required"] = [name for name in properties if name not in skip]
    schema["additionalProperties"] = True
    return schema


def keyed(keys: dict, values: dict, description: str | None = None) -> dict:
    """A map: ``propertyNames`` constrains the keys (a closed vocabulary or a pattern), ``values`` each value."""
    schema: dict = {"type": "object", "propertyNames": keys, "additionalProperties": values}
    return described(schema, description) if description else schema


def money_by_currency(description: str) -> dict:
    """``{"MXN": 1500000}``: integer cents per currency; never one sum across currencies."""
    return keyed(CURRENCY, CENTS, description)


def version_property() -> dict:
    """``schema_version``: any MINOR of this MAJOR validates (additions never break a reader)."""
    major = SCHEMA_VERSION.split(".")[0]
    return {
        "type": "string",
        "pattern": f"^{major}\\.[0-9]+$",
        "description": f"The contract version (MAJOR.MINOR); this schema is {SCHEMA_VERSION}. "
        "A MINOR change only adds; a MAJOR change may break a reader (schemas/README.md).",
    }


def document(name: str, title: str, description: str, body: dict) -> dict:
    """A complete schema file: dialect, id, title, then ``body`` (an object schema or a ``oneOf``)."""
    return {
        "$schema": DIALECT,
        "$id": f"urn:batch-payouts:schema:{name}",
        "title": title,
        "description": description,
        "x-schema-version": SCHEMA_VERSION,
        **body,
    }
