"""The published contracts: JSON Schemas (and a pandera YAML) of what goes in and what comes out.

Why: cron jobs, an auditor's scripts and other programs read our ``--json`` documents, the results
sheet, ``--log-json`` lines and the audit log.  They need a contract they can validate against,
and we need to know when a change breaks them.  So the schemas are *generated from the code's own
constants* (column lists, status codes, error codes, ledger states) by ``batch-payouts schemas
write schemas/``, committed under ``schemas/``, and a test fails when the code and the committed
files disagree.

This package's ``__init__`` stays tiny (the CLI imports ``SCHEMA_VERSION`` on every ``--json``
command); the schema builders are in its submodules and load pandas/pandera only when asked.

Versioning (``SCHEMA_VERSION``, "MAJOR.MINOR", printed as ``schema_version`` in every ``--json``
document): MINOR for additive changes (a new key, a new optional column, a new log event);
MAJOR for anything a reader could misread: a key removed or renamed, a type or a meaning changed,
a new value in a closed list (a ``status`` code, a row state), since a reader that does not know
a status must be told rather than guess "failed" or "paid".  See schemas/README.md.
"""

from __future__ import annotations

SCHEMA_VERSION = "1.2"


def versioned(document: dict) -> dict:
    """``document`` with ``schema_version`` first: what every ``--json`` command prints."""
    return {"schema_version": SCHEMA_VERSION, **document}
