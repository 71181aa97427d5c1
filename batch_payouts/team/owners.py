"""Whose batch is it: the users who uploaded, submitted or started it (``team_batch_owners``).

A preparer sees only their own batches and uploads; approvers, auditors and admins see every
one (``roles.sees_everything``).  Ownership is kept in the ledger, not with the web's uploads,
so it outlives an upload's clean-up and is the same for every web server on one ledger.  A
batch run only from the CLI has no owner: only the roles that see everything see it.
"""

from __future__ import annotations

import time

from batch_payouts.payout.ledger import Ledger


def claim(ledger: Ledger, batch_id: str, name: str) -> None:
    """``name`` uploaded, submitted or started ``batch_id`` (two people with the same file share it)."""
    with ledger._transaction() as conn:
        conn.execute("INSERT INTO team_batch_owners (batch_id, name, since) VALUES (?,?,?) "
                     "ON CONFLICT (batch_id, name) DO NOTHING", (batch_id, name, time.time()))


def owns(ledger: Ledger, batch_id: str, name: str | None) -> bool:
    return bool(name) and bool(ledger._query(
        "SELECT 1 FROM team_batch_owners WHERE batch_id=? AND name=?", (batch_id, name)))


def owned_by(ledger: Ledger, name: str | None) -> set[str]:
    """The batch ids ``name`` owns."""
    if not name:
        return set()
    return {r["batch_id"] for r in ledger._query("SELECT batch_id FROM team_batch_owners WHERE name=?", (name,))}
