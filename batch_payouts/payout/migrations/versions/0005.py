"""Step 5 of ledger_schema.MIGRATIONS: after the payout (events, cashed/expired times, reissue links, summaries)."""

from batch_payouts.payout.ledger_schema import run_step

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    run_step(5)
