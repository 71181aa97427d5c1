"""Step 7 of ledger_schema.MIGRATIONS: the repeat guard's indexes without the row's state."""

from batch_payouts.payout.ledger_schema import run_step

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    run_step(7)
