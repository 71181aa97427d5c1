"""Where a command sends its requests: the built-in sandbox, or Conekta with the key from the environment.

Shared by `run`, the after-run commands (status, cancel, reconcile) and the web app, so a
batch that ran on the sandbox is followed up on the same sandbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path

from batch_payouts.payout.conekta import API_BASE_ENV, DEFAULT_API_BASE, api_key_from_env, check_api_base

SANDBOX_KEY = "key_test_sandbox_local"


def sandbox_state_path(ledger_path: Path) -> Path:
    """Where ``--sandbox`` keeps the emulator's customers and orders: beside the ledger that refers to them."""
    return ledger_path.with_name(ledger_path.stem + ".sandbox-state.sqlite")


def resolve_endpoint(
    stack: ExitStack, *, sandbox: bool, api_base: str | None, ledger_path: Path, environ: Mapping[str, str]
) -> tuple[str, str]:
    """(API key, API base) for a command: the built-in sandbox, or the key from the
    environment and ``--api-base`` / CONEKTA_API_BASE / the default, checked for https."""
    if sandbox:
        from batch_payouts.sandbox import Sandbox

        state = sandbox_state_path(ledger_path)
        state.parent.mkdir(parents=True, exist_ok=True)
        return SANDBOX_KEY, check_api_base(stack.enter_context(Sandbox(state_path=state)).url)
    api_key = api_key_from_env(environ)
    return api_key, check_api_base(api_base or environ.get(API_BASE_ENV) or DEFAULT_API_BASE)
