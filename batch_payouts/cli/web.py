"""``batch-payouts web`` (the app for finance teams) and ``batch-payouts hash-password``.

Registered on the ``batch-payouts`` group by importing this module (see the
last lines of ``cli.py``).  The app itself is in ``batch_payouts.web``.
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from pathlib import Path

import click

from batch_payouts.cli.console import _fail
from batch_payouts.cli.main import PesosType, lang_option, main, timezone_option
from batch_payouts.cli.config import CONFIG_META, config_option
from batch_payouts.payout.conekta import API_KEY_ENV
from batch_payouts.rules.columns import DEFAULT_API_VERSION
from batch_payouts.errors import BatchError
from batch_payouts.rules.columns import DEFAULT_MAX_AMOUNT_PESOS
from batch_payouts import ledger_address
from batch_payouts.i18n import catalogue
from batch_payouts.ledger_address import LedgerParam

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

# platformdirs, the ledger and ``jobs`` are imported by the commands below when they run:
# registering them must cost the other commands (`batch-payouts validate`) nothing.


def default_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(os.environ.get("BATCH_PAYOUTS_DATA_DIR") or user_data_dir("batch-payouts", appauthor=False)) / "web"


def configured_users(ctx: click.Context) -> dict[str, str]:
    users = ((ctx.meta.get(CONFIG_META) or {}).get("web") or {}).get("users") or {}
    for name, stored in users.items():
        if not isinstance(stored, str) or not stored.startswith("scrypt$"):
            raise BatchError(TEXT.BAD_USERS, user=name)
    return dict(users)


def _built_in_sandbox(state: Path, host: str, port: int, auto_cash: float, auto_expire: float, auto_after: float,
                      seed: int | None):
    """The emulator ``web --sandbox`` pays through: its state beside the ledger, its webhooks
    delivered to this app's own receiver, and (if asked) references cashed and expired by themselves."""
    from batch_payouts.sandbox import AutoSettle, Sandbox
    from batch_payouts.sandbox.auto import AutoSettleError

    try:
        auto = AutoSettle(cash=auto_cash, expire=auto_expire, after=auto_after, seed=seed)
    except AutoSettleError as problem:
        raise BatchError(TEXT.BAD_SANDBOX_AUTO, problem=str(problem)) from None
    state.parent.mkdir(parents=True, exist_ok=True)
    loopback = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{loopback}]" if ":" in loopback else loopback
    return Sandbox(state_path=state, webhook_urls=[f"http://{shown}:{port}{WEBHOOK_PATH}"], auto_settle=auto)


# Where the app receives Conekta's webhooks (the built-in sandbox delivers there).
WEBHOOK_PATH = "/webhooks/conekta"


@main.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback requires a login.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--sandbox/--no-sandbox", help="Pay through the built-in Conekta emulator (no key needed).")
@click.option("--sandbox-auto-cash", type=float, default=0.0, show_default=True,
              help="With --sandbox: share (0 to 1) of new references the emulator cashes by itself.")
@click.option("--sandbox-auto-expire", type=float, default=0.0, show_default=True,
              help="With --sandbox: share (0 to 1) of new references the emulator expires by itself.")
@click.option("--sandbox-auto-after", type=float, default=60.0, show_default=True,
              help="With --sandbox: seconds after creation before that happens (spread up to twice as long).")
@click.option("--sandbox-seed", type=int, default=None, help="With --sandbox: seed of that choice, to replay it.")
@click.option("--api-base", help="Conekta API address (also CONEKTA_API_BASE). Default https://api.conekta.io.")
@click.option("--api-version", default=DEFAULT_API_VERSION, show_default=True, help="Conekta API version.")
@click.option("--ledger", "ledger_path", type=LedgerParam(),
              help="Ledger file or postgresql://user@host:port/db (also BATCH_PAYOUTS_LEDGER); the same one the CLI uses.")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where uploads and results are kept (also BATCH_PAYOUTS_DATA_DIR; default: the user data folder).")
@lang_option
@click.option("--amount-unit", type=click.Choice(["cents", "pesos"]), default="cents", show_default=True,
              help="The unit pre-selected on the upload page.")
@click.option("--workers", type=click.IntRange(1, 64), default=8, show_default=True, help="Rows sent at the same time.")
@click.option("--rate-limit", type=click.FloatRange(min=0.1), default=None, help="Requests per second, all workers together.")
@click.option("--max-total", type=PesosType(), default=None, help="Refuse batches above this much in any one currency.")
@click.option("--max-amount", type=PesosType(), default=str(DEFAULT_MAX_AMOUNT_PESOS), show_default=True,
              help="Rows above this many pesos are invalid; raise it for larger rows (e.g. 50000).")
@click.option("--live/--no-live", help="Allow a LIVE key (real money); without it the app refuses to pay with one.")
@click.option("--max-upload-mb", type=click.IntRange(1, 1024), default=20, show_default=True, help="Largest upload accepted.")
@click.option("--keep-uploads-days", type=click.FloatRange(min=0), default=30, show_default=True,
              help="Delete uploaded files and their reviews older than this when the server starts.")
@click.option("--trust-user-header", metavar="HEADER",
              help="Take the signed-in user from this header set by an authenticating reverse proxy.")
@click.option("--lock-after", type=click.IntRange(1), default=5, show_default=True,
              help="Failed sign-ins per user and per address before a lock.")
@click.option("--lock-minutes", type=click.FloatRange(min=0.1), default=15, show_default=True,
              help="How long a lock lasts (and the window the failures are counted in).")
@click.option("--idle-minutes", type=click.FloatRange(min=1), default=30, show_default=True,
              help="A signed-in session ends after this long without a request.")
@click.option("--webhook-public-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM file with Conekta's webhook public key (default: fetched once from GET /webhook_keys).")
@timezone_option
@click.pass_context
def web(ctx, host, port, sandbox, sandbox_auto_cash, sandbox_auto_expire, sandbox_auto_after, sandbox_seed, api_base, api_version, ledger_path, data_dir, lang, amount_unit, workers, rate_limit,
        max_total, max_amount, live, max_upload_mb, keep_uploads_days, trust_user_header, lock_after, lock_minutes,
        idle_minutes, webhook_public_key) -> None:
    """Serve the web app: upload, review, confirm, watch the run, download the results."""
    import uvicorn

    from batch_payouts.jobs.endpoint import SANDBOX_KEY, sandbox_state_path
    from batch_payouts.web import WebSettings, create_app

    ledger = ledger_address.resolve(ledger_path)
    environ = dict(os.environ)
    with ExitStack() as stack:
        try:
            if sandbox:
                api_base = stack.enter_context(_built_in_sandbox(
                    sandbox_state_path(ledger_address.local_anchor(ledger)), host, port, sandbox_auto_cash, sandbox_auto_expire, sandbox_auto_after,
                    sandbox_seed)).url
                environ[API_KEY_ENV] = SANDBOX_KEY
                click.echo(TEXT.SANDBOX_NOTE.format(lang), err=True)
            settings = WebSettings(
                data_dir=Path(data_dir) if data_dir else default_data_dir(), ledger_path=ledger, lang=lang, host=host,
                api_base=api_base, api_version=api_version, environ=environ, users=configured_users(ctx),
                trust_user_header=trust_user_header, max_upload_bytes=max_upload_mb * 1024 * 1024,
                keep_uploads_days=keep_uploads_days,
                amount_unit=amount_unit, workers=workers, rate_limit=rate_limit, live=live, max_total=max_total,
                max_amount=max_amount, lock_after=lock_after, lock_minutes=lock_minutes, idle_minutes=idle_minutes,
                webhook_public_key=webhook_public_key,
            )
            app = create_app(settings)
        except BatchError as error:
            _fail(error, lang)
        shown = f"[{host}]" if ":" in host else host
        click.echo(TEXT.LISTENING.format(lang, url=f"http://{shown}:{port}/"), err=True)
        uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=bool(trust_user_header))


@main.command("hash-password")
@click.option("--password-stdin/--no-password-stdin", help="Read the password from standard input (for scripts).")
def hash_password(password_stdin) -> None:
    """Print the hash of a password for the [web.users] table of the config file."""
    from batch_payouts.web.security import hash_password as make_hash

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Contraseña / Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.UsageError("La contraseña no puede estar vacía. / The password cannot be empty.")
    click.echo(make_hash(password))
