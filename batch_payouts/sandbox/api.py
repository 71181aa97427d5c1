"""The Conekta operations themselves, apart from HTTP: create, read, list, cancel, balance.

Kept free of sockets and headers so that the rules of an order's life (a
reference is 16 unique digits, funds are held until the order is cancelled
or expires, a cashed order cannot be cancelled) read in one place.  Each
method takes the caller's *scope* (API key fingerprint) so one key never sees
another key's objects, and raises ``ApiFailure`` for any refusal.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from batch_payouts.sandbox import events, rules
from batch_payouts.sandbox.rules import ApiFailure, fail
from batch_payouts.sandbox.store import Store

DEFAULT_STARTING_BALANCE = 10_000_000_000  # cents: 100 million pesos
BALANCE_CURRENCY = "MXN"
# An order in one of these states can no longer be cancelled (428), nor move to any other status.
FINAL_STATUSES = frozenset({"cancelled", "cashed", "expired"})


class FinalStatus(Exception):
    """An order that is already cashed, expired or cancelled was asked to become something else."""

    def __init__(self, order: dict[str, Any], wanted: str) -> None:
        super().__init__(f"payout order {order['id']} is already {order['status']}; it cannot become {wanted}")
        self.order = order
        self.wanted = wanted


def _found(obj: dict[str, Any] | None, kind: str, obj_id: str) -> dict[str, Any]:
    """The object, or Conekta's 404: another key's object is as absent as one never created."""
    if obj is None:
        raise fail(404, rules.NOT_FOUND, rules.OBJECT_NOT_FOUND, kind=kind, id=obj_id)
    return obj


class ConektaApi:
    def __init__(self, store: Store, starting_balance: int | Mapping[str, int] = DEFAULT_STARTING_BALANCE) -> None:
        """``starting_balance``: cents of MXN, or cents per currency ({"MXN": ..., "USD": ...}) for an
        account that also holds dollars. Only a currency with a balance is checked for funds."""
        self.store = store
        self.starting_balances = (
            dict(starting_balance) if isinstance(starting_balance, Mapping) else {BALANCE_CURRENCY: starting_balance}
        )

    # -- customers -----------------------------------------------------------
    def create_customer(self, scope: str, livemode: bool, body: dict[str, Any]) -> dict[str, Any]:
        problems = rules.check_customer(body)
        if problems:
            raise ApiFailure(422, rules.PARAMETER, problems)
        phone = body.get("phone")
        customer = {
            "id": rules.new_customer_id(),
            "object": "customer",
            "livemode": livemode,
            "name": body["name"].strip(),
            "email": body["email"].strip(),
            "phone": phone,
            "created_at": int(time.time()),
            "corporate": bool(body.get("corporate", False)),
        }
        if isinstance(body.get("metadata"), dict):
            customer["metadata"] = body["metadata"]
        self.store.add_customer(scope, customer)
        return customer

    def get_customer(self, scope: str, customer_id: str) -> dict[str, Any]:
        return _found(self.store.get_customer(scope, customer_id), "customer", customer_id)

    # -- payout orders ---------------------------------------------------------
    def create_payout_order(self, scope: str, livemode: bool, body: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time())
        problems = rules.check_payout_order(body, now)
        if problems:
            raise ApiFailure(422, rules.PARAMETER, problems)
        customer_id = body["customer_info"]["customer_id"]
        customer = self.store.get_customer(scope, customer_id)
        if customer is None:
            # 404, not 422: the field is well formed, the object it names is unknown
            # (for this key) -- Conekta's resource_not_found_error.
            raise fail(404, rules.NOT_FOUND, rules.CUSTOMER_NOT_FOUND, id=customer_id)
        amount, currency = body["amount"], body["currency"]
        expires_at = body.get("expires_at") or now + rules.DEFAULT_EXPIRY_SECONDS
        order_id = str(uuid.uuid4())
        with self.store.atomic():  # the funds check and the hold are one step
            if currency in self.starting_balances and amount > self.available(scope, currency):
                raise fail(402, rules.PROCESSING, rules.INSUFFICIENT_FUNDS)
            reference = rules.new_reference()
            while self.store.reference_exists(reference):
                reference = rules.new_reference()
            order = {
                "id": order_id,
                "object": "payout_order",
                "livemode": livemode,
                "amount": amount,
                "currency": currency,
                "allowed_payout_methods": ["cashout"],
                "reason": body["reason"],
                "metadata": body.get("metadata") or {},
                "reference": reference,
                "status": "pending",
                "created_at": now,
                "updated_at": now,
                "expires_at": expires_at,
                "customer_info": {
                    "id": customer["id"],
                    "name": customer["name"],
                    "email": customer["email"],
                    "phone": customer.get("phone"),
                },
                "payouts": [
                    {
                        "id": rules.new_payout_id(),
                        "object": "payout",
                        "amount": amount,
                        "currency": currency,
                        "payout_order_id": order_id,
                        "expires_at": expires_at,
                        "status": "pending",
                        "livemode": livemode,
                    }
                ],
            }
            self.store.add_payout_order(scope, order)
            self.store.add_event(scope, events.order_created(order))
        return order

    def get_payout_order(self, scope: str, order_id: str) -> dict[str, Any]:
        return _found(self.store.get_payout_order(scope, order_id), "payout_order", order_id)

    def cancel_payout_order(self, scope: str, order_id: str) -> dict[str, Any]:
        with self.store.atomic():
            order = self.get_payout_order(scope, order_id)
            if order["status"] in FINAL_STATUSES:
                raise fail(428, rules.PRECONDITION, rules.CANNOT_CANCEL, status=order["status"])
            return self._set_status(scope, order, "cancelled")

    def set_status(self, order_id: str, status: str) -> dict[str, Any] | None:
        """Move an order as Conekta's back office would (cashed at the store, expired); None if
        unknown.  ``order_id`` may also be the order's reference.  A final status never changes
        again: asking for the same one changes nothing, asking for another raises ``FinalStatus``."""
        self.expire_due()  # an order past its time cannot be cashed any more: it expired
        with self.store.atomic():
            order_id = self.store.order_id_by_reference(order_id) or order_id
            scope = self.store.scope_of_order(order_id)
            if scope is None:
                return None
            order = self.store.get_payout_order(scope, order_id)
            if order["status"] == status:
                return order
            if order["status"] in FINAL_STATUSES:
                raise FinalStatus(order, status)
            return self._set_status(scope, order, status)

    def expire_due(self, now: float | None = None) -> list[dict[str, Any]]:
        """Expire every open order whose ``expires_at`` has passed, as Conekta does by itself: each
        gets ``expired`` and its ``cashout.expired`` event, both dated at its ``expires_at``.

        Called lazily before every API request and back-office move (so nobody ever sees an order
        open past its time) and by the background threads (so the webhook goes out even when
        nobody asks).  One index seek when nothing is due."""
        now = time.time() if now is None else now
        expired: list[dict[str, Any]] = []
        while due := self.store.due_expiries(now):
            for order_id in due:
                with self.store.atomic():
                    scope = self.store.scope_of_order(order_id)
                    order = self.store.get_payout_order(scope, order_id) if scope else None
                    if order is None or order["status"] in FINAL_STATUSES:
                        self.store.forget_expiry(order_id)
                        continue
                    expired.append(self._set_status(scope, order, "expired", at=int(order["expires_at"])))
        return expired

    def _set_status(self, scope: str, order: dict[str, Any], status: str, at: int | None = None) -> dict[str, Any]:
        """The one place an order changes status: the change and its event are one transaction.
        ``at``: when it happened (default now)."""
        when = int(time.time()) if at is None else at
        with self.store.atomic():
            previous = order["status"]
            order["status"] = status
            order["updated_at"] = max(when, order["created_at"])
            for payout in order.get("payouts") or []:
                payout["status"] = status
            self.store.update_payout_order(scope, order)
            self.store.add_event(scope, events.status_changed(order, previous, at=when))
        return order

    # -- lists -------------------------------------------------------------
    def list(self, table: str, scope: str, query: dict[str, str], base_url: str, path: str) -> dict[str, Any]:
        raw_limit = query.get("limit", str(rules.LIST_LIMIT_DEFAULT))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= rules.LIST_LIMIT_MAX:
            raise fail(422, rules.PARAMETER, rules.LIST_LIMIT)
        limit = int(raw_limit)
        search = query.get("search") or None
        after, before = query.get("next") or None, query.get("previous") or None
        result = self.store.page(table, scope, limit=limit, search=search, after=after, before=None if after else before)
        if result is None:
            raise fail(422, rules.PARAMETER, rules.cursor_rule("next" if after else "previous"))
        data, more = result
        backwards = bool(before and not after)

        def url(**cursor: str) -> str:
            params = {"limit": limit, **({"search": search} if search else {}), **cursor}
            return f"{base_url}{path}?{urlencode(params)}"

        has_next = (not backwards and more) or (backwards and bool(data))
        has_previous = (backwards and more) or (not backwards and bool(after) and bool(data))
        return {
            "object": "list",
            "has_more": more,
            "next_page_url": url(next=data[-1]["id"]) if has_next and data else None,
            "previous_page_url": url(previous=data[0]["id"]) if has_previous and data else None,
            "data": data,
        }

    def list_events(self, scope: str, query: dict[str, str], base_url: str, path: str) -> dict[str, Any]:
        """``GET /events``: newest first, paged like every list, each with its delivery state now."""
        page = self.list("events", scope, query, base_url, path)
        deliveries = self.store.deliveries_of([event["id"] for event in page["data"]])
        page["data"] = [events.shown(event, deliveries.get(event["id"], [])) for event in page["data"]]
        return page

    # -- webhook keys ------------------------------------------------------------
    def list_webhook_keys(self, scope: str, livemode: bool) -> dict[str, Any]:
        """``GET /webhook_keys``: the account's keys, newest first; one is made on first need."""
        self.signing_key(scope, livemode)
        return {"object": "list", "has_more": False, "next_page_url": None, "previous_page_url": None,
                "data": self.store.webhook_keys(scope)}

    def create_webhook_key(self, scope: str, livemode: bool) -> dict[str, Any]:
        """``POST /webhook_keys``: a new key signs from now on; the earlier ones are deactivated."""
        from batch_payouts.sandbox.webhooks import new_key_pair

        key, private_pem = new_key_pair(livemode)
        self.store.add_webhook_key(scope, key, private_pem, deactivated_at=key["created_at"])
        return key

    def signing_key(self, scope: str, livemode: bool = False) -> str:
        """The private PEM of the scope's active key, made (once, kept in the state) if it has none."""
        with self.store.atomic():
            found = self.store.active_webhook_key(scope)
            if found is None:
                from batch_payouts.sandbox.webhooks import new_key_pair

                key, private_pem = new_key_pair(livemode)
                self.store.add_webhook_key(scope, key, private_pem, deactivated_at=key["created_at"])
                return private_pem
            return found[1]

    # -- balance ---------------------------------------------------------------
    def available(self, scope: str, currency: str = BALANCE_CURRENCY) -> int:
        return self.starting_balances.get(currency, 0) - self.store.held(scope, currency)

    def balance(self, scope: str) -> dict[str, Any]:
        def money(amount_of: Any) -> list[dict[str, Any]]:
            return [{"amount": amount_of(currency), "currency": currency} for currency in self.starting_balances]

        def open_orders(currency: str) -> int:
            return self.store.held_by_status(scope, currency, ("pending", "open"))

        return {
            "object": "balance",
            "available": money(lambda currency: self.available(scope, currency)),
            "pending": money(lambda currency: 0),
            "retained": money(lambda currency: 0),
            # money set aside for references not yet cashed
            "cashout_retention_amount": money(open_orders),
        }
