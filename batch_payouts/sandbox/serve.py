"""``batch-payouts sandbox serve``: the emulator as a process of its own, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from batch_payouts.sandbox.api import DEFAULT_STARTING_BALANCE
from batch_payouts.sandbox.auto import AutoSettle
from batch_payouts.sandbox.faults import Faults
from batch_payouts.sandbox.server import Sandbox
from batch_payouts.sandbox.webhooks import DEFAULT_ATTEMPTS, DEFAULT_BACKOFF


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8765,
    faults: Faults | dict[str, Any] | None = None,
    state_path: str | Path | None = None,
    keys: Iterable[str] | None = None,
    starting_balance: int = DEFAULT_STARTING_BALANCE,
    webhook_urls: Iterable[str] = (),
    webhook_attempts: int = DEFAULT_ATTEMPTS,
    webhook_backoff: float = DEFAULT_BACKOFF,
    auto_settle: AutoSettle | None = None,
) -> None:
    """Serve until Ctrl-C (or SIGTERM).  The first stdout line is the URL, so a
    script or test can start ``batch-payouts sandbox serve --port 0`` and read it."""
    sandbox = Sandbox(host=host, port=port, keys=keys, faults=faults, state_path=state_path,
                      starting_balance=starting_balance, webhook_urls=webhook_urls,
                      webhook_attempts=webhook_attempts, webhook_backoff=webhook_backoff,
                      auto_settle=auto_settle).start()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        print(sandbox.url, flush=True)
        print(f"Conekta sandbox on {sandbox.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
