"""The approval policy: which batches need a second person, and which need two.

Kept in the ledger (not in a config file) so it binds every front end that pays from that
ledger: a run cannot skip it by being started with another config file.  An admin sets it
(``batch-payouts policy set``).  A ledger with no policy pays as before: no approval asked.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

from batch_payouts.payout.ledger import Ledger
from batch_payouts.team import events

SETTING = "approval_policy"


@dataclass(frozen=True)
class Policy:
    """``every_batch``: one approval for every batch.  ``above``: one approval when a currency's
    total is over its amount (cents).  ``rows_over``: one approval above that many rows to pay.
    ``two_above``: two approvals (two different people) when a currency's total is over it."""

    every_batch: bool = False
    above: dict[str, int] = field(default_factory=dict)
    rows_over: int | None = None
    two_above: dict[str, int] = field(default_factory=dict)

    def needed(self, totals: dict[str, int], rows: int) -> int:
        """How many approvals, by different people other than the submitter, this plan needs."""
        if any(total > self.two_above[c] for c, total in totals.items() if c in self.two_above):
            return 2
        if self.every_batch or (self.rows_over is not None and rows > self.rows_over):
            return 1
        return 1 if any(total > self.above[c] for c, total in totals.items() if c in self.above) else 0

    def as_json(self) -> dict:
        return asdict(self)


def load(ledger: Ledger) -> Policy | None:
    found = ledger._query("SELECT value FROM team_settings WHERE name=?", (SETTING,))
    if not found:
        return None
    data = json.loads(found[0]["value"])
    return Policy(bool(data.get("every_batch")), {k: int(v) for k, v in (data.get("above") or {}).items()},
                  data.get("rows_over"), {k: int(v) for k, v in (data.get("two_above") or {}).items()})


def save(ledger: Ledger, policy: Policy | None, *, actor: str | None, ip: str | None = None) -> None:
    """Set the policy (None removes it: no approvals asked any more)."""
    with ledger._transaction() as conn:
        if policy is None:
            conn.execute("DELETE FROM team_settings WHERE name=?", (SETTING,))
        else:
            conn.execute(
                "INSERT INTO team_settings (name, value, updated_by, updated_at) VALUES (?,?,?,?) "
                "ON CONFLICT (name) DO UPDATE SET value=excluded.value, updated_by=excluded.updated_by, "
                "updated_at=excluded.updated_at",
                (SETTING, json.dumps(policy.as_json(), sort_keys=True), actor, time.time()),
            )
        events.record_in(conn, actor, ip, "policy_set", policy=policy.as_json() if policy else None)
