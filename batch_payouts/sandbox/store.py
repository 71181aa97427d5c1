"""The sandbox's memory: customers, payout orders, idempotent answers, revoked keys, and what
happens after creation: events, webhook keys and webhook deliveries.

SQLite, because the state must survive a restart when ``state_path`` is given
(so a killed client can be re-run against the same "Conekta"), must stay fast
at tens of thousands of orders (one indexed row per write, never a whole file
rewritten), and comes with Python.  One connection guarded by one re-entrant
lock: requests are short, and a single writer makes every multi-step change
(create the order + reserve funds + remember the idempotent answer) atomic.

Data is scoped by a *fingerprint* of the API key (SHA-256), never the key
itself: a state file must not leak a secret.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Statuses whose amount is still out of the available balance.  A cancelled or
# expired reference can no longer be cashed, so its money is available again.
RELEASED_STATUSES = frozenset({"cancelled", "expired"})
# Statuses of an order that can still be cashed -- and so can still expire when its time comes.
OPEN_STATUSES = frozenset({"pending", "open"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    search TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS customers_by_scope ON customers (scope, seq);
CREATE TABLE IF NOT EXISTS payout_orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    reference TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount INTEGER NOT NULL,
    search TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS payout_orders_by_scope ON payout_orders (scope, seq);
CREATE TABLE IF NOT EXISTS held_funds (
    scope TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount INTEGER NOT NULL,
    PRIMARY KEY (scope, currency)
);
CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE TABLE IF NOT EXISTS revoked_keys (fingerprint TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    type TEXT NOT NULL,
    search TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_scope ON events (scope, seq);
CREATE TABLE IF NOT EXISTS webhook_keys (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    active INTEGER NOT NULL,
    private_pem TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    event_id TEXT NOT NULL,
    url TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at REAL NOT NULL,
    last_http_status INTEGER,
    last_attempted_at INTEGER,
    PRIMARY KEY (event_id, url)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
"""
# The open orders and when each expires, so that finding those past their time is one index
# seek on every API request, never a scan of every order.  Kept apart from ``_SCHEMA`` so that
# a state file from before it gets the table filled from its open orders once.
_EXPIRIES = """
CREATE TABLE order_expiries (order_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE INDEX order_expiries_due ON order_expiries (expires_at);
INSERT INTO order_expiries (order_id, expires_at)
    SELECT id, CAST(json_extract(body, '$.expires_at') AS INTEGER) FROM payout_orders
    WHERE status IN ('pending', 'open') AND json_extract(body, '$.expires_at') IS NOT NULL;
"""

TABLES = {"customers", "payout_orders", "events"}


def fingerprint(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def search_text(*values: Any) -> str:
    """The lower-cased fields a ``search`` matches, one per line so no match spans two."""
    parts = []
    for value in values:
        if value is None:
            continue
        parts.append(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True))
    return "\n".join(p.replace("\n", " ") for p in parts).lower()


class Store:
    """Thread-safe access to the sandbox state (``path=None``: in memory)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            str(self.path) if self.path else ":memory:", check_same_thread=False, isolation_level=None
        )
        self._depth = 0
        if self.path:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        with self.atomic():
            if self._one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'order_expiries'") is None:
                for statement in _EXPIRIES.split(";"):
                    if statement.strip():
                        self._db.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction (nested calls join the outer one)."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outer:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._db.execute("COMMIT")

    def _one(self, sql: str, args: tuple = ()) -> Any:
        with self._lock:
            return self._db.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple = ()) -> list:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- customers -----------------------------------------------------------
    def add_customer(self, scope: str, customer: dict[str, Any]) -> None:
        search = search_text(customer["id"], customer.get("name"), customer.get("email"), customer.get("phone"))
        with self.atomic():
            self._db.execute(
                "INSERT INTO customers (id, scope, search, body) VALUES (?, ?, ?, ?)",
                (customer["id"], scope, search, _dump(customer)),
            )

    def get_customer(self, scope: str | None, customer_id: str) -> dict[str, Any] | None:
        return self._get("customers", scope, customer_id)

    # -- payout orders ---------------------------------------------------------
    def reference_exists(self, reference: str) -> bool:
        return self._one("SELECT 1 FROM payout_orders WHERE reference = ?", (reference,)) is not None

    def add_payout_order(self, scope: str, order: dict[str, Any]) -> None:
        metadata = order.get("metadata") or {}
        search = search_text(
            order["id"], order["reference"], order.get("reason"),
            (order.get("customer_info") or {}).get("email"), *metadata.values(),
        )
        with self.atomic():
            self._db.execute(
                "INSERT INTO payout_orders (id, scope, reference, status, currency, amount, search, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (order["id"], scope, order["reference"], order["status"], order["currency"], order["amount"],
                 search, _dump(order)),
            )
            if order["status"] not in RELEASED_STATUSES:
                self._hold(scope, order["currency"], order["amount"])
            if order["status"] in OPEN_STATUSES and order.get("expires_at") is not None:
                self._db.execute("INSERT INTO order_expiries (order_id, expires_at) VALUES (?, ?)",
                                 (order["id"], int(order["expires_at"])))

    def get_payout_order(self, scope: str | None, order_id: str) -> dict[str, Any] | None:
        return self._get("payout_orders", scope, order_id)

    def order_id_by_reference(self, reference: str) -> str | None:
        row = self._one("SELECT id FROM payout_orders WHERE reference = ?", (reference,))
        return row[0] if row else None

    def scope_of_order(self, order_id: str) -> str | None:
        row = self._one("SELECT scope FROM payout_orders WHERE id = ?", (order_id,))
        return row[0] if row else None

    def update_payout_order(self, scope: str, order: dict[str, Any]) -> None:
        """Write back an order whose ``status`` (and times) changed; move funds if needed."""
        with self.atomic():
            row = self._one("SELECT status FROM payout_orders WHERE id = ? AND scope = ?", (order["id"], scope))
            if row is None:
                raise KeyError(order["id"])
            was_held = row[0] not in RELEASED_STATUSES
            now_held = order["status"] not in RELEASED_STATUSES
            self._db.execute(
                "UPDATE payout_orders SET status = ?, body = ? WHERE id = ?",
                (order["status"], _dump(order), order["id"]),
            )
            if was_held != now_held:
                self._hold(scope, order["currency"], order["amount"] if now_held else -order["amount"])
            if order["status"] not in OPEN_STATUSES:
                self._db.execute("DELETE FROM order_expiries WHERE order_id = ?", (order["id"],))

    def due_expiries(self, now: float, limit: int = 500) -> list[str]:
        """Ids of open orders whose ``expires_at`` is ``now`` or earlier, the earliest first."""
        rows = self._all("SELECT order_id FROM order_expiries WHERE expires_at <= ? ORDER BY expires_at LIMIT ?",
                         (now, limit))
        return [r[0] for r in rows]

    def forget_expiry(self, order_id: str) -> None:
        with self.atomic():
            self._db.execute("DELETE FROM order_expiries WHERE order_id = ?", (order_id,))

    def _hold(self, scope: str, currency: str, amount: int) -> None:
        self._db.execute(
            "INSERT INTO held_funds (scope, currency, amount) VALUES (?, ?, ?)"
            " ON CONFLICT (scope, currency) DO UPDATE SET amount = amount + excluded.amount",
            (scope, currency, amount),
        )

    def held(self, scope: str, currency: str) -> int:
        row = self._one("SELECT amount FROM held_funds WHERE scope = ? AND currency = ?", (scope, currency))
        return int(row[0]) if row else 0

    def held_by_status(self, scope: str, currency: str, statuses: tuple[str, ...]) -> int:
        marks = ",".join("?" * len(statuses))
        row = self._one(
            f"SELECT COALESCE(SUM(amount), 0) FROM payout_orders WHERE scope = ? AND currency = ? AND status IN ({marks})",
            (scope, currency, *statuses),
        )
        return int(row[0])

    # -- lists -------------------------------------------------------------
    def page(
        self, table: str, scope: str, *, limit: int, search: str | None = None,
        after: str | None = None, before: str | None = None,
    ) -> tuple[list[dict[str, Any]], bool] | None:
        """Newest first, like Conekta.  ``after`` (the ``next`` cursor) = older than
        that id; ``before`` (``previous``) = newer than it.  Returns (items, has_more)
        or None if the cursor id is unknown in this scope."""
        assert table in TABLES
        where = ["scope = ?"]
        args: list[Any] = [scope]
        if search:
            where.append("instr(search, ?) > 0")
            args.append(search.lower())
        order = "DESC"
        cursor = after or before
        if cursor:
            row = self._one(f"SELECT seq FROM {table} WHERE id = ? AND scope = ?", (cursor, scope))
            if row is None:
                return None
            where.append("seq < ?" if after else "seq > ?")
            args.append(row[0])
            if before:
                order = "ASC"
        rows = self._all(
            f"SELECT body FROM {table} WHERE {' AND '.join(where)} ORDER BY seq {order} LIMIT ?",
            (*args, limit + 1),
        )
        items = [json.loads(r[0]) for r in rows[:limit]]
        if order == "ASC":
            items.reverse()
        return items, len(rows) > limit

    def all(self, table: str, scope: str | None = None) -> list[dict[str, Any]]:
        """Every object in creation order (the Python and admin views)."""
        assert table in TABLES
        if scope is None:
            rows = self._all(f"SELECT body FROM {table} ORDER BY seq")
        else:
            rows = self._all(f"SELECT body FROM {table} WHERE scope = ? ORDER BY seq", (scope,))
        return [json.loads(r[0]) for r in rows]

    def _get(self, table: str, scope: str | None, object_id: str) -> dict[str, Any] | None:
        if scope is None:
            row = self._one(f"SELECT body FROM {table} WHERE id = ?", (object_id,))
        else:
            row = self._one(f"SELECT body FROM {table} WHERE id = ? AND scope = ?", (object_id, scope))
        return json.loads(row[0]) if row else None

    # -- idempotency ---------------------------------------------------------
    def idempotent_answer(self, scope: str, key: str) -> tuple[str, int, dict[str, Any]] | None:
        row = self._one("SELECT request_hash, status, body FROM idempotency WHERE scope = ? AND key = ?", (scope, key))
        return (row[0], int(row[1]), json.loads(row[2])) if row else None

    def remember_answer(self, scope: str, key: str, request_hash: str, status: int, body: dict[str, Any]) -> None:
        with self.atomic():
            self._db.execute(
                "INSERT INTO idempotency (scope, key, request_hash, status, body) VALUES (?, ?, ?, ?, ?)",
                (scope, key, request_hash, status, _dump(body)),
            )

    # -- events ------------------------------------------------------------------
    def add_event(self, scope: str, event: dict[str, Any]) -> None:
        order = event["data"]["object"]
        search = search_text(event["id"], event["type"], order.get("id"), order.get("reference"))
        with self.atomic():
            self._db.execute(
                "INSERT INTO events (id, scope, type, search, body) VALUES (?, ?, ?, ?, ?)",
                (event["id"], scope, event["type"], search, _dump(event)),
            )

    def events_after(self, seq: int, limit: int = 500) -> list[tuple[int, str, dict[str, Any]]]:
        """(seq, scope, event) of every scope, oldest first, recorded after ``seq`` -- by this
        process or another one writing the same state file."""
        rows = self._all("SELECT seq, scope, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
        return [(int(r[0]), r[1], json.loads(r[2])) for r in rows]

    def last_event_seq(self) -> int:
        return int(self._one("SELECT COALESCE(MAX(seq), 0) FROM events")[0])

    def event_scope(self, event_id: str) -> tuple[str, dict[str, Any]] | None:
        row = self._one("SELECT scope, body FROM events WHERE id = ?", (event_id,))
        return (row[0], json.loads(row[1])) if row else None

    # -- webhook keys ------------------------------------------------------------
    def webhook_keys(self, scope: str) -> list[dict[str, Any]]:
        """The public side of every key of a scope, newest first."""
        rows = self._all("SELECT body FROM webhook_keys WHERE scope = ? ORDER BY seq DESC", (scope,))
        return [json.loads(r[0]) for r in rows]

    def active_webhook_key(self, scope: str) -> tuple[dict[str, Any], str] | None:
        """(public body, private PEM) of the newest active key of a scope."""
        row = self._one("SELECT body, private_pem FROM webhook_keys WHERE scope = ? AND active = 1"
                        " ORDER BY seq DESC LIMIT 1", (scope,))
        return (json.loads(row[0]), row[1]) if row else None

    def add_webhook_key(self, scope: str, key: dict[str, Any], private_pem: str, deactivated_at: int) -> None:
        """A new active key; the scope's earlier keys stop signing (``active`` false from now)."""
        with self.atomic():
            for (key_id, body) in self._all("SELECT id, body FROM webhook_keys WHERE scope = ? AND active = 1",
                                            (scope,)):
                old = {**json.loads(body), "active": False, "deactivated_at": deactivated_at}
                self._db.execute("UPDATE webhook_keys SET active = 0, body = ? WHERE id = ?", (_dump(old), key_id))
            self._db.execute(
                "INSERT INTO webhook_keys (id, scope, active, private_pem, body) VALUES (?, ?, 1, ?, ?)",
                (key["id"], scope, private_pem, _dump(key)),
            )

    # -- webhook deliveries ------------------------------------------------------
    def add_delivery(self, event_id: str, url: str, due: float) -> None:
        """Queue one event for one URL (again: a redelivery starts its attempts over)."""
        with self.atomic():
            self._db.execute(
                "INSERT INTO webhook_deliveries (event_id, url, status, attempts, next_attempt_at)"
                " VALUES (?, ?, 'pending', 0, ?) ON CONFLICT (event_id, url) DO UPDATE SET"
                " status = 'pending', attempts = 0, next_attempt_at = excluded.next_attempt_at",
                (event_id, url, due),
            )

    def due_deliveries(self, now: float, limit: int = 50) -> list[tuple[str, str, int, float]]:
        """(event id, url, attempts so far, when it was due) of pending deliveries due by ``now``,
        oldest due first."""
        rows = self._all(
            "SELECT event_id, url, attempts, next_attempt_at FROM webhook_deliveries WHERE status = 'pending'"
            " AND next_attempt_at <= ? ORDER BY next_attempt_at, rowid LIMIT ?", (now, limit))
        return [(r[0], r[1], int(r[2]), float(r[3])) for r in rows]

    def next_delivery_due(self) -> float | None:
        row = self._one("SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'")
        return float(row[0]) if row and row[0] is not None else None

    def record_attempt(self, event_id: str, url: str, *, status: str, attempts: int, next_attempt_at: float,
                       http_status: int | None, at: int, scheduled: float | None = None) -> None:
        """The outcome of the attempt that was due at ``scheduled``.  If the delivery was queued
        again meanwhile (a redelivery while this attempt was on the wire), that newer one stands:
        it is still pending, and this outcome only fills in the last answer."""
        with self.atomic():
            changed = self._db.execute(
                "UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_http_status = ?,"
                " last_attempted_at = ? WHERE event_id = ? AND url = ?"
                + (" AND next_attempt_at = ?" if scheduled is not None else ""),
                (status, attempts, next_attempt_at, http_status, at, event_id, url,
                 *((scheduled,) if scheduled is not None else ())),
            ).rowcount
            if not changed:
                self._db.execute("UPDATE webhook_deliveries SET last_http_status = ?, last_attempted_at = ?"
                                 " WHERE event_id = ? AND url = ?", (http_status, at, event_id, url))

    def deliveries_of(self, event_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Event id -> its deliveries (url, status, attempts, last HTTP status and time)."""
        if not event_ids:
            return {}
        marks = ",".join("?" * len(event_ids))
        rows = self._all(
            "SELECT event_id, url, status, attempts, last_http_status, last_attempted_at FROM webhook_deliveries"
            f" WHERE event_id IN ({marks}) ORDER BY url", tuple(event_ids))
        found: dict[str, list[dict[str, Any]]] = {}
        for event_id, url, status, attempts, http_status, at in rows:
            found.setdefault(event_id, []).append({"url": url, "status": status, "attempts": int(attempts),
                                                   "last_http_status": http_status, "last_attempted_at": at})
        return found

    def pending_deliveries(self) -> int:
        return int(self._one("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'")[0])

    # -- revoked keys ----------------------------------------------------------
    def revoke(self, scope: str) -> None:
        with self.atomic():
            self._db.execute("INSERT OR IGNORE INTO revoked_keys (fingerprint) VALUES (?)", (scope,))

    def is_revoked(self, scope: str) -> bool:
        return self._one("SELECT 1 FROM revoked_keys WHERE fingerprint = ?", (scope,)) is not None


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
