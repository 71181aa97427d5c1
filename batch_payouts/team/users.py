"""The team's users in the ledger: who they are, their roles, and signing them in.

Signing in is throttled per user and per address: after ``Throttle.limit`` failures within
``Throttle.minutes`` the user (or the address) is locked for that long, even with the right
password, and the lock is recorded in the event trail.  A second-factor code that fails counts
as a failure too (six digits are few).  Passwords are checked with scrypt (``passwords``) and
never stored, logged or echoed.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue
from batch_payouts.payout.ledger import Ledger
from batch_payouts.team import events, totp
from batch_payouts.team.passwords import TIMING_EQUALISER, hash_password, verify_password
from batch_payouts.team.roles import APPROVER, PREPARER, needs_second_factor, parse_roles

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 10
BOOTSTRAP_ROLES = (APPROVER, PREPARER)  # what a [web.users] user could do before roles existed


@dataclass(frozen=True)
class Throttle:
    """Failed sign-ins allowed within the window, and how long a lock lasts (the same span)."""

    limit: int = 5
    minutes: float = 15.0


@dataclass(frozen=True)
class User:
    name: str
    roles: tuple[str, ...]
    disabled: bool
    enrolled: bool  # a confirmed second factor
    source: str
    created_at: float

    @property
    def needs_second_factor(self) -> bool:
        return needs_second_factor(self.roles)


@dataclass(frozen=True)
class SignIn:
    """What a sign-in attempt came to: ``user`` when the password was right and nothing is locked."""

    user: User | None
    locked: bool = False


def _user(row) -> User:
    return User(row["name"], tuple(filter(None, row["roles"].split(","))), bool(row["disabled"]),
                row["totp_enrolled_at"] is not None, row["source"], row["created_at"])


def check_name(name: str) -> str:
    if not NAME.fullmatch(name or ""):
        raise BatchError(TEXT.BAD_NAME, name=name)
    return name


def check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise BatchError(TEXT.SHORT_PASSWORD, min=MIN_PASSWORD)
    return password


def has_users(ledger: Ledger) -> bool:
    return bool(ledger._query("SELECT 1 FROM team_users LIMIT 1"))


def get_user(ledger: Ledger, name: str) -> User | None:
    found = ledger._query("SELECT * FROM team_users WHERE name=?", (name,))
    return _user(found[0]) if found else None


def list_users(ledger: Ledger) -> list[User]:
    return [_user(r) for r in ledger._query("SELECT * FROM team_users ORDER BY name")]


def add_user(ledger: Ledger, name: str, password: str, roles: str, *, actor: str | None, ip: str | None = None) -> User:
    check_name(name)
    chosen = parse_roles(roles)
    stored = hash_password(check_password(password))
    now = time.time()
    with ledger._transaction() as conn:
        if conn.execute("SELECT 1 FROM team_users WHERE name=?", (name,)).fetchone():
            raise BatchError(TEXT.EXISTS, name=name)
        conn.execute(
            "INSERT INTO team_users (name, password_hash, roles, disabled, source, created_at, updated_at) "
            "VALUES (?,?,?,0,'cli',?,?)", (name, stored, ",".join(chosen), now, now),
        )
        events.record_in(conn, actor, ip, "user_added", user=name, roles=list(chosen))
    return get_user(ledger, name)


def bootstrap(ledger: Ledger, configured: dict[str, str]) -> list[str]:
    """Copy the ``[web.users]`` of the config file into the ledger, once: a name already there is
    left as it is (roles, password and second factor are managed in the ledger from then on)."""
    added = []
    now = time.time()
    with ledger._transaction() as conn:
        for name, stored in configured.items():
            cursor = conn.execute(
                "INSERT INTO team_users (name, password_hash, roles, disabled, source, created_at, updated_at) "
                "VALUES (?,?,?,0,'config',?,?) ON CONFLICT (name) DO NOTHING",
                (name, stored, ",".join(BOOTSTRAP_ROLES), now, now),
            )
            if cursor.rowcount:
                added.append(name)
                events.record_in(conn, None, None, "user_bootstrapped", user=name, roles=list(BOOTSTRAP_ROLES))
    return added


def _change(ledger: Ledger, name: str, sql: str, params: tuple, actor: str | None, action: str, ip: str | None = None,
            **detail) -> None:
    with ledger._transaction() as conn:
        cursor = conn.execute(sql + " WHERE name=?", (*params, name))
        if not cursor.rowcount:
            raise BatchError(TEXT.NO_USER, name=name)
        events.record_in(conn, actor, ip, action, user=name, **detail)


def disable_user(ledger: Ledger, name: str, *, actor: str | None, enable: bool = False, ip: str | None = None) -> None:
    _change(ledger, name, "UPDATE team_users SET disabled=?, updated_at=?", (0 if enable else 1, time.time()), actor,
            "user_enabled" if enable else "user_disabled", ip=ip)


def reset_password(ledger: Ledger, name: str, password: str, *, actor: str | None,
                   second_factor: bool = False, ip: str | None = None) -> None:
    """A new password; with ``second_factor`` the TOTP secret and recovery codes are dropped too
    (a lost phone), so the user enrols again at the next sign-in."""
    stored = hash_password(check_password(password))
    extra = ", totp_secret=NULL, totp_enrolled_at=NULL" if second_factor else ""
    _change(ledger, name, f"UPDATE team_users SET password_hash=?, updated_at=?{extra}", (stored, time.time()), actor,
            "password_reset", ip=ip, second_factor_reset=second_factor)
    if second_factor:
        with ledger._transaction() as conn:
            conn.execute("DELETE FROM team_recovery_codes WHERE name=?", (name,))


def set_roles(ledger: Ledger, name: str, roles: str, *, actor: str | None, ip: str | None = None) -> None:
    chosen = parse_roles(roles)
    _change(ledger, name, "UPDATE team_users SET roles=?, updated_at=?", (",".join(chosen), time.time()), actor,
            "roles_set", ip=ip, roles=list(chosen))


# -- signing in ---------------------------------------------------------------------------------
def _failures(conn, scope: str, since: float) -> int:
    return conn.execute("SELECT count(*) FROM team_signin_failures WHERE scope=? AND failed_at>?",
                        (scope, since)).fetchone()[0]


def _scopes(name: str, ip: str | None) -> list[str]:
    return [f"user:{name}"] + ([f"ip:{ip}"] if ip else [])


def locked(ledger: Ledger, name: str, ip: str | None, throttle: Throttle) -> bool:
    since = time.time() - throttle.minutes * 60
    with ledger._reading() as conn:
        return any(_failures(conn, scope, since) >= throttle.limit for scope in _scopes(name, ip))


def record_failure(ledger: Ledger, name: str, ip: str | None, throttle: Throttle, why: str) -> None:
    """One failed attempt for the user and the address; the one that reaches the limit records the lock."""
    now = time.time()
    with ledger._transaction() as conn:
        events.record_in(conn, name, ip, "signin_failed", why=why)
        for scope in _scopes(name, ip):
            conn.execute("INSERT INTO team_signin_failures (failure_id, scope, failed_at) VALUES (?,?,?)",
                         (secrets.token_hex(16), scope, now))
            if _failures(conn, scope, now - throttle.minutes * 60) == throttle.limit:
                events.record_in(conn, name, ip, "signin_locked", scope=scope, minutes=throttle.minutes,
                                 until=now + throttle.minutes * 60)
    ledger._query("DELETE FROM team_signin_failures WHERE failed_at<?", (now - 7 * 86400,))  # old ones are noise


def sign_in(ledger: Ledger, name: str, password: str, ip: str | None, throttle: Throttle) -> SignIn:
    """Check a password, within the throttle.  The second factor, when the user has one, is
    ``second_factor_ok`` after this."""
    if locked(ledger, name, ip, throttle):
        events.record(ledger, name, ip, "signin_refused_locked")
        return SignIn(None, locked=True)
    row = ledger._query("SELECT * FROM team_users WHERE name=?", (name,))
    good = verify_password(password, row[0]["password_hash"] if row else TIMING_EQUALISER)
    if not (row and good) or row[0]["disabled"]:
        record_failure(ledger, name, ip, throttle, "disabled" if row and good else "password")
        return SignIn(None)
    with ledger._transaction() as conn:
        conn.execute("DELETE FROM team_signin_failures WHERE scope=?", (f"user:{name}",))
    return SignIn(_user(row[0]))


def signed_in(ledger: Ledger, name: str, ip: str | None, second_factor: bool) -> None:
    events.record(ledger, name, ip, "signin", second_factor=second_factor)


def second_factor_ok(ledger: Ledger, name: str, code: str) -> bool:
    """A current TOTP code of an enrolled user, or one of their unused recovery codes (used up by this)."""
    row = ledger._query("SELECT totp_secret, totp_enrolled_at FROM team_users WHERE name=?", (name,))
    if not row or row[0]["totp_enrolled_at"] is None:
        return False
    if totp.code_ok(row[0]["totp_secret"], code):
        return True
    text = str(code or "").strip()
    if len(text) < 12:
        return False
    with ledger._transaction() as conn:
        used = conn.execute("UPDATE team_recovery_codes SET used_at=? WHERE name=? AND code_hash=? AND used_at IS NULL",
                            (time.time(), name, totp.recovery_hash(text)))
        if used.rowcount:
            events.record_in(conn, name, None, "recovery_code_used")
        return bool(used.rowcount)


# -- enrolling the second factor -------------------------------------------------------------------
def start_enrolment(ledger: Ledger, name: str) -> str:
    """A new secret for a user not yet enrolled (replacing an unconfirmed one): shown once, as a QR code."""
    secret = totp.new_secret()
    with ledger._transaction() as conn:
        conn.execute("UPDATE team_users SET totp_secret=? WHERE name=? AND totp_enrolled_at IS NULL", (secret, name))
    return secret


def confirm_enrolment(ledger: Ledger, name: str, code: str, ip: str | None = None) -> list[str] | None:
    """The first code from the user's app proves the QR code was read: enrolled, and the recovery
    codes (shown once) are returned.  None when the code is wrong."""
    row = ledger._query("SELECT totp_secret, totp_enrolled_at FROM team_users WHERE name=?", (name,))
    if not row or row[0]["totp_enrolled_at"] is not None or not totp.code_ok(row[0]["totp_secret"], code):
        return None
    codes = totp.new_recovery_codes()
    with ledger._transaction() as conn:
        conn.execute("UPDATE team_users SET totp_enrolled_at=? WHERE name=?", (time.time(), name))
        conn.execute("DELETE FROM team_recovery_codes WHERE name=?", (name,))
        for code_text in codes:
            conn.execute("INSERT INTO team_recovery_codes (name, code_hash) VALUES (?,?)",
                         (name, totp.recovery_hash(code_text)))
        events.record_in(conn, name, ip, "second_factor_enrolled")
    return codes


def totp_secret_for_tests(ledger: Ledger, name: str) -> str | None:
    """The stored secret: for tests that play the user's authenticator app; never shown by any command."""
    row = ledger._query("SELECT totp_secret FROM team_users WHERE name=?", (name,))
    return row[0]["totp_secret"] if row else None
