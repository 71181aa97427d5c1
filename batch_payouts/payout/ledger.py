"""The ledger: a journal (a SQLite file, or a PostgreSQL database a team shares) that makes every rerun safe.

Each row of a batch moves through explicit states, each move committed (a
running batch lets the moves that only record a result ride in its next
transaction: ``flush``)::

    pending -> in_flight -> created | failed | unknown
    pending -> duplicate                      (the repeat guard)

``in_flight`` is committed *before* the request is sent, together with the
exact request body and its Idempotency-Key (the *intent*); the result is
committed after.  A crash between the two leaves the row ``in_flight``, which
a rerun treats like ``unknown``: look the order up, else resend the same body
with the same key.  Nothing here knows about HTTP or spreadsheets, and the API
key itself is never stored: only a one-way fingerprint that tells keys apart.

On SQLite one connection is shared by all workers behind a lock (the file has one
writer at a time anyway), and its WAL journal keeps readers (``status``, ``show``) from
blocking a running batch.  On PostgreSQL each worker's step takes a connection of its own
from a small pool (``ledger_db.Database.session``), so the steps of several workers -- and
their network round trips -- overlap instead of queueing; PostgreSQL never blocks readers.

The tables, their migrations and the safe opening live in ``ledger_schema``; the
connection on either engine (``?`` placeholders, rows by column name) in ``ledger_db``;
the records read back (rows, intents) in ``records``.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from batch_payouts import clock, ledger_address
from batch_payouts.errors import TryLater
from batch_payouts.i18n import catalogue
from batch_payouts.ledger_address import LEDGER_ENV  # noqa: F401 - where it was always imported from
from batch_payouts.payout.ledger_db import Connection, Record
from batch_payouts.payout.ledger_open import open_database
from batch_payouts.payout.ledger_schema import APPLICATION_ID
from batch_payouts.payout.records import BatchRecord, EarlierPayout, Intent, LedgerRow
from batch_payouts.states import Counts, sql_group_sums
from batch_payouts.storage import DiskFull, is_disk_full

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


def key_fingerprint(api_key: str) -> str:
    """A one-way tag that tells API keys (and so accounts and modes) apart."""
    return hashlib.sha256(b"batch-payouts key fingerprint\0" + api_key.encode()).hexdigest()[:16]


def default_ledger_path() -> ledger_address.Location:
    """``BATCH_PAYOUTS_LEDGER`` (a path or a URL), else the file in the user's data folder."""
    return ledger_address.resolve(None)


class Ledger:
    """The journal of a team's batches (or one machine's, on SQLite); see the module docstring."""

    def __init__(self, location: str | Path) -> None:
        self.location = ledger_address.resolve(location)
        self.postgresql = ledger_address.is_server(self.location)
        self.name = ledger_address.display(self.location)  # for messages: never a password
        self.path = ledger_address.local_anchor(self.location)  # the file, or this host's stand-in for it
        self._lock = threading.RLock()
        self._db = open_database(self.location)  # refuses a foreign file, creates or upgrades the tables
        self._held_locks: set[str] = set()
        self._lock_connections: dict[str, Any] = {}  # PostgreSQL: batch -> the session holding its advisory lock
        # Group commit of intents (``begin_intent``): waiting intents, and whether a commit is under way.
        self._intents_due: list[_IntentTicket] = []
        self._intents_guard = threading.Lock()
        self._committing_intents = False
        self._before_intents: list[Callable[[], None]] = []
        # Steps a batch lets wait for the next transaction (``later=True``; see ``flush``).
        self._deferred: list[tuple[str, tuple]] = []
        self._deferred_lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            try:
                for batch_id in list(self._held_locks):
                    self.release_lock(batch_id)
                self.flush()
            finally:  # a lock left behind (disk full) names this process: the next run takes it over
                for held in self._lock_connections.values():
                    held.close()
                self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self, durable: bool = False, *, single: bool = False, together: bool = False) -> Iterator[Connection]:
        """One atomic step.  ``durable`` waits for the disk (SQLite ``synchronous=FULL``,
        PostgreSQL ``synchronous_commit=on``).

        Only intents need that: an intent lost to a power cut could let a rerun
        treat a sent request as never sent.  Any other step lost that way is
        recovered by the rerun (an ``in_flight`` row is looked up at Conekta),
        so those commit with ``NORMAL`` (``synchronous_commit=off``) -- still atomic
        and crash-safe, at a fraction of the cost (see benchmarks/).

        The connection yielded takes portable SQL with ``?`` placeholders and returns
        rows readable by column name or position, on both engines (``ledger_db``).

        ``single``: the step is one statement (PostgreSQL sends it alone, in autocommit);
        ``together``: writes to different tables, results unread (PostgreSQL: one statement).
        Both spare PostgreSQL's ``BEGIN`` and ``COMMIT``, which are most of a short step's cost.

        Steps deferred with ``later=True`` (SQLite only) are written first, in the order they
        were deferred, in the same transaction (and put back if it fails).
        """
        with self._serial():
            with self._deferred_lock:
                steps, self._deferred = self._deferred, []
            if steps:
                single = together = False
            try:
                with self._db.transaction(durable=durable, single=single, together=together) as conn:
                    for sql, params in steps:
                        conn.execute(sql, params)
                    yield conn
            except BaseException as exc:
                if steps:
                    with self._deferred_lock:
                        self._deferred[:0] = steps
                if isinstance(exc, Exception) and is_disk_full(exc):  # rolled back: the ledger is as it was before it
                    raise DiskFull(self.path, "ledger") from exc
                raise

    def _serial(self) -> Any:
        """SQLite: the lock every step takes (one connection for all threads).  PostgreSQL: none,
        each thread's step has a connection of its own (``ledger_db.Database.session``)."""
        return _NO_LOCK if self.postgresql else self._lock

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection for reads outside any step (several statements, no transaction); the
        deferred steps are written first, so the reads see them."""
        self.flush()
        with self._serial(), self._db.session() as conn:
            yield conn

    def _defers(self, later: bool) -> bool:
        """Whether a ``later`` step waits for the next transaction: only on SQLite, where every
        commit costs page writes to the one file.  On PostgreSQL each worker has its own
        connection, so a deferred step could ride in another worker's transaction and land after
        that worker's own next step on the same row; there it is written at once (cheaply:
        ``single``/``together``, no ``BEGIN``/``COMMIT``)."""
        return later and not self.postgresql

    def _defer(self, sql: str, params: tuple) -> None:
        with self._deferred_lock:
            self._deferred.append((sql, params))

    def flush(self) -> None:
        """Write the steps deferred with ``later=True`` now (nothing to do when there are none).

        Why defer: a batch settles each request in a transaction of its own, and on SQLite every
        commit rewrites the pages it touched (table and indexes) into the WAL: ~5 commits per row
        were most of a run's CPU.  A step that only *settles* what an intent started (the customer
        or order created, a new row ``pending``) can instead ride in the next transaction of any
        worker -- usually the next group commit of intents, within milliseconds -- and at the latest
        in ``flush``.  Lost to a crash, such a step is recovered as a power cut's is today: the row
        is still ``in_flight`` (or absent), so the rerun looks the order up before anything is sent.
        Intents are never deferred, and nothing is on PostgreSQL (``_defers``)."""
        if self._deferred:
            with self._transaction():
                pass

    def drop_deferred(self) -> None:
        """Forget deferred steps that cannot be written (a full disk): a rerun recovers them (``flush``)."""
        with self._deferred_lock:
            self._deferred = []

    def _query(self, sql: str, params: tuple = (), *, settled: bool = True) -> list[Record]:
        """A read; ``settled`` (the default) writes the deferred steps first, so it sees them."""
        if settled:
            self.flush()
        with self._serial():
            return self._db.query(sql, params)

    # -- the run lock -----------------------------------------------------
    def acquire_lock(self, batch_id: str, wait: float = 0.0) -> None:
        """Refuse a second run of the same batch while the first is alive (after waiting up to
        ``wait`` seconds for it to finish: ``--wait-lock``).

        SQLite: the lock is a ledger row naming the holder's host and pid; a holder that died
        (kill -9, power cut) is detected and its lock taken over, so a crash never blocks the
        batch forever.  PostgreSQL: a session-level advisory lock held by a connection of its
        own, which the server releases the moment that session ends -- a killed process, a
        host that lost power (TCP keepalives) -- whatever host it ran on; the row still names
        the holder for whoever is refused.
        """
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                if self.postgresql:
                    self._take_advisory_lock(batch_id)
                else:
                    self._take_lock_row(batch_id)
                break
            except TryLater:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(min(0.2, max(0.01, deadline - time.monotonic())))
        self._held_locks.add(batch_id)

    def _refusal(self, batch_id: str, held: Record | None) -> TryLater:
        return TryLater(
            TEXT.LOCKED,
            batch_id=batch_id[:12],
            pid=held["pid"] if held else "?",
            operator=held["operator"] if held else "?",
            host=held["host"] if held else "?",
            since=clock.time_text(held["acquired_at"]) if held else "?",
        )

    def _write_holder(self, conn: Connection, batch_id: str) -> None:
        conn.execute(
            """INSERT INTO locks (batch_id, pid, host, operator, acquired_at) VALUES (?,?,?,?,?)
               ON CONFLICT (batch_id) DO UPDATE SET pid=excluded.pid, host=excluded.host,
                   operator=excluded.operator, acquired_at=excluded.acquired_at""",
            (batch_id, os.getpid(), socket.gethostname(), operator_name(), time.time()),
        )

    def _take_lock_row(self, batch_id: str) -> None:
        me = (os.getpid(), socket.gethostname())
        with self._transaction() as conn:
            held = conn.execute("SELECT * FROM locks WHERE batch_id=?", (batch_id,)).fetchone()
            if held and (held["pid"], held["host"]) != me and _holder_alive(held["pid"], held["host"]):
                raise self._refusal(batch_id, held)
            self._write_holder(conn, batch_id)

    def _take_advisory_lock(self, batch_id: str) -> None:
        if batch_id in self._lock_connections:
            return  # this Ledger holds it already (session locks nest; one is enough)
        session = self._db.connect()  # a driver connection of its own, outside the pool
        try:
            got = session.execute("SELECT pg_try_advisory_lock(%s, %s)", _advisory_key(batch_id)).fetchone()[0]
        except BaseException:
            session.close()
            raise
        if not got:
            session.close()
            raise self._refusal(batch_id, next(iter(self._query("SELECT * FROM locks WHERE batch_id=?", (batch_id,))), None))
        self._lock_connections[batch_id] = session
        with self._transaction() as conn:  # the lock is ours: a row left by a killed holder is overwritten
            self._write_holder(conn, batch_id)

    def release_lock(self, batch_id: str) -> None:
        try:
            with self._transaction() as conn:
                conn.execute("DELETE FROM locks WHERE batch_id=? AND pid=? AND host=?", (batch_id, os.getpid(), socket.gethostname()))
        finally:
            session = self._lock_connections.pop(batch_id, None)
            if session is not None:
                session.close()  # ends the session: the server releases its advisory lock
            self._held_locks.discard(batch_id)

    # -- batches ----------------------------------------------------------
    def record_batch_start(
        self,
        *,
        batch_id: str,
        input_name: str,
        input_sha256: str,
        key_fp: str,
        api_base: str,
        rows_total: int,
    ) -> None:
        now = time.time()
        with self._transaction() as conn:
            conn.execute(
                """INSERT INTO batches (batch_id, input_name, input_sha256, key_fingerprint, api_base,
                       rows_total, operator, host, first_run_at, last_run_at)
                   VALUES (?,?,?,?,?,?,?,?,?,?)
                   ON CONFLICT(batch_id) DO UPDATE SET last_run_at=excluded.last_run_at,
                       runs=batches.runs+1, input_name=excluded.input_name""",
                (batch_id, input_name, input_sha256, key_fp, api_base, rows_total, operator_name(), socket.gethostname(), now, now),
            )

    def set_livemode(self, batch_id: str, livemode: bool) -> None:
        with self._transaction(single=True) as conn:
            conn.execute("UPDATE batches SET livemode=? WHERE batch_id=?", (int(livemode), batch_id))

    def batch(self, batch_id: str) -> BatchRecord | None:
        rows = self._query("SELECT * FROM batches WHERE batch_id=?", (batch_id,))
        return BatchRecord.from_row(rows[0]) if rows else None

    def known_mode(self, key_fp: str) -> bool | None:
        """LIVE (True) or TEST (False) as Conekta said for this key in any earlier batch; None if never seen."""
        found = self._query(
            "SELECT livemode FROM batches WHERE key_fingerprint=? AND livemode IS NOT NULL ORDER BY last_run_at DESC LIMIT 1",
            (key_fp,),
        )
        return bool(found[0]["livemode"]) if found else None

    def set_output(self, batch_id: str, output_path: Path, api_version: str) -> None:
        """Remember where the results sheet went, so commands can take that file as the batch's name."""
        with self._transaction(single=True) as conn:
            conn.execute(
                "UPDATE batches SET output_path=?, api_version=? WHERE batch_id=?",
                (str(Path(output_path).resolve()), api_version, batch_id),
            )

    def find_batch(self, reference: str) -> BatchRecord | None:
        """A batch by its id, a unique prefix of it (6+ characters), or its results sheet's path."""
        if Path(reference).exists():
            found = self._query(
                "SELECT * FROM batches WHERE output_path=? ORDER BY last_run_at DESC LIMIT 1",
                (str(Path(reference).resolve()),),
            )
            if found:
                return BatchRecord.from_row(found[0])
        exact = self.batch(reference)
        if exact is not None:
            return exact
        if len(reference) >= 6 and all(c in "0123456789abcdef" for c in reference.lower()):
            found = self._query("SELECT * FROM batches WHERE batch_id LIKE ? LIMIT 2", (reference.lower() + "%",))
            if len(found) == 1:
                return BatchRecord.from_row(found[0])
        return None

    def batches(self) -> list[BatchRecord]:
        """Every batch, newest first, with its rows counted per group of ``states`` (created,
        unconfirmed, failed, pending, duplicate) and the cents created per currency (never one sum
        of pesos and dollars).  Summed in SQL for speed, grouped by the one rule."""
        found = self._query(
            f"""SELECT b.*,
                      {sql_group_sums("r.state")}
               FROM batches b LEFT JOIN rows r ON r.batch_id = b.batch_id
               GROUP BY b.batch_id ORDER BY b.last_run_at DESC"""
        )
        created: dict[str, dict[str, int]] = {}
        for r in self._query(
            """SELECT batch_id, currency, SUM(amount) AS cents FROM rows WHERE state='created'
               GROUP BY batch_id, currency ORDER BY batch_id, MIN(row_number)"""
        ):
            created.setdefault(r["batch_id"], {})[r["currency"]] = int(r["cents"])
        groups = [name for name in Counts.__dataclass_fields__ if name in found[0].keys()] if found else []
        return [
            BatchRecord.from_row(r, counts=Counts(**{g: int(r[g]) for g in groups}),
                                 totals_created=created.get(r["batch_id"], {}))
            for r in found
        ]

    def update_order_status(
        self, batch_id: str, row_key: str, status: str, *, cancelled: bool = False
    ) -> None:
        """Record the payout order's latest status at Conekta (pending, cashed, expired, cancelled...)."""
        now = time.time()
        with self._transaction(single=True) as conn:
            fields: dict[str, Any] = {"order_status": status, "status_checked_at": now}
            if cancelled:
                fields["cancelled_at"] = now
            self._update_row(conn, batch_id, row_key, **fields)

    def payouts_between(self, since: float, until: float) -> list[dict[str, Any]]:
        """Every created payout in [since, until), with its batch's file, for month-end reports."""
        found = self._query(
            """SELECT r.*, b.input_name, b.input_sha256, b.livemode, b.operator
               FROM rows r JOIN batches b ON b.batch_id = r.batch_id
               WHERE r.state='created' AND r.created_at >= ? AND r.created_at < ?
               ORDER BY r.created_at, r.batch_id, r.row_number""",
            (since, until),
        )
        return [dict(r) for r in found]

    # -- the audit chain's head: lets `audit verify` notice a cut-off tail ----
    def audit_head(self, path: Path) -> dict[str, Any] | None:
        found = self._query("SELECT * FROM audit_heads WHERE path=?", (str(Path(path).resolve()),))
        return dict(found[0]) if found else None

    def set_audit_head(self, path: Path, batch_id: str, last_hash: str, lines: int) -> None:
        with self._transaction() as conn:
            conn.execute(
                """INSERT INTO audit_heads (path, batch_id, last_hash, lines, updated_at) VALUES (?,?,?,?,?)
                   ON CONFLICT (path) DO UPDATE SET batch_id=excluded.batch_id, last_hash=excluded.last_hash,
                       lines=excluded.lines, updated_at=excluded.updated_at""",
                (str(Path(path).resolve()), batch_id, last_hash, lines, time.time()),
            )

    # -- rows -------------------------------------------------------------
    def ensure_row(
        self,
        *,
        batch_id: str,
        row_key: str,
        row_number: int,
        email: str,
        amount: int,
        currency: str,
        reason: str,
        payout_fingerprint: str,
        later: bool = False,
    ) -> LedgerRow:
        """The row's journal entry, created ``pending`` on first sight.  ``later``: the caller knows
        the row is not in the ledger yet (a batch's new row): its insert is deferred (``flush``).
        On PostgreSQL the row as stored comes back with the ``INSERT`` itself (one statement, one
        round trip); SQLite reads it after (``RETURNING`` needs SQLite 3.35, newer than some
        systems' Python has)."""
        now = time.time()
        insert = (
            """INSERT INTO rows (batch_id, row_key, row_number, email, amount, currency, reason,
                   payout_fingerprint, state, updated_at)
               VALUES (?,?,?,?,?,?,?,?, 'pending', ?)
               ON CONFLICT(batch_id, row_key) DO UPDATE SET row_number=excluded.row_number""",
            (batch_id, row_key, row_number, email, amount, currency, reason, payout_fingerprint, now),
        )
        if self._defers(later):
            self._defer(*insert)
            return LedgerRow(batch_id, row_key, row_number, "pending", email, amount, currency, reason)
        with self._transaction(single=self.postgresql) as conn:
            if self.postgresql:
                found = conn.execute(insert[0] + " RETURNING *", insert[1]).fetchone()
            else:
                conn.execute(*insert)
                found = conn.execute("SELECT * FROM rows WHERE batch_id=? AND row_key=?", (batch_id, row_key)).fetchone()
        return LedgerRow.from_row(found)

    def row(self, batch_id: str, row_key: str) -> LedgerRow | None:
        found = self._query("SELECT * FROM rows WHERE batch_id=? AND row_key=?", (batch_id, row_key))
        return LedgerRow.from_row(found[0]) if found else None

    def row_states(self, batch_id: str) -> dict[str, str]:
        """row_key -> state for the whole batch: what planning needs, without loading every field."""
        with self._reading() as conn:
            return dict(conn.execute("SELECT row_key, state FROM rows WHERE batch_id=?", (batch_id,)))

    def outcome_rows(self, batch_id: str) -> dict[str, LedgerRow]:
        """row_key -> the row with only what its outcome shows (state, ids, reference, expiry, error):
        what a rerun needs of every row of the batch, at about half the memory of ``rows``."""
        with self._reading() as conn:
            cursor = conn.execute(
                """SELECT row_key, row_number, state, customer_id, payout_order_id, reference, expires_at,
                          error_code, error_message, error_params FROM rows WHERE batch_id=?""", (batch_id,))
            raw = cursor._cursor  # the driver's plain tuples: no Record per row
            found = LedgerRow.from_tuples([d[0] for d in raw.description], raw, batch_id=batch_id)
            return {row.row_key: row for row in found}

    def rows(self, batch_id: str) -> list[LedgerRow]:
        with self._reading() as conn:  # converted while streaming: never two copies of a large batch in memory
            cursor = conn.execute("SELECT * FROM rows WHERE batch_id=? ORDER BY row_number", (batch_id,))
            raw = cursor._cursor  # the driver's plain tuples: no Record per row (a rerun reads them all)
            return list(LedgerRow.from_tuples([d[0] for d in raw.description], raw))

    def _update_row(self, conn: Connection, batch_id: str, row_key: str, **fields: Any) -> None:
        conn.execute(*_row_update(batch_id, row_key, fields))

    def set_row_customer(self, batch_id: str, row_key: str, customer_id: str) -> None:
        with self._transaction(single=True) as conn:
            self._update_row(conn, batch_id, row_key, customer_id=customer_id)

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
        ticket = _IntentTicket(
            (idempotency_key, batch_id, row_key, operation, json.dumps(body, ensure_ascii=False, sort_keys=True)),
            customer_id,
        )
        with self._intents_guard:
            self._intents_due.append(ticket)
            lead = not self._committing_intents
            self._committing_intents = True
        interrupted: BaseException | None = None
        while not lead:  # until its group is committed, or it is handed the next group to commit
            try:
                lead = ticket.wake.acquire()
            except KeyboardInterrupt as exc:  # raised once this ticket is settled: never left half-way
                interrupted = exc
        while not ticket.done:  # this thread commits the group waiting now (its own intent included)
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
            raise ticket.error
        if interrupted is not None:
            raise interrupted
        assert ticket.stored is not None
        return ticket.stored

    def before_intents(self, step: Callable[[], None]) -> None:
        """Run ``step`` before every durable commit of intents (the audit log's fsync: what was
        logged is on disk before the next request goes out).  An error in it fails the intents."""
        self._before_intents.append(step)

    def _commit_intents(self, group: list[_IntentTicket]) -> None:
        """Write a group of intents in one durable transaction (all of them, or none).

        SQLite: a new intent is not read back (its body is the text just written); a retry's or a
        rerun's is, since the body stored the first time is the one sent again.  PostgreSQL: each
        intent comes back with its ``INSERT`` (``RETURNING``), read only after the ``COMMIT``: the
        whole group then travels in one round trip (``ledger_db``'s pipeline), and as the workers
        wait for this commit, its round trips are what they queue behind."""
        for step in self._before_intents:
            step()
        now = time.time()
        returned: list[tuple[_IntentTicket, Any]] = []
        with self._transaction(durable=True) as conn:
            for ticket in group:
                if self.postgresql:
                    returned.append((ticket, self._write_intent_returning(conn, ticket, now)))
                else:
                    ticket.stored = self._write_intent(conn, ticket, now)
        for ticket, cursor in returned:
            stored = cursor.fetchone()
            # Read back (never the caller's dict): the bytes sent are those a resend sends.
            ticket.stored = Intent(
                stored["idempotency_key"], stored["operation"], json.loads(stored["request_body"]), stored["state"]
            )

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
        # Decoded from the text stored (never the caller's dict): the bytes sent are those a resend sends.
        return Intent(key, operation, json.loads(body_text), "in_flight")

    def _write_intent_returning(self, conn: Connection, ticket: _IntentTicket, now: float) -> Any:
        """PostgreSQL: one intent's statements; the cursor that returns it as stored (``RETURNING``)."""
        key, batch_id, row_key, operation, body_text = ticket.fields
        stored = conn.execute(
            """INSERT INTO intents (idempotency_key, batch_id, row_key, operation, request_body, state, first_sent_at)
               VALUES (?,?,?,?,?, 'in_flight', ?)
               ON CONFLICT(idempotency_key) DO UPDATE SET state='in_flight', attempts=intents.attempts+1
               RETURNING idempotency_key, operation, request_body, state""",
            (key, batch_id, row_key, operation, body_text, now),
        )
        self._mark_in_flight(conn, ticket, operation, now)
        return stored

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
        r = found[0]
        return Intent(r["idempotency_key"], r["operation"], json.loads(r["request_body"]), r["state"])

    def _settle_intent(self, conn, idempotency_key: str, state: str, object_id=None, http_status=None, log_id=None) -> None:
        conn.execute(*_intent_settlement(idempotency_key, state, object_id, http_status, log_id))

    def _steps(self, steps: list[tuple[str, tuple]], later: bool) -> None:
        """Write ``steps`` (statement, parameters) in one transaction, or defer them (``later``, SQLite).
        Each is a write to a table of its own, results unread: on PostgreSQL one statement."""
        if self._defers(later):
            with self._deferred_lock:
                self._deferred.extend(steps)
            return
        with self._transaction(single=len(steps) == 1, together=len(steps) > 1) as conn:
            for sql, params in steps:
                conn.execute(sql, params)

    def record_customer(self, *, idempotency_key: str, key_fp: str, email: str, customer_id: str,
                        later: bool = False) -> None:
        """Settle a customer intent and remember the customer for this email and key
        (``later``: deferred, see ``flush``)."""
        self._steps([
            _intent_settlement(idempotency_key, "succeeded", object_id=customer_id, http_status=200),
            ("""INSERT INTO customers (key_fingerprint, email, customer_id, created_at) VALUES (?,?,?,?)
                ON CONFLICT (key_fingerprint, email) DO NOTHING""", (key_fp, email.lower(), customer_id, time.time())),
        ], later)

    def customer_for(self, key_fp: str, email: str, *, settled: bool = True) -> str | None:
        """The customer recorded for this email and key; ``settled=False``: as ``intent``."""
        found = self._query(
            "SELECT customer_id FROM customers WHERE key_fingerprint=? AND email=?", (key_fp, email.lower()),
            settled=settled,
        )
        return found[0]["customer_id"] if found else None

    def record_created(self, *, batch_id: str, row_key: str, idempotency_key: str | None, order: dict[str, Any],
                       later: bool = False) -> None:
        """The row's order exists (``later``: deferred, see ``flush``)."""
        steps = [_intent_settlement(idempotency_key, "succeeded", object_id=order.get("id"), http_status=200)
                 ] if idempotency_key else []
        steps.append(_row_update(batch_id, row_key, {
            "state": "created",
            "payout_order_id": order.get("id"),
            "reference": order.get("reference"),
            "expires_at": order.get("expires_at"),
            "order_status": order.get("status"),
            "customer_id": (order.get("customer_info") or {}).get("id"),
            "created_at": time.time(),  # our clock, so the repeat window never depends on theirs
            "error_code": None, "error_message": None, "error_params": None, "http_status": None, "log_id": None,
        }))
        self._steps(steps, later)

    def set_reference(self, batch_id: str, row_key: str, reference: str, expires_at: int | None = None) -> None:
        """A created order's reference, read after it was created without one (Conekta assigns
        it a moment later); the row's other fields, and its creation time, are left alone."""
        fields: dict[str, Any] = {"reference": reference}
        if expires_at is not None:
            fields["expires_at"] = expires_at
        with self._transaction(single=True) as conn:
            self._update_row(conn, batch_id, row_key, **fields)

    def record_failure(
        self,
        *,
        batch_id: str,
        row_key: str,
        idempotency_key: str | None,
        state: str,
        error_code: str,
        error_message: str,
        http_status: int | None = None,
        log_id: str | None = None,
        error_params: dict[str, Any] | None = None,
    ) -> None:
        """Settle a row as ``failed`` (Conekta said no), ``unknown`` (no usable
        answer) or back to ``pending`` (the request was certainly not carried out).

        ``error_params`` (stored as JSON) are what ``error_message`` was rendered
        from, so a later run in another language can render it again."""
        assert state in ("failed", "unknown", "pending")
        intent_state = {"failed": "failed", "unknown": "unknown", "pending": "failed"}[state]
        with self._transaction(together=True) as conn:
            if idempotency_key:
                self._settle_intent(conn, idempotency_key, intent_state, http_status=http_status, log_id=log_id)
            self._update_row(
                conn,
                batch_id,
                row_key,
                state=state,
                error_code=error_code,
                error_message=error_message,
                error_params=json.dumps(error_params, ensure_ascii=False) if error_params else None,
                http_status=http_status,
                log_id=log_id,
            )

    def record_duplicate(self, *, batch_id: str, row_key: str, message: str) -> None:
        with self._transaction(single=True) as conn:
            self._update_row(
                conn, batch_id, row_key, state="duplicate", error_code="repeat_payout", error_message=message
            )

    # -- the repeat guard ---------------------------------------------------
    def earlier_payout(
        self, *, payout_fingerprint: str, row_key: str, key_fp: str, since: float, exclude_batch: str
    ) -> EarlierPayout | None:
        """A payout already created in another batch for the same account that this row repeats.

        Either the same payment (email, amount, currency, reason) within the
        window, or -- whenever it happened -- the same folio: an ``external_id``
        is the user's own name for one payment, paid once whatever the file.
        """
        found = self._query(
            """SELECT r.batch_id, r.row_number, r.payout_order_id, r.reference, r.created_at
               FROM rows r JOIN batches b ON b.batch_id = r.batch_id
               WHERE r.state='created' AND b.key_fingerprint=? AND r.batch_id != ?
                 AND ((r.payout_fingerprint=? AND r.created_at >= ?)
                      OR (substr(?, 1, 2) = 'x:' AND r.row_key = ?))
               ORDER BY r.created_at LIMIT 1""",
            (key_fp, exclude_batch, payout_fingerprint, since, row_key, row_key),
            settled=False,  # other batches' rows: never among this run's deferred steps
        )
        if not found:
            return None
        r = found[0]
        return EarlierPayout(r["batch_id"], r["row_number"], r["payout_order_id"], r["reference"], r["created_at"])


def _row_update(batch_id: str, row_key: str, fields: dict[str, Any]) -> tuple[str, tuple]:
    """The UPDATE of some of a row's fields (and its ``updated_at``)."""
    fields["updated_at"] = time.time()
    assignments = ", ".join(f"{name}=?" for name in fields)
    return f"UPDATE rows SET {assignments} WHERE batch_id=? AND row_key=?", (*fields.values(), batch_id, row_key)


def _intent_settlement(idempotency_key: str, state: str, object_id=None, http_status=None, log_id=None) -> tuple[str, tuple]:
    return ("UPDATE intents SET state=?, object_id=?, http_status=?, log_id=?, finished_at=? WHERE idempotency_key=?",
            (state, object_id, http_status, log_id, time.time(), idempotency_key))


_NO_LOCK = nullcontext()


class _IntentTicket:
    """One intent waiting for its group's commit, and what came of it."""

    __slots__ = ("fields", "customer_id", "done", "stored", "error", "wake")

    def __init__(self, fields: tuple, customer_id: str | None) -> None:
        self.fields = fields
        self.customer_id = customer_id
        self.done = False
        self.stored: Intent | None = None
        self.error: BaseException | None = None
        self.wake = threading.Lock()  # held until the ticket's thread is to go on (released once)
        self.wake.acquire()


def operator_name() -> str:
    """The OS user running the batch, for the ledger and the audit log."""
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers: not worth failing a batch
        return "unknown"


def _advisory_key(batch_id: str) -> tuple[int, int]:
    """PostgreSQL's two-int advisory key for a batch: our application id, and 32 bits of the id's hash."""
    digest = hashlib.sha256(batch_id.encode()).digest()
    return APPLICATION_ID + 1, int.from_bytes(digest[:4], "big", signed=True)


def _holder_alive(pid: int, host: str) -> bool:
    if host != socket.gethostname():
        return True  # cannot see another machine's processes: assume it runs
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
