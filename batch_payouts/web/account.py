"""Signing in and out, and the language the pages are written in."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from batch_payouts.i18n import LANGUAGES, Text
from batch_payouts.web import security
from batch_payouts.web.pages import Pages

BAD_LOGIN = Text(es="Usuario o contraseña incorrectos.", en="Wrong user name or password.")


class AccountPages(Pages):
    """Sign in, sign out, choose the language; and the page for an HTTP error."""

    async def login_page(self, request: Request) -> Response:
        return self.render(request, "login.html", next=_safe_next(request.query_params.get("next")), failed=False)

    async def login(self, request: Request) -> Response:
        form = await self.form(request)
        name = str(form.get("username") or "")
        stored = self.settings.users.get(name)
        ok = await run_in_threadpool(security.verify_password, str(form.get("password") or ""),
                                     stored or security.hash_password("timing-equaliser"))
        target = _safe_next(form.get("next"))
        if not (stored and ok):
            return self.render(request, "login.html", status_code=401, next=target, failed=True,
                               message=BAD_LOGIN.format(self.lang(request)))
        request.session.clear()  # a new session on sign-in: no fixation
        request.session[security.SESSION_USER] = name
        return RedirectResponse(target, status_code=303)

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

