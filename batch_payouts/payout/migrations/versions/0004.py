"""Step 4 of ledger_schema.MIGRATIONS: four eyes (users, roles, second factors, approvals)."""

from batch_payouts.payout.ledger_schema import run_step

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    run_step(4)
