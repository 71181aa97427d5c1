"""``batch-payouts users``, ``policy`` and ``approvals``: the team kept in the ledger (issue 15).

Passwords and second-factor codes are read from a hidden prompt, or from standard input with
``--password-stdin`` (one per line, in the order they are asked), never from the command line.
Until the ledger has an admin, anyone who can write the ledger sets up the first one; from then
on, changing users or the policy needs ``--as ADMIN`` with that admin's password and code.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

import click

from batch_payouts import clock
from batch_payouts.cli.console import _fail
from batch_payouts.cli.main import PesosType, lang_option, main
from batch_payouts.cli.ops import ledger_option
from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

# The ledger and the team modules (sqlite3) are imported when a command runs: `--help` stays light.


class SecretReader:
    """Secrets in the order they are asked: hidden prompts, or lines of standard input."""

    def __init__(self, from_stdin: bool) -> None:
        self.from_stdin = from_stdin

    def read(self, prompt: str, confirm: bool = False) -> str:
        if self.from_stdin:
            value = sys.stdin.readline().rstrip("\r\n")
        else:
            value = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, default="", show_default=False)
        return value


password_stdin_option = click.option(
    "--password-stdin/--no-password-stdin",
    help="Read passwords and codes from standard input, one per line in the order asked (for scripts).",
)
as_option = click.option("--as", "acting", metavar="ADMIN", help="The admin making the change (once the ledger has one).")


def _open(stack: ExitStack, ledger_path: Path | None):
    from batch_payouts import ledger_address
    from batch_payouts.payout.ledger import Ledger

    return stack.enter_context(Ledger(ledger_address.resolve(ledger_path)))


def authenticate(ledger, name: str, secrets: SecretReader, *, need_role: str) -> str:
    """Password and second factor of ``name``, throttled like the web's sign-in (a failure counts)."""
    from batch_payouts.team import users

    throttle = users.Throttle()
    password = secrets.read("Contraseña de / Password of " + name)
    signed = users.sign_in(ledger, name, password, None, throttle)
    if signed.user is None or need_role not in signed.user.roles:
        raise BatchError(TEXT.BAD_CREDENTIALS)
    if not signed.user.enrolled:
        raise BatchError(TEXT.NO_SECOND_FACTOR, name=name)
    code = secrets.read("Código (app o de recuperación) / Code (app or recovery)")
    if not users.second_factor_ok(ledger, name, code):
        users.record_failure(ledger, name, None, throttle, "second_factor")
        raise BatchError(TEXT.BAD_CREDENTIALS)
    users.signed_in(ledger, name, None, second_factor=True)
    return name


def _admin(ledger, acting: str | None, secrets: SecretReader) -> str | None:
    """The authenticated admin, or None while the ledger has no admin yet (setting up the first)."""
    from batch_payouts.team import users

    if not any("admin" in u.roles and not u.disabled for u in users.list_users(ledger)):
        return acting or "cli"
    if not acting:
        raise BatchError(TEXT.NOT_ADMIN)
    return authenticate(ledger, acting, secrets, need_role="admin")


def _new_password(secrets: SecretReader) -> str:
    password = secrets.read("Nueva contraseña / New password", confirm=True)
    if not password:
        raise BatchError(TEXT.EMPTY_SECRET)
    return password


@main.group()
def users() -> None:
    """Users and roles of the web app and the approvals (kept in the ledger)."""


@users.command("add")
@click.argument("name")
@click.option("--roles", required=True, help="Comma-separated: preparer, approver, auditor, admin.")
@ledger_option
@as_option
@password_stdin_option
@lang_option
def users_add(name, roles, ledger_path, acting, password_stdin, lang) -> None:
    """Add a user; the password is asked (hidden) or read from standard input."""
    from batch_payouts.team import users as team

    secrets = SecretReader(password_stdin)
    with ExitStack() as stack:
        try:
            ledger = _open(stack, ledger_path)
            actor = _admin(ledger, acting, secrets)
            team.add_user(ledger, name, _new_password(secrets), roles, actor=actor)
        except BatchError as error:
            _fail(error, lang)
    click.echo(TEXT.DONE.format(lang, what=name))


@users.command("list")
@ledger_option
@lang_option
def users_list(ledger_path, lang) -> None:
    """List the users: name, roles, second factor, disabled."""
    from batch_payouts.team import users as team

    with ExitStack() as stack:
        try:
            found = team.list_users(_open(stack, ledger_path))
        except BatchError as error:
            _fail(error, lang)
    for user in found:
        factor = ("2FA" if user.enrolled else "sin 2FA" if lang == "es" else "no 2FA")
        state = (" (desactivado)" if lang == "es" else " (disabled)") if user.disabled else ""
        click.echo(f"{user.name}\t{','.join(user.roles)}\t{factor}{state}")


def _admin_change(ledger_path, acting, password_stdin, lang, change, what: str) -> None:
    secrets = SecretReader(password_stdin)
    with ExitStack() as stack:
        try:
            ledger = _open(stack, ledger_path)
            change(ledger, _admin(ledger, acting, secrets), secrets)
        except BatchError as error:
            _fail(error, lang)
    click.echo(TEXT.DONE.format(lang, what=what))


@users.command("disable")
@click.argument("name")
@click.option("--enable/--no-enable", help="Enable the user again instead.")
@ledger_option
@as_option
@password_stdin_option
@lang_option
def users_disable(name, enable, ledger_path, acting, password_stdin, lang) -> None:
    """Disable a user (they can no longer sign in, approve or be counted), or enable them again."""
    from batch_payouts.team import users as team

    _admin_change(ledger_path, acting, password_stdin, lang,
                  lambda ledger, actor, _s: team.disable_user(ledger, name, actor=actor, enable=enable), name)


@users.command("reset-password")
@click.argument("name")
@click.option("--second-factor/--no-second-factor", help="Also drop their second factor (a lost phone): they enrol again.")
@ledger_option
@as_option
@password_stdin_option
@lang_option
def users_reset_password(name, second_factor, ledger_path, acting, password_stdin, lang) -> None:
    """Give a user a new password (asked hidden, or read from standard input)."""
    from batch_payouts.team import users as team

    _admin_change(ledger_path, acting, password_stdin, lang,
                  lambda ledger, actor, s: team.reset_password(ledger, name, _new_password(s), actor=actor,
                                                               second_factor=second_factor), name)


@users.command("set-roles")
@click.argument("name")
@click.argument("roles")
@ledger_option
@as_option
@password_stdin_option
@lang_option
def users_set_roles(name, roles, ledger_path, acting, password_stdin, lang) -> None:
    """Replace a user's roles, e.g. `users set-roles ana preparer,auditor`."""
    from batch_payouts.team import users as team

    _admin_change(ledger_path, acting, password_stdin, lang,
                  lambda ledger, actor, _s: team.set_roles(ledger, name, roles, actor=actor), name)


@users.command("log")
@ledger_option
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True, help="How many events, newest first.")
@lang_option
def users_log(ledger_path, limit, lang) -> None:
    """The team's event trail (sign-ins, locks, users, submissions, approvals), and whether its chain holds."""
    from batch_payouts.team import events

    with ExitStack() as stack:
        try:
            ledger = _open(stack, ledger_path)
            found, broken = events.events(ledger, limit), events.verify(ledger)
        except BatchError as error:
            _fail(error, lang)
    for event in found:
        detail = " ".join(f"{k}={v}" for k, v in sorted(event.detail.items()))
        click.echo(f"{clock.time_text(event.at)}\t{event.actor or '-'}\t{event.ip or '-'}\t{event.action}\t{detail}")
    if broken is not None:
        click.echo(f"chain broken at event {broken}", err=True)
        sys.exit(1)


@main.group()
def policy() -> None:
    """The approval policy of the ledger: which batches need a second person."""


@policy.command("show")
@ledger_option
@lang_option
def policy_show(ledger_path, lang) -> None:
    """Print the ledger's approval policy."""
    from batch_payouts.team import policy as rules
    from batch_payouts.totals import format_totals

    with ExitStack() as stack:
        try:
            ledger = _open(stack, ledger_path)
            found = rules.load(ledger)
        except BatchError as error:
            _fail(error, lang)
    click.echo(TEXT.POLICY_WHERE.format(lang, ledger=ledger.name))
    if found is None:
        click.echo(TEXT.NO_POLICY.format(lang))
        return
    click.echo(f"every-batch: {'yes' if found.every_batch else 'no'}")
    click.echo(f"above: {format_totals(found.above) if found.above else '-'}")
    click.echo(f"rows-over: {found.rows_over if found.rows_over is not None else '-'}")
    click.echo(f"two-above: {format_totals(found.two_above) if found.two_above else '-'}")


@policy.command("set")
@click.option("--every-batch/--no-every-batch", help="Every batch needs one approval.")
@click.option("--above", type=PesosType(), help="One approval when a currency's total is over this many pesos.")
@click.option("--rows-over", type=click.IntRange(0), help="One approval when a batch pays more than this many rows.")
@click.option("--two-above", type=PesosType(), help="Two approvals (two people) when a currency's total is over this.")
@click.option("--currency", default="MXN", show_default=True, help="The currency --above and --two-above are in.")
@click.option("--clear/--no-clear", help="Remove the policy: no approval asked any more.")
@ledger_option
@as_option
@password_stdin_option
@lang_option
def policy_set(every_batch, above, rows_over, two_above, currency, clear, ledger_path, acting, password_stdin, lang) -> None:
    """Set the ledger's approval policy (replaces the previous one)."""
    from batch_payouts.team import policy as rules

    chosen = None if clear else rules.Policy(
        every_batch=every_batch, above={currency.upper(): above} if above else {}, rows_over=rows_over,
        two_above={currency.upper(): two_above} if two_above else {},
    )
    _admin_change(ledger_path, acting, password_stdin, lang,
                  lambda ledger, actor, _s: rules.save(ledger, chosen, actor=actor), "policy")


@main.group(invoke_without_command=True)
@ledger_option
@lang_option
@click.pass_context
def approvals(ctx, ledger_path, lang) -> None:
    """List approval requests, pending first, with who approved or rejected them."""
    if ctx.invoked_subcommand is not None:
        return
    from batch_payouts.team import approvals as found_approvals
    from batch_payouts.totals import format_totals

    with ExitStack() as stack:
        try:
            found = found_approvals.listing(_open(stack, ledger_path))
        except BatchError as error:
            _fail(error, lang)
    if not found:
        click.echo(TEXT.NOTHING_PENDING.format(lang))
        return
    found.sort(key=lambda r: (r.state != "pending", -r.submitted_at))
    for r in found:
        given = ", ".join(f"{d['decision']} by {d['approver']} {clock.time_text(d['decided_at'])}"
                          + (f" ({d['reason']})" if d["reason"] else "") for d in r.decisions) or "-"
        click.echo(f"{r.request_id}\t{r.state}\t{r.batch_id[:12]}\t{r.input_name}\t{r.rows} rows\t"
                   f"{format_totals(r.totals)}\tneeds {r.needed}\tsubmitted by {r.submitted_by} "
                   f"{clock.time_text(r.submitted_at)}\t{given}")


def _decide(request_id, user, ledger_path, password_stdin, lang, approve: bool, reason: str = "") -> None:
    from batch_payouts.team import approvals as team_approvals

    secrets = SecretReader(password_stdin)
    with ExitStack() as stack:
        try:
            ledger = _open(stack, ledger_path)
            authenticate(ledger, user, secrets, need_role="approver")
            request = team_approvals.decide(ledger, request_id, user, approve=approve, reason=reason)
        except BatchError as error:
            _fail(error, lang)
    click.echo(TEXT.DONE.format(lang, what=f"{request.request_id} {request.state}"))


@approvals.command("approve")
@click.argument("request_id")
@click.option("--user", required=True, help="The approver (their password and code are asked).")
@ledger_option
@password_stdin_option
@lang_option
def approvals_approve(request_id, user, ledger_path, password_stdin, lang) -> None:
    """Approve a request as USER, with their password and second factor."""
    _decide(request_id, user, ledger_path, password_stdin, lang, approve=True)


@approvals.command("reject")
@click.argument("request_id")
@click.option("--user", required=True, help="The approver (their password and code are asked).")
@click.option("--reason", required=True, help="Why: shown to whoever prepared the batch.")
@ledger_option
@password_stdin_option
@lang_option
def approvals_reject(request_id, user, reason, ledger_path, password_stdin, lang) -> None:
    """Reject a request as USER, with a reason."""
    _decide(request_id, user, ledger_path, password_stdin, lang, approve=False, reason=reason)


@users.command("enrol")
@click.argument("name")
@ledger_option
@password_stdin_option
@lang_option
def users_enrol(name, ledger_path, password_stdin, lang) -> None:
    """Enrol NAME's second factor (TOTP) on this terminal: their password, a QR code shown once, the first code."""
    from batch_payouts.team import totp
    from batch_payouts.team import users as team

    secrets = SecretReader(password_stdin)
    with ExitStack() as stack:
        try:
            ledger = _open(stack, ledger_path)
            signed = team.sign_in(ledger, name, secrets.read("Contraseña de / Password of " + name), None, team.Throttle())
            if signed.user is None:
                raise BatchError(TEXT.BAD_CREDENTIALS)
            if signed.user.enrolled:
                raise BatchError(TEXT.ALREADY_ENROLLED, name=name)
            secret = team.start_enrolment(ledger, name)
            if not password_stdin:
                import segno

                segno.make(totp.provisioning_uri(secret, name), error="m").terminal(compact=True)
            click.echo(TEXT.ENROL_SCAN.format(lang, secret=secret), err=True)
            codes = team.confirm_enrolment(ledger, name, secrets.read("Código de la app / Code from the app"))
            if codes is None:
                raise BatchError(TEXT.ENROL_WRONG)
        except BatchError as error:
            _fail(error, lang)
    click.echo(TEXT.RECOVERY_NOTE.format(lang))
    for code in codes:
        click.echo(code)
