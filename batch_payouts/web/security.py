"""Who may use the web app, and the limits every request lives within.

On 127.0.0.1 the only person who can reach the app is the one at the machine,
so no login is asked.  Anywhere else a login is required: either users with
password hashes in the config file (``[web.users]``), or a reverse proxy that
has already authenticated the user and names them in a header the operator
explicitly trusts.  Every form carries a CSRF token tied to the session, and
request bodies are cut off at the upload limit before they reach the disk.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The hashes live with the users (team.passwords); named here too for the `hash-password` command.
from batch_payouts.team.passwords import SCHEME, hash_password, verify_password  # noqa: F401

CSRF_FIELD = "csrf_token"
SESSION_CSRF = "csrf"
SESSION_USER = "user"
SESSION_SEEN = "seen"  # unix seconds of the session's last request: idle sessions end (pages.expired)
SESSION_ID = "sid"  # a new random id at every sign-in: a session from before it never becomes signed in


def session_secret(data_dir: Path) -> str:
    """The key that signs session cookies, kept in the data directory (mode 0600) so logins
    survive a restart; made once, never printed."""
    path = data_dir / "web-session.key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    # Written whole under a temporary name, then linked in place (fails if it exists): two instances
    # starting at once on a shared data directory end up with one key, never an empty or second one.
    temp = data_dir / f".web-session.key.{secrets.token_hex(8)}"
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secret)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temp, path)
    except FileExistsError:
        return path.read_text().strip()  # the other instance made it first: share its key
    finally:
        temp.unlink(missing_ok=True)
    return secret


def csrf_token(session: dict) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get(SESSION_CSRF)
    if not token:
        token = session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return token


def csrf_ok(session: dict, submitted: object) -> bool:
    expected = session.get(SESSION_CSRF)
    return bool(expected) and isinstance(submitted, str) and hmac.compare_digest(expected, submitted)


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, whether or not they declare a length,
    before the multipart parser spools them to disk."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send)


async def _too_large(send: Send) -> None:
    body = "El archivo es demasiado grande. / The file is too large.".encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Headers that keep pages from being framed, sniffed or cached, and scripts to our own files."""

    HEADERS = [
        (b"content-security-policy",
         b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
         b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
    ]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                headers.extend(self.HEADERS)
                if not scope["path"].startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class SecureCookies:
    """Mark every cookie ``Secure`` when the request came over HTTPS (directly, or through a proxy
    that says so, see ``--trust-user-header``): a session cookie is then never sent in clear text.
    Over plain HTTP on loopback the browser would refuse a Secure cookie, so it is left as it is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value + b"; secure" if name == b"set-cookie" and b"secure" not in value.lower() else value)
                    for name, value in message.get("headers") or []
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, secure)
