"""Step 8 of ledger_schema.MIGRATIONS: PostgreSQL notifies when a row becomes created."""

from batch_payouts.payout.ledger_schema import run_step

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    run_step(8)
