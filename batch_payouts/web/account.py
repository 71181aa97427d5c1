"""Signing in and out, and the language the pages are written in."""

from __future__ import annotations

import secrets
import time

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from batch_payouts.i18n import LANGUAGES, catalogue
from batch_payouts.payout.ledger import Ledger
from batch_payouts.team import users as team_users
from batch_payouts.web import security
from batch_payouts.web.pages import Pages, client_ip

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

PENDING_USER, PENDING_AT, PENDING_NEXT = "pending_user", "pending_at", "pending_next"


class AccountPages(Pages):
    """Sign in, sign out, choose the language; and the page for an HTTP error."""

    async def login_page(self, request: Request) -> Response:
        return self.render(request, "login.html", next=_safe_next(request.query_params.get("next")), failed=False)

    async def login(self, request: Request) -> Response:
        """The password, throttled per user and per address (``team.users.sign_in``); a user with a
        second factor is asked for its code next (``login_code``)."""
        form = await self.form(request)
        name = str(form.get("username") or "")[:64]
        target = _safe_next(form.get("next"))
        lang = self.lang(request)
        ip = client_ip(request)

        def check() -> team_users.SignIn:
            with Ledger(self.settings.ledger_path) as ledger:
                return team_users.sign_in(ledger, name, str(form.get("password") or ""), ip, self.throttle)

        signed = await run_in_threadpool(check)
        if signed.user is None:
            message = (TEXT.LOCKED.format(lang, minutes=int(self.settings.lock_minutes)) if signed.locked
                       else TEXT.BAD_LOGIN.format(lang))
            return self.render(request, "login.html", status_code=429 if signed.locked else 401, next=target,
                               failed=True, message=message)
        request.session.clear()  # a new session on sign-in: no fixation
        if signed.user.enrolled:
            request.session.update({PENDING_USER: name, PENDING_AT: int(time.time()), PENDING_NEXT: target})
            return RedirectResponse("/login/code", status_code=303)
        if signed.user.needs_second_factor:  # an approver or admin without one: enrolment first, nothing else
            target = "/account"
        return self._signed_in(request, name, target, second_factor=False)

    def _signed_in(self, request: Request, name: str, target: str, *, second_factor: bool) -> Response:
        request.session.clear()
        request.session.update({security.SESSION_USER: name, security.SESSION_ID: secrets.token_urlsafe(16),
                                security.SESSION_SEEN: int(time.time())})
        with Ledger(self.settings.ledger_path) as ledger:
            team_users.signed_in(ledger, name, client_ip(request), second_factor)
        return RedirectResponse(target, status_code=303)

    async def login_code_page(self, request: Request) -> Response:
        if not self._pending(request):
            return RedirectResponse("/login", status_code=303)
        return self.render(request, "login_code.html", failed=False)

    async def login_code(self, request: Request) -> Response:
        """The second step: a code from the user's app (or a recovery code) within five minutes of the password."""
        name = self._pending(request)
        if not name:
            return RedirectResponse("/login", status_code=303)
        form = await self.form(request)
        ip = client_ip(request)
        code = str(form.get("code") or "")

        def check() -> bool | None:
            with Ledger(self.settings.ledger_path) as ledger:
                if team_users.locked(ledger, name, ip, self.throttle):
                    return None
                if team_users.second_factor_ok(ledger, name, code):
                    return True
                team_users.record_failure(ledger, name, ip, self.throttle, "second_factor")
                return False

        ok = await run_in_threadpool(check)
        if not ok:
            lang = self.lang(request)
            if ok is None:
                request.session.clear()
            message = TEXT.LOCKED.format(lang, minutes=int(self.settings.lock_minutes)) if ok is None else TEXT.BAD_CODE.format(lang)
            return self.render(request, "login_code.html", status_code=429 if ok is None else 401, failed=True,
                               message=message)
        return self._signed_in(request, name, _safe_next(request.session.get(PENDING_NEXT)), second_factor=True)

    def _pending(self, request: Request) -> str | None:
        name = request.session.get(PENDING_USER)
        at = request.session.get(PENDING_AT)
        return name if name and isinstance(at, int) and time.time() - at < 300 else None

    @property
    def throttle(self) -> team_users.Throttle:
        return team_users.Throttle(self.settings.lock_after, self.settings.lock_minutes)

    async def logout(self, request: Request) -> Response:
        await self.form(request)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    async def set_lang(self, request: Request) -> Response:
        code = request.path_params["code"]
        if code in LANGUAGES:
            request.session["lang"] = code
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)

    async def http_error(self, request: Request, exc: HTTPException) -> Response:
        return self.error_page(request, str(exc.detail), exc.status_code)


def _safe_next(value: object) -> str:
    """Only a path on this site: never an open redirect to another host."""
    text = str(value or "/")
    return text if text.startswith("/") and not text.startswith("//") and "\\" not in text else "/"

