"""Step 6 on this branch (reserved as step 7: issue 15's batch owners; the lead renumbers on merge)."""

from batch_payouts.payout.ledger_schema import run_step

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    run_step(6)
