"""Alembic's entry point for the ledger: always run from ``ledger_schema`` on the connection
(and inside the transaction) the ledger opened -- never on its own, and never with a URL
(which could carry a password) in a config file."""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the ledger's migrations run from batch_payouts.payout.ledger_schema, on its connection")
context.configure(connection=connection)
context.run_migrations()
