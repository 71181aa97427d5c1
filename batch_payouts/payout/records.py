"""What the ledger reads back: typed records instead of dicts of columns.

The ledger's ``batches`` table is read by the CLI, the web pages, the operations and
the reports. As a dict, a misspelt key (``batch["livemod"]``) failed only at run
time, on the one path that used it; as a frozen dataclass it fails at once, is
documented in one place, and no page can change it by accident.  A row's journal
entry (``LedgerRow``), a stored request (``Intent``) and a repeat found in another
batch (``EarlierPayout``) live here too, so the ``Ledger`` module holds only its API.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from batch_payouts.states import Counts

if TYPE_CHECKING:  # `batch-payouts --help` lists the commands that use it: no SQLite loaded for that
    import sqlite3


@dataclass(frozen=True)
class BatchRecord:
    """One row of the ledger's ``batches`` table (and, from ``Ledger.batches()``, its rows counted)."""

    batch_id: str
    input_name: str
    input_sha256: str
    key_fingerprint: str
    api_base: str
    livemode: bool | None  # None until an answer from Conekta told the account's mode
    rows_total: int
    operator: str
    host: str
    first_run_at: float
    last_run_at: float
    runs: int
    output_path: str | None = None  # the results sheet, once one was written
    api_version: str | None = None
    # Only in the listing (``Ledger.batches()``): rows per group, and the cents created per currency.
    counts: Counts = field(default_factory=Counts)
    totals_created: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: sqlite3.Row, **extra: object) -> BatchRecord:
        """The record from a ``SELECT * FROM batches`` row (extra columns of a join are ignored)."""
        columns = set(row.keys())
        values = {f.name: row[f.name] for f in fields(cls) if f.name in columns and f.name not in extra}
        if values.get("livemode") is not None:
            values["livemode"] = bool(values["livemode"])
        return cls(**values, **extra)  # type: ignore[arg-type]

    @property
    def short_id(self) -> str:
        """The first 12 characters: what people read and type."""
        return self.batch_id[:12]

    @property
    def amount_created(self) -> int:
        """Cents created in all currencies, for ``batches --json`` as scripts already read it.
        People are shown ``totals_created``, one figure per currency."""
        return sum(self.totals_created.values())


@dataclass(slots=True)  # a rerun of a large batch holds one per row: no per-instance dict
class LedgerRow:
    batch_id: str
    row_key: str
    row_number: int
    state: str
    email: str = ""
    amount: int = 0
    currency: str = ""
    reason: str = ""
    customer_id: str | None = None
    payout_order_id: str | None = None
    reference: str | None = None
    expires_at: int | None = None
    order_status: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    http_status: int | None = None
    log_id: str | None = None
    attempts: int = 0
    error_params: dict[str, Any] | None = None  # what the message is made of, to render it in any language
    created_at: float | None = None
    status_checked_at: float | None = None
    cancelled_at: float | None = None
    cashed_at: float | None = None  # when Conekta said the beneficiary withdrew it (event time)
    expired_at: float | None = None
    reissue_of: str | None = None  # this row pays again the expired row with this row_key (same batch)
    reissued_as: str | None = None  # this expired row was paid again by the row with this row_key

    @classmethod
    def from_tuples(
        cls, columns: Sequence[str], rows: Iterable[Sequence[Any]], **same: Any
    ) -> Iterator[LedgerRow]:
        """``from_row`` for a whole cursor of rows as plain tuples (``columns``: their names), at a
        fraction of its cost: the columns are matched to fields once, not by name per cell (a rerun
        of a 100,000-row batch reads every row: 2.6 million lookups by name).  ``same``: fields
        every row shares (one object, not a copy per row); a field neither read nor given keeps
        its default."""
        # Every field by position, in the class's order: a column read, else a value of ``same``,
        # else its default, all picked by one itemgetter from the record followed by those constants
        # (keyword arguments per row cost more than the rest of the conversion together).
        positions = {name: index for index, name in enumerate(columns)}
        constants: list[Any] = []
        order: list[int] = []
        for f in fields(cls):
            if f.name in positions:
                order.append(positions[f.name])
            else:
                if f.name not in same and f.default is MISSING:
                    raise TypeError(f"{cls.__name__}.from_tuples: no column, value or default for {f.name}")
                constants.append(same[f.name] if f.name in same else f.default)
                order.append(len(columns) + len(constants) - 1)
        pick = operator.itemgetter(*order)
        tail = tuple(constants)
        params = positions.get("error_params")
        for record in rows:
            row = cls(*pick(tuple(record) + tail))
            if params is not None:
                row.error_params = json.loads(record[params]) if record[params] else None
            yield row

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> LedgerRow:
        """The record from a ``SELECT * FROM rows`` row; ``error_params`` decoded from its JSON."""
        return cls(
            batch_id=r["batch_id"],
            row_key=r["row_key"],
            row_number=r["row_number"],
            state=r["state"],
            customer_id=r["customer_id"],
            payout_order_id=r["payout_order_id"],
            reference=r["reference"],
            expires_at=r["expires_at"],
            order_status=r["order_status"],
            error_code=r["error_code"],
            error_message=r["error_message"],
            http_status=r["http_status"],
            log_id=r["log_id"],
            attempts=r["attempts"],
            created_at=r["created_at"],
            email=r["email"],
            amount=r["amount"],
            currency=r["currency"],
            reason=r["reason"],
            status_checked_at=r["status_checked_at"],
            cancelled_at=r["cancelled_at"],
            error_params=json.loads(r["error_params"]) if r["error_params"] else None,
            cashed_at=r["cashed_at"],
            expired_at=r["expired_at"],
            reissue_of=r["reissue_of"],
            reissued_as=r["reissued_as"],
        )


@dataclass
class Intent:
    idempotency_key: str
    operation: str
    request_body: dict[str, Any]
    state: str
    request_text: str | None = None  # the stored text: what is sent, as it is (its UTF-8 bytes)

    @classmethod
    def from_row(cls, r: Any) -> Intent:
        """From the stored row: the body decoded from the text stored, never the caller's dict, and
        the text itself, which is what a resend sends: the bytes sent the first time."""
        text = r["request_body"]
        return cls(r["idempotency_key"], r["operation"], json.loads(text), r["state"], text)


@dataclass
class EarlierPayout:
    """A payout identical to a new row, already created in another batch."""

    batch_id: str
    row_number: int
    payout_order_id: str
    reference: str
    created_at: float
