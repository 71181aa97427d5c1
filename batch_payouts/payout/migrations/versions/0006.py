"""Step 6 of ledger_schema.MIGRATIONS: who submitted which batch (a preparer sees only their own)."""

from batch_payouts.payout.ledger_schema import run_step

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    run_step(6)
