"""``batch-payouts sandbox``: the built-in Conekta emulator on its own (``serve``), and the
other side of a payout played by hand: ``cash``, ``expire``, ``cancel`` a reference.

Registered on the ``batch-payouts`` group when first asked for (``_LAZY_COMMANDS`` in
``cli/main.py``).  The emulator itself is ``batch_payouts.sandbox``.

``cash``/``expire``/``cancel`` reach the sandbox one of three ways: a running one over HTTP
(``--api-base``, its admin route), a state file (``--state``, as ``sandbox serve --state``
keeps it), or by default the state that ``run --sandbox`` and ``web --sandbox`` keep beside
the ledger -- written directly, so it works whether or not a ``web --sandbox`` is running (a
running one picks the change up and delivers its webhook).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from batch_payouts import exit_codes, states
from batch_payouts.cli.console import _fail
from batch_payouts.cli.main import lang_option, main
from batch_payouts.errors import BatchError
from batch_payouts.ledger_address import LedgerParam
from batch_payouts.i18n import catalogue

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


@main.group()
def sandbox() -> None:
    """The built-in Conekta emulator: serve it, or cash, expire and cancel its references by hand."""


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback).")
@click.option("--port", type=int, default=8765, show_default=True, help="Port (0 picks a free one).")
@click.option("--faults", "faults_path", type=click.Path(exists=True, path_type=Path),
              help="Fault profile (JSON or TOML): latency, error rates, rate limit, seed.")
@click.option("--fault", "fault_settings", multiple=True, metavar="NAME=VALUE",
              help="One fault setting, repeatable; overrides the profile. E.g. --fault error_rate=0.2 "
                   "--fault latency_ms=50 --fault 'script={\"2\": \"drop_after_commit\"}'.")
@click.option("--seed", type=int, default=None,
              help="Seed of the random faults and of the automatic mode, so a run can be replayed.")
@click.option("--state", "state_path", type=click.Path(path_type=Path),
              help="Keep customers, orders, events and webhook keys in this file across restarts.")
@click.option("--webhook-url", "webhook_urls", multiple=True, metavar="URL",
              help="POST every new event here, signed (header digest), with retries; repeatable.")
@click.option("--webhook-attempts", type=click.IntRange(1, 50), default=5, show_default=True,
              help="Attempts per delivery before its event is marked failing.")
@click.option("--webhook-backoff", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Seconds before the second attempt; doubled for each one after.")
@click.option("--auto-cash", type=float, default=0.0, show_default=True,
              help="Share (0 to 1) of new orders the sandbox cashes by itself after --auto-after.")
@click.option("--auto-expire", type=float, default=0.0, show_default=True,
              help="Share (0 to 1) of new orders the sandbox expires by itself after --auto-after.")
@click.option("--auto-after", type=float, default=60.0, show_default=True,
              help="Seconds after creation before an order is cashed or expired (spread up to twice as long).")
def sandbox_serve(host, port, faults_path, fault_settings, seed, state_path, webhook_urls, webhook_attempts,
                  webhook_backoff, auto_cash, auto_expire, auto_after) -> None:
    """Serve the emulator until Ctrl-C.

    Fault settings come from --faults FILE, then each --fault NAME=VALUE and --seed
    (the command line wins). VALUE is read as JSON when it is JSON (0.2, 5, {"3": "error_503"}),
    otherwise as text.

    Example: batch-payouts sandbox serve --port 8765 --fault drop_after_commit_rate=0.1 --seed 7, then
    CONEKTA_API_KEY=key_test_demo batch-payouts run pagos.xlsx --api-base http://127.0.0.1:8765
    """
    from batch_payouts.sandbox import AutoSettle, Faults, serve_forever
    from batch_payouts.sandbox.auto import AutoSettleError
    from batch_payouts.sandbox.faults import FaultsError
    from batch_payouts.sandbox.faults import TEXT as FAULTS_TEXT

    try:
        settings = Faults.from_file(faults_path).to_dict() if faults_path else {}
        chosen: dict = {}
        for item in fault_settings:
            name, equals, value = item.partition("=")
            name = name.strip().replace("-", "_")
            if not equals or not name:
                raise FaultsError(FAULTS_TEXT.BAD_FAULTS, source="--fault",
                                  problem=f"{item!r}: write NAME=VALUE, e.g. error_rate=0.2")
            try:
                chosen[name] = json.loads(value)
            except ValueError:
                chosen[name] = value.strip()
        if seed is not None:
            chosen["seed"] = seed
        faults = None
        if settings or chosen:
            source = "--fault" if chosen else str(faults_path)
            faults = Faults.from_dict({**settings, **chosen}, source=source)
        try:
            auto = AutoSettle(cash=auto_cash, expire=auto_expire, after=auto_after, seed=seed)
        except AutoSettleError as problem:
            raise BatchError(TEXT.BAD_AUTO, problem=str(problem)) from None
        for url in webhook_urls:
            if not url.startswith(("http://", "https://")):
                raise BatchError(TEXT.BAD_WEBHOOK_URL, url=url)
    except BatchError as error:
        _fail(error, "es")
    serve_forever(host=host, port=port, faults=faults, state_path=state_path, webhook_urls=webhook_urls,
                  webhook_attempts=webhook_attempts, webhook_backoff=webhook_backoff, auto_settle=auto)


def _settle_command(action: str, status: str, summary: str):
    @sandbox.command(action, help=summary + "\n\nREFERENCE is the 16-digit reference or the payout order id.\n\n"
                     f"Example: batch-payouts sandbox {action} 4012345678901234")
    @click.argument("reference")
    @click.option("--api-base", help="A running sandbox (e.g. http://127.0.0.1:8765 of `sandbox serve`).")
    @click.option("--state", "state_path", type=click.Path(path_type=Path),
                  help="A sandbox state file (that of `sandbox serve --state`).")
    @click.option("--ledger", "ledger_path", type=LedgerParam(),
                  help="The ledger whose `run --sandbox` / `web --sandbox` state to use (also BATCH_PAYOUTS_LEDGER; "
                       "the default when neither --api-base nor --state is given).")
    @lang_option
    def command(reference, api_base, state_path, ledger_path, lang) -> None:
        try:
            if api_base:
                before, order = _settle_over_http(api_base, reference, action)
            else:
                before, order = _settle_in_state(_state_file(state_path, ledger_path), reference, status)
        except BatchError as error:
            _fail(error, lang)
        words = {"order_id": order["id"], "reference": order.get("reference") or "",
                 "after": states.order_label(order["status"], lang)}
        if before == order["status"]:
            click.echo(TEXT.ALREADY.format(lang, **words))
        else:
            click.echo(TEXT.MOVED.format(lang, before=states.order_label(before, lang), **words))
        sys.exit(exit_codes.OK)

    return command


sandbox_cash = _settle_command("cash", "cashed", "The beneficiary withdrew the money: the order becomes cashed "
                               "(event cashout.confirmed).")
sandbox_expire = _settle_command("expire", "expired", "The reference expired unclaimed: the order becomes expired "
                                 "(event cashout.expired).")
sandbox_cancel = _settle_command("cancel", "cancelled", "Cancel the order from the back office "
                                 "(event cashout.canceled).")


def _state_file(state_path: Path | None, ledger_path: Path | None) -> Path:
    if state_path is None:
        from batch_payouts import ledger_address
        from batch_payouts.jobs.endpoint import sandbox_state_path

        state_path = sandbox_state_path(ledger_address.local_anchor(ledger_address.resolve(ledger_path)))
    if not state_path.is_file():
        raise BatchError(TEXT.NO_STATE, path=str(state_path))
    return state_path


def _settle_in_state(state_path: Path, reference: str, status: str) -> tuple[str, dict]:
    """(status before, order after), written to the state file as the sandbox would."""
    from batch_payouts.sandbox import FinalStatus, Sandbox

    box = Sandbox(state_path=state_path)  # not started: no socket, only its state
    try:
        before = _current_status(box, reference)
        if before is None:
            raise BatchError(TEXT.UNKNOWN_ORDER, where=str(state_path), order=reference)
        try:
            order = box.set_order_status(reference, status)
        except FinalStatus as final:
            raise _final_error(final.order, status) from None
        return before, order
    finally:
        box.store.close()


def _current_status(box, reference: str) -> str | None:
    order_id = box.store.order_id_by_reference(reference) or reference
    order = box.store.get_payout_order(None, order_id)
    return order["status"] if order else None


def _settle_over_http(api_base: str, reference: str, action: str) -> tuple[str, dict]:
    import requests

    base = api_base.rstrip("/")
    session = requests.Session()
    session.trust_env = False  # loopback: no proxy
    try:
        state = session.get(f"{base}/_sandbox/state", timeout=30)
        known = {o["id"]: o for o in state.json().get("payout_orders", [])} if state.ok else {}
        match = [o for o in known.values() if reference in (o["id"], o.get("reference"))]
        answer = session.post(f"{base}/_sandbox/payout_orders/{reference}/{action}", timeout=30)
    except (requests.RequestException, ValueError) as problem:
        raise BatchError(TEXT.UNREACHABLE, url=base, problem=type(problem).__name__) from None
    if answer.status_code == 404:
        raise BatchError(TEXT.UNKNOWN_ORDER, where=base, order=reference)
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code == 409 and isinstance(body.get("order"), dict):
        raise _final_error(body["order"], {"cash": "cashed", "expire": "expired", "cancel": "cancelled"}[action])
    if answer.status_code != 200:
        detail = "; ".join(d.get("message", "") for d in body.get("details", [])) or answer.text[:200]
        raise BatchError(TEXT.BAD_ANSWER, url=base, status=answer.status_code, detail=detail)
    before = match[0]["status"] if match else body["status"]
    return before, body


def _final_error(order: dict, wanted: str) -> BatchError:
    error = _Refused(TEXT.FINAL, order_id=order["id"], reference=order.get("reference") or "",
                     before=order["status"], after=wanted)
    return error


class _Refused(BatchError):
    """A final status asked to change: the statuses are shown in the reader's language."""

    def message(self, lang: str = "es") -> str:
        params = {**self.params, "before": states.order_label(self.params["before"], lang),
                  "after": states.order_label(self.params["after"], lang)}
        return self.text.format(lang, **params)
