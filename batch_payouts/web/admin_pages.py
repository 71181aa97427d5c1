"""Administration in the browser (admins only): users, their roles, disabling, new passwords, and
the approval policy -- what ``batch-payouts users ...`` and ``policy ...`` do on a terminal.

Every page under ``/admin`` is an admin's alone, even to read (``access.GET_ACTIONS``).  Every
change is a CSRF-checked POST that also asks for a fresh code of the admin's second factor (as
the CLI's ``--as ADMIN`` does): a session left open on a desk cannot hand out roles.  A wrong code
counts as a failed sign-in (throttled).  Every change lands in the team's trail with the admin,
the address and what changed (``team.users``, ``team.policy``); no password is ever shown back.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue
from batch_payouts.payout.ledger import Ledger
from batch_payouts.team import policy as team_policy
from batch_payouts.team import users as team_users
from batch_payouts.team.roles import ROLES
from batch_payouts.totals import cents_of_pesos
from batch_payouts.web.pages import Pages, client_ip, signed_in
from batch_payouts.web.pages import TEXT as PAGES_TEXT

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


class AdminPages(Pages):
    """``/admin`` (users), ``/admin/users/{name}`` (one user) and ``/admin/policy``."""

    @signed_in
    async def admin_page(self, request: Request) -> Response:
        if not self.settings.team:
            return self.error_page(request, TEXT.NO_TEAM.format(self.lang(request)), 404)

        def load() -> tuple[list[team_users.User], team_policy.Policy | None]:
            with Ledger(self.settings.ledger_path) as ledger:
                return team_users.list_users(ledger), team_policy.load(ledger)

        found, policy = await run_in_threadpool(load)
        return self.render(request, "admin.html", users=found, policy=policy, all_roles=ROLES)

    @signed_in
    async def admin_user_page(self, request: Request) -> Response:
        name = request.path_params["name"]

        def load() -> team_users.User | None:
            with Ledger(self.settings.ledger_path) as ledger:
                return team_users.get_user(ledger, name)

        found = await run_in_threadpool(load)
        if found is None:
            return self.error_page(request, PAGES_TEXT.NOT_FOUND.format(self.lang(request)), 404)
        return self.render(request, "admin_user.html", account=found, all_roles=ROLES)

    @signed_in
    async def admin_policy_page(self, request: Request) -> Response:
        def load() -> team_policy.Policy | None:
            with Ledger(self.settings.ledger_path) as ledger:
                return team_policy.load(ledger)

        return self.render(request, "admin_policy.html", policy=await run_in_threadpool(load))

    # -- the changes ----------------------------------------------------------------------------------------
    @signed_in
    async def add_user(self, request: Request) -> Response:
        def change(ledger: Ledger, form: Any, admin: str, ip: str | None) -> str:
            name = str(form.get("name") or "").strip()
            team_users.add_user(ledger, name, str(form.get("password") or ""), _roles_of(form), actor=admin, ip=ip)
            return name

        return await self._change(request, change, back="/admin")

    @signed_in
    async def set_roles(self, request: Request) -> Response:
        name = request.path_params["name"]

        def change(ledger: Ledger, form: Any, admin: str, ip: str | None) -> str:
            roles = _roles_of(form)
            if name == admin and "admin" not in roles.split(","):
                raise BatchError(TEXT.SELF_LOCKOUT)
            team_users.set_roles(ledger, name, roles, actor=admin, ip=ip)
            return name

        return await self._change(request, change, back=f"/admin/users/{name}")

    @signed_in
    async def disable_user(self, request: Request) -> Response:
        name = request.path_params["name"]

        def change(ledger: Ledger, form: Any, admin: str, ip: str | None) -> str:
            enable = form.get("enable") == "1"
            if name == admin and not enable:
                raise BatchError(TEXT.SELF_LOCKOUT)
            team_users.disable_user(ledger, name, actor=admin, enable=enable, ip=ip)
            return name

        return await self._change(request, change, back=f"/admin/users/{name}")

    @signed_in
    async def reset_password(self, request: Request) -> Response:
        name = request.path_params["name"]

        def change(ledger: Ledger, form: Any, admin: str, ip: str | None) -> str:
            team_users.reset_password(ledger, name, str(form.get("password") or ""), actor=admin,
                                      second_factor=form.get("second_factor") == "1", ip=ip)
            return name

        return await self._change(request, change, back=f"/admin/users/{name}")

    @signed_in
    async def set_policy(self, request: Request) -> Response:
        def change(ledger: Ledger, form: Any, admin: str, ip: str | None) -> str:
            team_policy.save(ledger, None if form.get("clear") == "1" else _policy_of(form), actor=admin, ip=ip)
            return "policy"

        return await self._change(request, change, back="/admin/policy")

    async def _change(self, request: Request, change: Any, *, back: str) -> Response:
        """CSRF, then the admin's code, then ``change``; the outcome as a flash on the page ``back``."""
        form = await self.form(request)
        lang = self.lang(request)
        if not self.settings.team:
            return self.error_page(request, TEXT.NO_TEAM.format(lang), 404)
        admin = self.user(request) or ""
        ip = client_ip(request)
        throttle = team_users.Throttle(self.settings.lock_after, self.settings.lock_minutes)

        def work() -> str | None:
            with Ledger(self.settings.ledger_path) as ledger:
                if team_users.locked(ledger, admin, ip, throttle) or not team_users.second_factor_ok(
                        ledger, admin, str(form.get("code") or "")):
                    team_users.record_failure(ledger, admin, ip, throttle, "admin_second_factor")
                    return None
                return change(ledger, form, admin, ip)

        try:
            what = await run_in_threadpool(work)
        except BatchError as error:
            self.flash(request, self.describe(error, lang), "error")
            return RedirectResponse(back, status_code=303)
        if what is None:
            self.flash(request, TEXT.BAD_CODE.format(lang), "error")
        else:
            self.flash(request, TEXT.DONE.format(lang, what=what))
        return RedirectResponse(back, status_code=303)


def _roles_of(form: Any) -> str:
    """The ticked role boxes, as ``team.roles.parse_roles`` reads them (none ticked is refused there)."""
    return ",".join(str(role) for role in form.getlist("roles"))


def _policy_of(form: Any) -> team_policy.Policy:
    currency = (str(form.get("currency") or "MXN").strip().upper() or "MXN")[:3]

    def pesos(field: str) -> dict[str, int]:
        text = str(form.get(field) or "").strip()
        if not text:
            return {}
        cents = cents_of_pesos(text)
        if cents is None:
            raise BatchError(TEXT.BAD_PESOS, value=text[:40])
        return {currency: cents}

    rows_text = str(form.get("rows_over") or "").strip()
    if rows_text and not (rows_text.isdigit() and len(rows_text) < 10):
        raise BatchError(TEXT.BAD_ROWS, value=rows_text[:40])
    return team_policy.Policy(every_batch=form.get("every_batch") == "1", above=pesos("above"),
                              rows_over=int(rows_text) if rows_text else None, two_above=pesos("two_above"))
