"""Step 2 of ledger_schema.MIGRATIONS: what the operations commands need."""

from batch_payouts.payout.ledger_schema import run_step

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    run_step(2)
