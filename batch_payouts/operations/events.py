"""``events sync``: catch up with Conekta's events when webhooks cannot reach this machine.

``GET /events`` lists newest first and Conekta does not promise a time filter, so the pages
are read back until an event an earlier sync recorded (or the end), then applied oldest
first with the webhook's own rules (``payout.order_events``): a sync cut short leaves the
oldest applied, and the next one reads back past the rest.  Safe to run any time, also
beside webhooks: an event already recorded changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from batch_payouts.operations.access import key_refused
from batch_payouts.payout.conekta import ConektaClient, ConektaError
from batch_payouts.payout.ledger import Ledger
from batch_payouts.payout.order_events import EventOutcome, apply_event, audit_applied, mark_synced, synced_before

SYNC = "sync"
WEBHOOK = "webhook"


@dataclass
class SyncResult:
    read: int = 0
    outcomes: list[EventOutcome] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)


def sync_events(ledger: Ledger, client: ConektaClient, *, page_size: int = 100,
                on_event: Callable[[EventOutcome], None] | None = None) -> SyncResult:
    """Read the events not synced yet and apply them, oldest first."""
    result = SyncResult()
    unseen: list[dict] = []
    try:
        for event in client.list_events(limit=page_size):
            result.read += 1
            if isinstance(event, dict) and synced_before(ledger, str(event.get("id") or "")):
                break
            unseen.append(event)
    except ConektaError as error:
        if error.stops_batch:
            raise key_refused(error) from error
        raise
    for event in reversed(unseen):
        if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
            continue
        outcome = apply_event(ledger, event, SYNC)
        audit_applied(ledger, outcome, SYNC)
        mark_synced(ledger, outcome.event_id)
        result.outcomes.append(outcome)
        if on_event is not None:
            on_event(outcome)
    return result
