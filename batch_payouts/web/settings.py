"""The web server's settings: how it reaches Conekta, where it keeps its files, who may use it.

Apart from the pages so the CLI (``batch-payouts web``) can build them without importing Starlette.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from batch_payouts.payout.conekta import is_loopback
from batch_payouts.rules.columns import DEFAULT_API_VERSION
from batch_payouts.rules.columns import DEFAULT_MAX_AMOUNT_CENTS


@dataclass
class WebSettings:
    """How the server reaches Conekta, where it keeps its files, and who may use it."""

    data_dir: Path
    ledger_path: Path | str  # a SQLite file or a PostgreSQL URL (ledger_address)
    lang: str = "es"
    host: str = "127.0.0.1"
    api_base: str | None = None
    api_version: str = DEFAULT_API_VERSION
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    users: dict[str, str] = field(default_factory=dict)
    trust_user_header: str | None = None
    max_upload_bytes: int = 20 * 1024 * 1024
    keep_uploads_days: float = 30.0
    amount_unit: str = "cents"
    workers: int = 8
    rate_limit: float | None = None
    live: bool = False
    max_total: int | None = None
    max_amount: int | None = DEFAULT_MAX_AMOUNT_CENTS  # cents per row, as `run` (rules/columns.py); None: no cap
    # How long the upload request waits for its review: a small file's review is shown at once, a
    # large one's page says it is being reviewed (and refreshes itself) while the review goes on.
    review_wait_seconds: float = 3.0
    # The PEM public key webhook deliveries are checked with; None: the account's key from GET /webhook_keys.
    webhook_public_key: Path | None = None
    initial_backoff: float = 0.5  # first wait before retrying a request (tests shorten it; see RunOptions)
    # Sign-in hardening (issue 15): failures allowed per user and per address before a lock of
    # ``lock_minutes``, and the inactivity after which a session ends.
    lock_after: int = 5
    lock_minutes: float = 15.0
    idle_minutes: float = 30.0
    team: bool = False  # the ledger has users (team.users): sign-in and roles come from it (set by WebApp)

    @property
    def on_sandbox(self) -> bool:
        """Conekta is never on this machine: an API address on loopback is the built-in emulator
        (``batch-payouts web --sandbox``), where nothing is paid; every page says so."""
        host = urlsplit(self.api_base or "").hostname
        return bool(host) and is_loopback(host)

    @property
    def login_required(self) -> bool:
        return bool(self.users) or self.team or bool(self.trust_user_header) or not is_loopback(self.host)

