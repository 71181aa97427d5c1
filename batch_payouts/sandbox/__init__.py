"""A Conekta emulator ("sandbox"): a real HTTP server on loopback, with faults on demand.

Tests and demos need a Conekta that can be made to fail on purpose -- lose an
answer after creating an order, stall, rate-limit, revoke a key -- and then be
inspected.  ``Sandbox`` is that server, usable from Python (``with Sandbox()
as sb: sb.url``) or from the CLI (``batch-payouts sandbox serve``, which calls
``serve_forever``).  Standard library only, but for ``cryptography`` (the webhook signatures).

After creation it plays the other side too: beneficiaries cash references
(``sb.cash(reference)``, ``batch-payouts sandbox cash``, or ``auto_settle``), every
change is an event (``GET /events``), and events are POSTed, signed, to
``webhook_urls``.

Modules: ``server`` (auth, idempotency, fault application, admin routes),
``transport`` (HTTP connections, bodies, answers), ``api`` (the
Conekta operations), ``rules`` (validation, messages, error shape, ids),
``store`` (SQLite state), ``faults`` (what goes wrong, and when),
``events`` (what an event says), ``webhooks`` (keys, signatures, deliveries),
``auto`` (orders cashed and expired by themselves).
"""

from batch_payouts.sandbox.api import DEFAULT_STARTING_BALANCE, FinalStatus
from batch_payouts.sandbox.auto import AutoSettle
from batch_payouts.sandbox.faults import FAULT_KINDS, Faults, FaultsError
from batch_payouts.sandbox.serve import serve_forever
from batch_payouts.sandbox.server import Sandbox

__all__ = ["DEFAULT_STARTING_BALANCE", "FAULT_KINDS", "AutoSettle", "Faults", "FaultsError", "FinalStatus", "Sandbox",
           "serve_forever"]
