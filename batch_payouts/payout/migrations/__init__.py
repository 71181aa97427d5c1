"""Alembic's migrations of the ledger, one revision per ``ledger_schema.MIGRATIONS`` step."""
