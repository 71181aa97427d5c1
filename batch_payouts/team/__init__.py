"""Four eyes (issue 15): users and roles, the second factor, the approval policy and approvals.

Kept in the ledger (``ledger_schema`` step 4) so every front end -- the web app, the CLI, cron --
reads the same users and the same approvals, and they move with the ledger to PostgreSQL.
A facade package: it uses ``payout.ledger`` and never imports ``cli`` or ``web``.
"""
