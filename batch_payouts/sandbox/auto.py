"""The sandbox's beneficiaries: a share of new orders cashed, another expired, after a delay.

For demos (``make web``) and tests of what happens after a batch: with
``cash=0.6, expire=0.2, after=60`` about six orders in ten are cashed and two
expire, each between one and two minutes after it was created (spread, so a
batch's page fills in over time rather than all at once); the rest stay
pending.  The fate and the delay of the Nth order this sandbox sees created
depend only on ``seed`` and N, so a run can be replayed.

It watches the events (``payout_order.created``) rather than hooking the API, so
it also settles orders another process created on the same state file, and an
order already cancelled by the time it is due is left alone (a final status
never changes).
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from batch_payouts.sandbox import events
from batch_payouts.sandbox.api import FinalStatus

if TYPE_CHECKING:
    from batch_payouts.sandbox.webhooks import Deliverer

    from batch_payouts.sandbox.api import ConektaApi

_POLL = 0.25


class AutoSettleError(ValueError):
    pass


@dataclass(frozen=True)
class AutoSettle:
    """Shares (0..1, together at most 1) of new orders to cash and to expire, ``after`` seconds
    (spread over [after, 2 x after]) from their creation; ``seed`` makes the choice repeatable."""

    cash: float = 0.0
    expire: float = 0.0
    after: float = 60.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("cash", "expire"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise AutoSettleError(f"auto {name} share must be between 0 and 1, not {value}")
        if self.cash + self.expire > 1 + 1e-9:
            raise AutoSettleError(f"auto cash and expire shares add up to more than 1 ({self.cash} + {self.expire})")
        if self.after < 0:
            raise AutoSettleError(f"auto delay must be 0 seconds or more, not {self.after}")

    @property
    def active(self) -> bool:
        return self.cash > 0 or self.expire > 0

    def fate(self, n: int) -> tuple[str | None, float]:
        """(status or None to leave it pending, delay in seconds) of the ``n``-th order seen."""
        draw = random.Random(f"{self.seed}:{n}")
        roll = draw.random()
        delay = self.after * (1 + draw.random())
        if roll < self.cash:
            return "cashed", delay
        if roll < self.cash + self.expire:
            return "expired", delay
        return None, delay


class AutoSettler:
    """The thread that applies ``AutoSettle`` to every order created while it runs."""

    def __init__(self, api: ConektaApi, settings: AutoSettle, deliverer: Deliverer | None = None) -> None:
        self.api = api
        self.settings = settings
        self.deliverer = deliverer
        self._seen = api.store.last_event_seq()
        self._count = 0
        self._due: list[tuple[float, int, str, str]] = []  # (when, n, order id, status)
        self._applied: list[dict] = []
        self._applying = False
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="conekta-sandbox-auto", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def poke(self) -> None:
        self._wake.set()

    @property
    def applied(self) -> list[dict]:
        """What it did: order_id, status, n, at (or skipped: why)."""
        with self._lock:
            return [dict(entry) for entry in self._applied]

    def busy(self) -> bool:
        """Orders still waiting for their fate (or having it applied right now), or created and not
        yet looked at.  Events first, for the reason ``Deliverer.busy`` gives."""
        if self.api.store.last_event_seq() > self._seen:
            return True
        with self._lock:
            return bool(self._due) or self._applying

    def step(self, now: float | None = None) -> None:
        """One round of the thread: look at the orders created since the last one, then apply
        every fate due by ``now`` (default: the present)."""
        self.api.expire_due()
        self._schedule_new_orders()
        self._apply_due(time.time() if now is None else now)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.step()
            except Exception:  # noqa: BLE001 - a busy state file must not end the demo
                pass
            with self._lock:
                next_due = self._due[0][0] if self._due else None
            wait = _POLL if next_due is None else min(_POLL, max(0.0, next_due - time.time()))
            self._wake.wait(wait)
            self._wake.clear()

    def _schedule_new_orders(self) -> None:
        while True:
            found = self.api.store.events_after(self._seen)
            if not found:
                return
            for seq, _scope, event in found:
                if event["type"] == events.CREATED:
                    self._count += 1
                    status, delay = self.settings.fate(self._count)
                    if status is not None:
                        with self._lock:
                            heapq.heappush(self._due, (event["created_at"] + delay, self._count,
                                                       event["data"]["object"]["id"], status))
                self._seen = seq  # after its fate is in ``_due``: ``busy`` never misses it

    def _apply_due(self, now: float) -> None:
        while True:
            with self._lock:
                if not self._due or self._due[0][0] > now:
                    return
                _when, n, order_id, status = heapq.heappop(self._due)
                self._applying = True  # out of ``_due``, its event not written yet: still busy
            entry = {"order_id": order_id, "status": status, "n": n, "at": time.time()}
            try:
                self.api.set_status(order_id, status)
            except FinalStatus as final:
                entry["skipped"] = f"already {final.order['status']}"
            finally:
                with self._lock:
                    self._applied.append(entry)
                    self._applying = False
            if self.deliverer is not None:
                self.deliverer.poke()
