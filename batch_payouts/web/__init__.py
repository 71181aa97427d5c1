"""The web app for finance teams: upload, review, confirm, watch, download.

A thin front over the same ``jobs``, ``ledger``, ``guards`` and ``operations``
the CLI uses -- never a second implementation of paying a row -- so a batch
started here keeps every exactly-once guarantee and shows up in ``batch-payouts
batches`` like any other.

Modules: ``app`` (the app and its routes), ``pages`` (what every page shares),
``review_pages`` (upload, review, confirm), ``batch_pages`` (batches, progress, cancelling),
``account`` (sign in, language), ``settings``, ``runs`` (background runs and their
progress), ``uploads`` (storing and checking uploaded files), ``security``
(passwords, sessions, CSRF, the size limit).
"""

from batch_payouts.web.app import create_app
from batch_payouts.web.settings import WebSettings

__all__ = ["WebSettings", "create_app"]
