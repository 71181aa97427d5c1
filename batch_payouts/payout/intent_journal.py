"""Intents: what the ledger commits, durably, before a request is sent -- in groups.

An intent is the exact request body and its Idempotency-Key, stored ``in_flight`` before
the request leaves; the answer settles it (``ledger.Ledger.record_*``).  A crash between
the two leaves it ``in_flight``, and a rerun looks the object up before resending the same
body with the same key.  Making each intent durable costs an fsync (SQLite) or a durable
commit's round trip (PostgreSQL); the workers' intents are therefore committed in groups:
whoever asks while a commit is under way joins the next one, and each caller returns only
once its own intent is on disk.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batch_payouts.payout.ledger_db import Connection
from batch_payouts.payout.ledger_steps import LedgerSteps, Step
from batch_payouts.payout.records import Intent


class IntentJournal(LedgerSteps):
    """The group commit of intents, on top of the ledger's steps."""

    def __init__(self, location: str | Path) -> None:
        super().__init__(location)
        # Waiting intents, and whether a commit is under way.
        self._intents_due: list[_IntentTicket] = []
        self._intents_guard = threading.Lock()
        self._committing_intents = False
        self._before_intents: list[Callable[[], Callable[[], None] | None]] = []
        # Set while a batch with several workers runs (``RowExecutor.preload``): see ``_commit_together``.
        self.gather_intents = False

    # -- intents: committed before the request, settled after --------------
    def begin_intent(
        self, *, batch_id: str, row_key: str, operation: str, idempotency_key: str, body: dict[str, Any],
        customer_id: str | None = None,
    ) -> Intent:
        """Commit that a request is about to be sent; returns the stored intent.

        When the intent already exists (a retry or a rerun), the *stored* body
        is returned, so the resent request is byte-for-byte the first one and
        Conekta's idempotency replay applies.  ``customer_id`` (a payout order's)
        is written to the row in the same step.

        A group commit: the intents of every worker that asks while a commit is
        under way are written together in the next one, one durable transaction
        and one fsync for all of them; each call still returns only once its own
        intent is on disk, so nothing is sent before its intent is durable.
        """
        return self.begin_intents(batch_id=batch_id, operation=operation,
                                  requests=[(row_key, idempotency_key, body)], customer_id=customer_id)[0]

    def begin_intents(self, *, batch_id: str, operation: str, requests: list[tuple[str, str, dict[str, Any]]],
                      customer_id: str | None = None) -> list[Intent]:
        """``begin_intent`` for several requests at once, (row_key, idempotency_key, body) each:
        all of them in one group commit, returned in order.  Lets a batch make the customer intents
        of its next rows durable with one fsync instead of one wait per row (``batch_reads``)."""
        tickets = [_IntentTicket((key, batch_id, row_key, operation,
                                  request_text(body)), customer_id, [])
                   for row_key, key, body in requests]
        if not tickets:
            return []
        if self.postgresql:  # this thread's deferred steps go with its first intent, whoever commits the group
            tickets[0].deferred = self._take_deferred()
        self._commit_together(tickets)
        return [ticket.stored for ticket in tickets]  # type: ignore[misc]

    def _commit_together(self, tickets: list[_IntentTicket]) -> None:
        """Queue ``tickets`` (appended at once, so they join the same group) and return once their
        group is committed; this thread commits it itself when no commit is under way."""
        ticket = tickets[0]
        with self._intents_guard:
            self._intents_due.extend(tickets)
            lead = not self._committing_intents
            self._committing_intents = True
        interrupted: BaseException | None = None
        while not lead:  # until its group is committed, or it is handed the next group to commit
            try:
                lead = ticket.wake.acquire()
            except KeyboardInterrupt as exc:  # raised once this ticket is settled: never left half-way
                interrupted = exc
        while not ticket.done:  # this thread commits the group waiting now (its own intents included)
            if self.gather_intents:
                # Let the workers about to ask join this group: the interpreter handed over once,
                # so a worker that has just had its answer reaches its own intent first.  On a disk
                # that syncs fast a group was otherwise nearly always one intent -- a commit, an
                # fsync of the ledger and one of the audit log for every row (issue 17).
                time.sleep(0)
            with self._intents_guard:
                group, self._intents_due = self._intents_due, []
            try:
                self._commit_intents(group)
            except BaseException as exc:
                for waiting in group:
                    waiting.error = exc
            with self._intents_guard:
                for waiting in group:
                    waiting.done = True
                # Intents that came meanwhile: the first of them commits the next group (one
                # thread woken, not every waiting one to find out whether it is its turn).
                following = self._intents_due[0] if self._intents_due else None
                self._committing_intents = following is not None
            for waiting in group:
                if waiting is not ticket:
                    waiting.wake.release()
            if following is not None:
                following.wake.release()
        if ticket.error is not None:
            self._put_back(ticket.deferred)
            raise ticket.error
        if interrupted is not None:
            raise interrupted

    def before_intents(self, step: Callable[[], Callable[[], None] | None]) -> None:
        """Run ``step`` before every durable commit of intents, and what it returns (if not None)
        once the commit is durable, before any of its intents is returned: the audit log writes
        its lines and starts their fsync, which runs beside the commit and is waited for after it
        (what was logged is on disk before the next request goes out).  An error in either fails
        the intents."""
        self._before_intents.append(step)

    def _commit_intents(self, group: list[_IntentTicket]) -> None:
        """Write a group of intents in one durable transaction (all of them, or none).

        SQLite: a new intent is not read back (its body is the text just written); a retry's or a
        rerun's is, since the body stored the first time is the one sent again.  PostgreSQL: the
        group's intents are one ``INSERT`` that returns them as stored (``RETURNING``), and their
        rows go ``in_flight`` by key (``_write_intents_returning``), after the steps
        their threads deferred; read only after the ``COMMIT``, the whole group travels as one
        message (``ledger_script``): as the workers wait for this commit, its round trip and
        statements are what they queue behind."""
        finishing = [finish for step in self._before_intents if (finish := step()) is not None]
        now = time.time()
        returned: list[Any] = []
        with self._transaction(durable=True, script=True) as conn:
            for ticket in group:
                self._write_deferred(conn, ticket.deferred)  # the steps its thread deferred, before its intent
                if not self.postgresql:
                    ticket.stored = self._write_intent(conn, ticket, now)
            if self.postgresql:
                returned = self._write_intents_returning(conn, group, now)
        if returned:
            stored = {intent.idempotency_key: intent
                      for cursor in returned for intent in (Intent.from_row(r) for r in cursor.fetchall())}
            for ticket in group:
                ticket.stored = stored[ticket.fields[0]]
        for finish in finishing:
            finish()

    def _write_intent(self, conn: Connection, ticket: _IntentTicket, now: float) -> Intent:
        """SQLite: one intent's statements; the intent as stored."""
        key, batch_id, row_key, operation, body_text = ticket.fields
        fresh = conn.execute(
            """INSERT INTO intents (idempotency_key, batch_id, row_key, operation, request_body, state, first_sent_at)
               VALUES (?,?,?,?,?, 'in_flight', ?) ON CONFLICT(idempotency_key) DO NOTHING""",
            (key, batch_id, row_key, operation, body_text, now),
        ).rowcount == 1
        if not fresh:  # a retry or a rerun: the body stored the first time is the one sent again
            conn.execute("UPDATE intents SET state='in_flight', attempts=attempts+1 WHERE idempotency_key=?", (key,))
            stored = conn.execute("SELECT operation, request_body FROM intents WHERE idempotency_key=?", (key,)).fetchone()
            operation, body_text = stored["operation"], stored["request_body"]
        self._mark_in_flight(conn, ticket, operation, now)
        # Decoded from the text stored (never the caller's dict), and that text sent as it is.
        return Intent(key, operation, json.loads(body_text), "in_flight", body_text)

    def _write_intents_returning(self, conn: Connection, group: list[_IntentTicket], now: float) -> list[Any]:
        """PostgreSQL: a group's intents in one statement, the cursor that returns them as stored
        (``RETURNING``), then each payout order's row ``in_flight`` (``_mark_in_flight``, as on
        SQLite).  A group that holds one key twice (PostgreSQL's upsert cannot touch a row twice
        in one statement) has its intents written one by one: a cursor each.

        The rows are marked one statement each, by primary key, not in one ``UPDATE ... FROM
        (VALUES ...)``: that join, prepared while a batch's table was still small, kept the plan
        made then -- a scan of the whole table -- for the rest of the run, so each group read
        every row written so far (4.1 million rows read for a batch of 6,000).  A lookup by key
        has no such plan, and the statements travel in the same round trip anyway."""
        if len({ticket.fields[0] for ticket in group}) < len(group):
            return [cursor for ticket in group for cursor in self._write_intents_returning(conn, [ticket], now)]
        values = ", ".join(["(?,?,?,?,?, 'in_flight', ?)"] * len(group))
        stored = conn.execute(
            f"""INSERT INTO intents (idempotency_key, batch_id, row_key, operation, request_body, state, first_sent_at)
                VALUES {values}
                ON CONFLICT(idempotency_key) DO UPDATE SET state='in_flight', attempts=intents.attempts+1
                RETURNING idempotency_key, operation, request_body, state""",
            tuple(item for ticket in group for item in (*ticket.fields, now)),
        )
        for ticket in group:
            self._mark_in_flight(conn, ticket, ticket.fields[3], now)
        return [stored]

    def _mark_in_flight(self, conn: Connection, ticket: _IntentTicket, operation: str, now: float) -> None:
        """A payout order's intent puts its row ``in_flight`` (with the customer it goes to)."""
        if operation != "payout_order":
            return
        _, batch_id, row_key, _, _ = ticket.fields
        if ticket.customer_id:
            conn.execute(
                "UPDATE rows SET state='in_flight', attempts=attempts+1, customer_id=?, updated_at=? "
                "WHERE batch_id=? AND row_key=?",
                (ticket.customer_id, now, batch_id, row_key),
            )
        else:
            conn.execute(
                "UPDATE rows SET state='in_flight', attempts=attempts+1, updated_at=? WHERE batch_id=? AND row_key=?",
                (now, batch_id, row_key),
            )

    def intent(self, idempotency_key: str, *, settled: bool = True) -> Intent | None:
        """The stored intent; ``settled=False``: without writing deferred steps first (the caller
        knows none concerns this key)."""
        found = self._query("SELECT * FROM intents WHERE idempotency_key=?", (idempotency_key,), settled=settled)
        if not found:
            return None
        return Intent.from_row(found[0])


class _IntentTicket:
    """One intent waiting for its group's commit, and what came of it.  On PostgreSQL it carries
    the steps its thread deferred (``LedgerSteps.flush``): written in the same transaction, just
    before the intent, so they land before it on the row whichever thread commits the group."""

    __slots__ = ("fields", "customer_id", "deferred", "done", "stored", "error", "wake")

    def __init__(self, fields: tuple, customer_id: str | None, deferred: list[Step]) -> None:
        self.fields = fields
        self.customer_id = customer_id
        self.deferred = deferred
        self.done = False
        self.stored: Intent | None = None
        self.error: BaseException | None = None
        self.wake = threading.Lock()  # held until the ticket's thread is to go on (released once)
        self.wake.acquire()


def request_text(body: dict[str, Any]) -> str:
    """A request body as an intent stores it and the client sends it (``Intent.request_text``):
    keys sorted, no spaces.  Sent as stored, the body is encoded once, never again for each
    attempt or resend (issue 17: encoding it twice was ~3% of a fast run's processor time)."""
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
