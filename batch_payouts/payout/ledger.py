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

The tables, their migrations and the safe opening live in ``ledger_schema`` and
``ledger_open``; the connection on either engine (``?`` placeholders, rows by column name)
in ``ledger_db``; how a step reaches it (locking, deferral) in ``ledger_steps``; the group
commit of intents in ``intent_journal``; the batch's run lock in ``batch_locks``; the
records read back (rows, intents) in ``records``.  This module holds what the journal
says: batches, rows and their outcomes, customers, the repeat guard.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from batch_payouts import ledger_address
from batch_payouts.ledger_address import LEDGER_ENV  # noqa: F401 - where it was always imported from
from batch_payouts.payout.batch_locks import BatchLocks, operator_name
from batch_payouts.payout.intent_journal import IntentJournal
from batch_payouts.payout.ledger_steps import _intent_settlement, _row_update
from batch_payouts.payout.records import BatchRecord, EarlierPayout, LedgerRow
from batch_payouts.states import Counts, sql_group_sums

def key_fingerprint(api_key: str) -> str:
    """A one-way tag that tells API keys (and so accounts and modes) apart."""
    return hashlib.sha256(b"batch-payouts key fingerprint\0" + api_key.encode()).hexdigest()[:16]


def default_ledger_path() -> ledger_address.Location:
    """``BATCH_PAYOUTS_LEDGER`` (a path or a URL), else the file in the user's data folder."""
    return ledger_address.resolve(None)


class Ledger(IntentJournal, BatchLocks):
    """The journal of a team's batches (or one machine's, on SQLite); see the module docstring."""

    def close(self) -> None:
        with self._lock:
            try:
                for batch_id in list(self._held_locks):
                    self.release_lock(batch_id)
                self.flush_all()
            finally:  # a lock left behind (disk full) names this process: the next run takes it over
                for held in self._lock_connections.values():
                    held.close()
                self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
        if later:
            self._defer((insert,))
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

    def set_row_customer(self, batch_id: str, row_key: str, customer_id: str) -> None:
        with self._transaction(single=True) as conn:
            self._update_row(conn, batch_id, row_key, customer_id=customer_id)

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

    def customers_of(self, key_fp: str, emails: list[str]) -> dict[str, str]:
        """The customers recorded for this key and these emails, email (lower-cased) -> customer
        id: what ``customer_for`` answers for each, read for a whole batch at once (``batch_reads``)."""
        found: dict[str, str] = {}
        for chunk, marks in _in_chunks(sorted({email.lower() for email in emails})):
            found.update((r[0], r[1]) for r in self._query(
                f"SELECT email, customer_id FROM customers WHERE key_fingerprint=? AND email IN ({marks})",
                (key_fp, *chunk)))
        return found

    def intent_keys(self, batch_id: str, operation: str) -> set[str]:
        """The Idempotency-Keys of the batch's intents of one operation (any state)."""
        with self._reading() as conn:
            return {key for (key,) in conn.execute(
                "SELECT idempotency_key FROM intents WHERE batch_id=? AND operation=?", (batch_id, operation))._cursor}

    def settle_unsent(self, idempotency_keys: list[str], *, later: bool = False) -> None:
        """Intents committed ahead for requests that were then never sent (the batch stopped, or
        the row turned out a repeat): ``failed``, what an intent certainly not carried out is, so
        a rerun sends them without looking first.  Only intents still ``in_flight``."""
        now = time.time()
        for chunk, marks in _in_chunks(idempotency_keys):
            self._steps([(f"""UPDATE intents SET state='failed', finished_at=?
                              WHERE state='in_flight' AND idempotency_key IN ({marks})""",
                          (now, *chunk))], later)

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

    def earlier_payouts(
        self, *, key_fp: str, exclude_batch: str, fingerprints: list[str], row_keys: list[str]
    ) -> list[tuple[str, str, EarlierPayout]]:
        """``earlier_payout`` for a whole batch at once: every payout created in another batch of
        this key with one of ``fingerprints`` (any time: the caller applies the window) or one of
        ``row_keys`` (folios, ``x:``), as (fingerprint, row_key, payout)."""
        found: list[tuple[str, str, EarlierPayout]] = []
        for column, values in (("payout_fingerprint", sorted(set(fingerprints))),
                               ("row_key", sorted({k for k in row_keys if k.startswith("x:")}))):
            for chunk, marks in _in_chunks(values):
                rows = self._query(
                    f"""SELECT r.payout_fingerprint, r.row_key, r.batch_id, r.row_number, r.payout_order_id,
                              r.reference, r.created_at
                       FROM rows r JOIN batches b ON b.batch_id = r.batch_id
                       WHERE r.state='created' AND b.key_fingerprint=? AND r.batch_id != ?
                         AND r.{column} IN ({marks})""",
                    (key_fp, exclude_batch, *chunk), settled=False,
                )
                found.extend((r[0], r[1], EarlierPayout(r[2], r[3], r[4], r[5], r[6])) for r in rows)
        return found

    def watch_changes(self) -> ChangeWatch:
        """What tells the repeat guard's batch-wide read it may still be trusted: ``count()``
        changes once another connection may have created a payout since this call.  SQLite: the
        file's ``PRAGMA data_version`` (it changes when, and only when, another connection commits
        to the file; this process's own commits leave it alone).  PostgreSQL: the notices of rows
        another connection has made created (``ledger_notices``).  Either is asked at most every
        50 ms (``_AskedSeldom``): a change is seen a moment after its commit.  ``close()`` when
        done."""
        if self.postgresql:
            notices = self._db.created_notices()
            return _AskedSeldom(notices.count, notices.close)
        return _AskedSeldom(self._data_version)

    def _data_version(self) -> int:
        with self._lock:
            return self._db.conn.dbapi.execute("PRAGMA data_version").fetchone()[0]


class ChangeWatch(Protocol):
    def count(self) -> int: ...

    def close(self) -> None: ...


class _AskedSeldom:
    """A ``ChangeWatch`` that asks the engine's own (``count``) at most every ``FRESH_FOR`` seconds.

    The repeat guard asks before every row.  On SQLite asking is ``PRAGMA data_version``, a read
    transaction of its own with its lock calls on the WAL index (asked at most every 50 ms, a
    2,000-row one-worker run makes 3,378 of its 16,781 lock calls fewer; issue 17); on
    PostgreSQL, a read of the listener's socket.  Asked at most every 50 ms, a payout another connection creates is seen at most that
    long after its commit -- PostgreSQL's notices arrive "a moment after" it anyway
    (``ledger_notices`` argues why that is enough for the guard, which was never a lock: another
    run may always create the same payout just after the guard looked)."""

    FRESH_FOR = 0.05

    def __init__(self, count: Callable[[], int], close: Callable[[], None] | None = None) -> None:
        self._ask, self._close = count, close
        self._value = count()
        self._asked = time.monotonic()

    def count(self) -> int:
        now = time.monotonic()
        if now - self._asked >= self.FRESH_FOR:  # workers racing here each ask: harmless
            self._value, self._asked = self._ask(), now
        return self._value

    def close(self) -> None:
        if self._close is not None:
            self._close()


def _in_chunks(values: list[Any]) -> Iterator[tuple[list[Any], str]]:
    """``values`` 500 at a time, each chunk with its ``IN (...)`` placeholders: SQLite's limit on
    a statement's parameters is 999 in older versions."""
    for start in range(0, len(values), 500):
        chunk = values[start:start + 500]
        yield chunk, ",".join("?" * len(chunk))
