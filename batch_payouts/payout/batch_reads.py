"""What a batch's rows would each ask the ledger, asked once for the whole batch.

Sending a row used to read the ledger three times before its first request: the repeat
guard (``Ledger.earlier_payout``), the customer known for its email (``customer_for``) and
that customer's intent (``intent``); and it waited for a durable commit of its customer's
intent before creating the customer.  At a fast API those reads and that wait were a good
part of a row's cost (issue 17): every read takes the ledger's one connection, and waits
behind a group commit's fsync.  ``BatchReads`` (made by ``RowExecutor.prepare`` for the rows a
run is about to send) answers them from memory, and commits the customer intents of the next
rows together, ahead of the workers.

Why each answer stays as safe as the read it replaces:

* **Customer intents committed ahead** (``take``).  An intent is still durable before its request
  is sent -- earlier, not later.  One committed for a row that is then never sent (the batch
  stopped first, or the row was a repeat) is settled ``failed`` at the end of the run
  (``finish``: certainly not carried out, so a rerun sends it without looking); if the process
  dies first it stays ``in_flight``, and the rerun looks the customer up by email before
  creating it, as for any intent in doubt.  Rows are sent in file order, so at most one chunk
  (``CHUNK`` rows) is committed ahead of the last row started.  Only emails with no customer and
  no intent at preload time are committed ahead; any other case takes the usual path.
* **Customers** (``customer``).  A customer found at preload is the one ``customer_for`` would
  find.  One recorded meanwhile by another process using the same key (another batch of the same
  account on a shared ledger) is not seen, so a second customer object may be created for the
  same person -- which moves no money, and which the unsynchronised per-row read allowed too
  (both runs could read "none" before either wrote).  Customers this run creates are kept by the
  executor itself (``RowExecutor._customers``), as before.
* **Intents of this batch**: nobody else writes them (the batch's run lock is held), so the
  preload is exact for keys this run has not touched; keys it has touched take the usual read.
* **The repeat guard** (``earlier``) is the one that protects money: a payout created in another
  batch must stop this row.  Another process may create one while this batch runs, so the
  preloaded answer is used only while ``Ledger.watch_changes`` says nothing changed since the
  preload, and otherwise the row asks the database as before (``Ledger.earlier_payout``).  On
  SQLite that is the file's ``PRAGMA data_version``, which changes when, and only when, another
  connection commits to the file.  On PostgreSQL it is the notices of rows another connection
  has made created (``ledger_notices``), which arrive a moment (a network hop) after that
  commit.  Either is asked at most every 50 ms (``ledger._AskedSeldom``: on SQLite each asking
  was a read transaction of its own, before every row), so a change shows at most that moment
  later; ``ledger_notices`` says why that is enough for what the guard is for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from batch_payouts.payout.identity import idempotency_key, payout_fingerprint

if TYPE_CHECKING:
    from batch_payouts.payout.ledger import ChangeWatch, Ledger
    from batch_payouts.payout.records import EarlierPayout, Intent, LedgerRow
    from batch_payouts.payout.row_executor import BatchSettings

# Customer intents committed together, ahead of the rows that send them.
CHUNK = 32

STALE = object()  # ``earlier``: the preload may be out of date, ask the database


def customer_key(batch_id: str, email: str) -> str:
    """A customer's Idempotency-Key: keyed by the email, not the row, so the next row (or rerun)
    for the same person replays a request left in doubt instead of creating a second customer."""
    return idempotency_key(batch_id, "email:" + email.lower(), "customer")


# What ``BatchReads`` reads of each upcoming row, in this order (``pipeline._Rows.fields``).
FIELDS = ("email", "name", "phone", "customer_id", "amount", "currency", "reason")


class BatchReads:
    """The ledger's answers for the rows ``upcoming``: (row_key, the row's ``FIELDS``), in the
    order they are sent, read once (no dict per row: a large batch holds none of them)."""

    def __init__(self, ledger: Ledger, settings: BatchSettings, upcoming: Iterable[tuple[str, tuple]],
                 known: Mapping[str, LedgerRow], customer_body: Callable[[Mapping[str, Any]], dict[str, Any]]
                 ) -> None:
        self._ledger = ledger
        self._settings = settings
        self._customer_body = customer_body
        self._lock = threading.Lock()
        s = settings
        rows = list(upcoming)  # tuples of cells the frame already holds: no copy of them
        self._customers = ledger.customers_of(s.key_fp, [fields[0] for _, fields in rows])
        existing = ledger.intent_keys(s.batch_id, "customer")
        # The customer intents to commit ahead, in sending order: one per email that has no
        # customer and no intent yet, for a row that does not name its customer.  The first row
        # (in file order) of an email gives its customer's name and phone.
        self._plan: list[tuple[str, str, str, Any, Any]] = []  # (row_key, key, email, name, phone)
        self._position: dict[str, int] = {}  # key -> index in _plan
        for row_key, (email, name, phone, customer_id, _, _, _) in rows:
            entry = known.get(row_key)
            if customer_id or (entry is not None and entry.customer_id) or email.lower() in self._customers:
                continue
            key = customer_key(s.batch_id, email)
            if key in existing or key in self._position:
                continue
            self._position[key] = len(self._plan)
            self._plan.append((row_key, key, email, name, phone))
        self._committed: dict[str, Intent] = {}  # committed ahead, not yet taken
        self._next = 0  # the first planned intent not committed yet
        # The repeat guard's answers, valid while no other connection may have created a payout (``earlier``).
        self._watch: ChangeWatch | None = None
        self._version = 0
        self._by_fingerprint: dict[str, list[EarlierPayout]] = {}
        self._by_key: dict[str, list[EarlierPayout]] = {}
        if not s.allow_repeat:
            self._watch = ledger.watch_changes()  # first: a payout created after it shows as a change
            self._version = self._watch.count()
            fingerprints = [payout_fingerprint(email, amount, currency, reason)
                            for _, (email, _, _, _, amount, currency, reason) in rows]
            found = ledger.earlier_payouts(key_fp=s.key_fp, exclude_batch=s.batch_id,
                                           fingerprints=fingerprints, row_keys=[key for key, _ in rows])
            for fingerprint, row_key, earlier in found:
                self._by_fingerprint.setdefault(fingerprint, []).append(earlier)
                self._by_key.setdefault(row_key, []).append(earlier)

    # -- customers --------------------------------------------------------------
    def customer(self, email: str) -> str | None:
        """The customer recorded for this email and key when the batch started."""
        return self._customers.get(email.lower())

    def take(self, key: str) -> Intent | None:
        """The customer intent ``key``, durable, if it was planned and not taken yet (None: take the
        usual path).  Commits it with the next ``CHUNK - 1`` planned ones when it is not yet."""
        with self._lock:
            position = self._position.pop(key, None)
            if position is None:
                return None
            intent = self._committed.pop(key, None)
            if intent is not None:
                return intent
            if position < self._next:  # its chunk was committed without it: that commit failed
                return None
            # From the first planned intent not committed yet (a row that started earlier may not
            # have asked yet), up to a chunk's worth, and at least up to this one.
            start = self._next
            end = max(position + 1, min(len(self._plan), start + CHUNK))
            chunk = [(row_key, chunk_key, self._customer_body({"email": email, "name": name, "phone": phone}))
                     for row_key, chunk_key, email, name, phone in self._plan[start:end]
                     if chunk_key in self._position or chunk_key == key]
            self._next = end
            # Committed under this object's lock: a worker that needs one of these waits here, as it
            # would wait for its own intent's commit; rows take their customers in file order.
            stored = self._ledger.begin_intents(batch_id=self._settings.batch_id, operation="customer",
                                                requests=chunk)
            for (_, chunk_key, _), intent in zip(chunk, stored):
                if chunk_key != key:
                    self._committed[chunk_key] = intent
            return stored[[item[1] for item in chunk].index(key)]

    def finish(self) -> None:
        """Settle the intents committed ahead and never sent (``failed``): with the next ledger step.
        And stop watching for payouts created elsewhere: from now on the guard asks the database."""
        with self._lock:
            unsent, self._committed = list(self._committed), {}
            self._position = {}
            watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()
        if unsent:
            self._ledger.settle_unsent(unsent, later=True)

    # -- the repeat guard -------------------------------------------------------
    def earlier(self, fingerprint: str, row_key: str, since: float) -> EarlierPayout | None | object:
        """``Ledger.earlier_payout``'s answer from the preload, or ``STALE`` when another connection
        has written to the ledger since (then only the database can say)."""
        watch = self._watch
        if watch is None or watch.count() != self._version:
            return STALE
        matches = [e for e in self._by_fingerprint.get(fingerprint, ())
                   if e.created_at is not None and e.created_at >= since]
        if row_key.startswith("x:"):
            matches += self._by_key.get(row_key, ())
        # The query's ORDER BY created_at: the earliest, a missing time first (SQLite sorts NULL first).
        return min(matches, key=lambda e: (e.created_at is not None, e.created_at or 0.0)) if matches else None
