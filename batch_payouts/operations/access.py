"""Finding a batch in the ledger and opening the client that can see its orders.

A batch is queried with the key that created it: Conekta scopes orders by
account and mode, so another key would see none of them and every order would
look "missing".  The ledger keeps the key's one-way fingerprint to check that.
"""

from __future__ import annotations

import os
import socket
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


from batch_payouts import clock
from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue
from batch_payouts.jobs.endpoint import SANDBOX_KEY, resolve_endpoint, sandbox_state_path
from batch_payouts.payout.audit import AuditLog, audit_path_for, open_audit
from batch_payouts.payout.conekta import ClientConfig, ConektaClient, ConektaError
from batch_payouts.rules.columns import DEFAULT_API_VERSION
from batch_payouts.payout.ledger import Ledger, key_fingerprint, operator_name
from batch_payouts.payout.records import BatchRecord
from batch_payouts.payout.throttle import RateLimiter

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


def check_output(path: Path | None, allowed: tuple[str, ...] = (".xlsx", ".csv")) -> Path | None:
    """Refuse an output the sheet writer cannot produce before anything is sent or changed."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir() or path.suffix.lower() not in allowed:
        raise BatchError(TEXT.BAD_OUTPUT, path=str(path))
    return path


# -- opening a batch and its client ------------------------------------------------------------
def find_batch(ledger: Ledger, ref: str) -> BatchRecord:
    found = ledger.find_batch(str(ref))
    if found is None:
        raise BatchError(TEXT.UNKNOWN_BATCH, ref=ref, ledger=ledger.name)
    return found


@dataclass
class Connection:
    """How to reach the account that holds a batch's orders."""

    api_base: str | None = None
    api_version: str | None = None
    sandbox: bool = False
    rate_limit: float | None = None
    workers: int = 8
    lang: str = "es"
    max_retries: int = 4
    initial_backoff: float = 0.5


def open_client(
    stack: ExitStack, batch: BatchRecord, ledger: Ledger, conn: Connection,
    environ: dict[str, str] | None = None, command: str | None = None,
) -> ConektaClient:
    """``open_audited_client`` without the audit log."""
    return open_audited_client(stack, batch, ledger, conn, environ, command)[0]


def open_audited_client(
    stack: ExitStack, batch: BatchRecord, ledger: Ledger, conn: Connection,
    environ: dict[str, str] | None = None, command: str | None = None,
) -> tuple[ConektaClient, AuditLog | None]:
    """The client for ``batch``: same key (checked by fingerprint), API base chosen as ``run`` does.

    A batch ``run --sandbox`` sent is recognisable by its key's fingerprint (the emulator's fixed
    key): it is queried on the built-in emulator, restarted on the state file kept beside the
    ledger, whether or not ``--sandbox`` was given -- asking for CONEKTA_API_KEY, or sending the
    demo's requests to the real API, would only fail.
    """
    env = os.environ if environ is None else environ
    ran_on_sandbox = key_fingerprint(SANDBOX_KEY) == batch.key_fingerprint
    if conn.sandbox and not ran_on_sandbox:
        raise BatchError(TEXT.SANDBOX_BATCH_ONLY, batch_id=batch.batch_id[:12], api_base=batch.api_base)
    use_sandbox = ran_on_sandbox and (conn.sandbox or conn.api_base is None)
    if use_sandbox and not sandbox_state_path(ledger.path).exists():
        raise BatchError(TEXT.SANDBOX_STATE_GONE, batch_id=batch.batch_id[:12], path=str(sandbox_state_path(ledger.path)))
    api_key, api_base = resolve_endpoint(
        stack, sandbox=use_sandbox, api_base=conn.api_base, ledger_path=ledger.path, environ=env
    )
    if key_fingerprint(api_key) != batch.key_fingerprint:
        raise BatchError(TEXT.OTHER_KEY, batch_id=batch.batch_id[:12])
    config = ClientConfig(
        api_key=api_key, api_base=api_base,
        api_version=conn.api_version or batch.api_version or DEFAULT_API_VERSION, lang=conn.lang,
        max_retries=conn.max_retries, pool_size=max(4, conn.workers * 2), initial_backoff=conn.initial_backoff,
    )
    audit = _open_audit(stack, batch, ledger, command)
    on_call = (lambda call: audit.api_call(**call)) if audit is not None else None
    client = stack.enter_context(ConektaClient(config, throttle=RateLimiter(conn.rate_limit), on_call=on_call))
    return client, audit


def _open_audit(stack: ExitStack, batch: BatchRecord, ledger: Ledger, command: str | None) -> AuditLog | None:
    """Calls made by ``status``/``cancel``/``reconcile`` go to the batch's audit log too,
    so an auditor sees every request about the batch's money, not only the run's."""
    if command is None or not batch.output_path:
        return None
    audit = open_audit(stack, ledger, audit_path_for(Path(batch.output_path)), batch.batch_id)
    audit.append({"type": "command_started", "command": command, "batch_id": batch.batch_id,
                  "operator": operator_name(), "host": socket.gethostname()})
    stack.callback(audit.append, {"type": "command_finished", "command": command})
    return audit


def key_refused(error: ConektaError) -> BatchError:
    return BatchError(TEXT.KEY_REFUSED, status=error.http_status, detail=error.message or error.type)


def now() -> float:
    return datetime.now().timestamp()


def time_text(unix_seconds: float | None) -> str:
    """ISO 8601 with its offset, in the zone of ``--timezone`` (default Mexico City), to the second."""
    return clock.time_text(unix_seconds)
