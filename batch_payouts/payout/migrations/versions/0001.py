"""Step 1 of ledger_schema.MIGRATIONS: the initial journal."""

from batch_payouts.payout.ledger_schema import run_step

revision = "0001"
down_revision = None


def upgrade() -> None:
    run_step(1)
