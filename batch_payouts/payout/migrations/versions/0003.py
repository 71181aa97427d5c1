"""Step 3 of ledger_schema.MIGRATIONS: a failure's message as its parameters."""

from batch_payouts.payout.ledger_schema import run_step

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    run_step(3)
