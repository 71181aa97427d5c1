"""What every page shares: the signed-in check, rendering in the user's language, flashes, CSRF.

``Pages`` is the base of the page groups (``review_pages``, ``batch_pages``, ``account``);
``app.WebApp`` puts them together with the state they share (settings, uploads, runs).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from batch_payouts import ledger_address, states
from batch_payouts.errors import BatchError
from batch_payouts.i18n import LANGUAGES, Text, catalogue
from batch_payouts.jobs.load import RunOptions
from batch_payouts.operations import Connection
from batch_payouts.payout import lock_probe
from batch_payouts.payout.ledger import Ledger
from batch_payouts.payout.records import BatchRecord
from batch_payouts.totals import totals_by_currency
from batch_payouts.team import events as team_events
from batch_payouts.team import owners as team_owners
from batch_payouts.team import roles as team_roles
from batch_payouts.team import users as team_users
from batch_payouts.web import access, security
from batch_payouts.web.uploads import Upload, UploadStore
from batch_payouts.web.wording import web_message
from batch_payouts.web.wording import TEXT as WORDING_TEXT

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

if TYPE_CHECKING:
    from batch_payouts.web.runs import RunManager
    from batch_payouts.web.settings import WebSettings

ROWS_SHOWN = 1000
BATCH_ID = re.compile(r"[0-9a-f]{64}")
SHORT_BATCH_ID = re.compile(r"[0-9a-f]{12}")  # what the pages (and the CLI) show of a batch id


def _totals_of(rows: list) -> dict[str, int]:
    """Cents per currency of ledger rows: a page never adds pesos to dollars."""
    return totals_by_currency((r.amount for r in rows), (r.currency for r in rows))


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def expired(session: dict, idle_minutes: float, touch: bool = True) -> bool:
    """Whether a signed-in session sat unused longer than ``idle_minutes``; otherwise its clock restarts
    (unless ``touch`` is False: a page's own background check is not someone using it)."""
    now = time.time()
    seen = session.get(security.SESSION_SEEN)
    if session.get(security.SESSION_USER) and isinstance(seen, (int, float)) and now - seen > idle_minutes * 60:
        return True
    if session.get(security.SESSION_USER) and touch:
        session[security.SESSION_SEEN] = int(now)
    return False


def signed_in(page: Callable[..., Any]) -> Callable[..., Any]:
    """A page for the signed-in only: anyone else is sent to sign in first (``WebApp.guard``)."""

    @functools.wraps(page)
    async def guarded(self: Pages, request: Request) -> Response:
        if (redirect := self.guard(request)) is not None:
            return redirect
        return await page(self, request)

    return guarded


class Pages:
    """Plumbing of every page; the state it reads is set up by ``app.WebApp``."""

    settings: WebSettings
    uploads: UploadStore
    runs: RunManager
    templates: Jinja2Templates

    # -- plumbing ------------------------------------------------------------------------------
    def lang(self, request: Request) -> str:
        chosen = request.session.get("lang")
        return chosen if chosen in LANGUAGES else self.settings.lang

    def user(self, request: Request) -> str | None:
        """The signed-in user; None on loopback without configured users (one person, one machine)."""
        if self.settings.trust_user_header:
            return request.headers.get(self.settings.trust_user_header) or None
        return request.session.get(security.SESSION_USER)

    def render(self, request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        lang = self.lang(request)
        flashes = request.session.pop("flash", [])
        context.update(
            request=request, lang=lang, t=lambda es, en: en if lang == "en" else es,
            # the words for a row's state (and its group's CSS class) and for an order's status, from `states`
            label=lambda state: states.label(state, lang),
            group_class=lambda state: states.GROUP_CLASSES.get(states.GROUP_OF.get(state, ""), ""),
            order_label=lambda status: states.order_label(status, lang),
            count_label=lambda group, count=2: states.GROUP_LABELS[group].format(lang, count=count),
            unconfirmed_explained=WORDING_TEXT.UNCONFIRMED_EXPLAINED.format(lang),
            csrf=security.csrf_token(request.session), user=self.user(request), roles=self.roles(request),
            login_enabled=(bool(self.settings.users) or self.settings.team) and not self.settings.trust_user_header,
            flashes=flashes,
            sandbox=self.settings.on_sandbox,
        )
        return self.templates.TemplateResponse(request, name, context, status_code=status_code)

    def flash(self, request: Request, text: str, kind: str = "info") -> None:
        request.session.setdefault("flash", []).append({"kind": kind, "text": text})

    def error_page(self, request: Request, message: str, status_code: int = 400) -> Response:
        return self.render(request, "error.html", status_code=status_code, message=message)

    async def form(self, request: Request) -> Any:
        """The submitted form, CSRF-checked."""
        form = await request.form()
        if not security.csrf_ok(request.session, form.get(security.CSRF_FIELD)):
            raise HTTPException(403, TEXT.BAD_CSRF.format(self.lang(request)))
        return form

    def guard(self, request: Request) -> Response | None:
        """A redirect to the login page (or 401 behind a proxy) when someone must sign in first, or
        whose session sat idle too long; to the enrolment page (``/account``) for an approver or
        admin without a second factor, who may do nothing else until enrolled; 403 (and a line in
        the team's trail) when the user's roles do not allow this route (``access``)."""
        self.refresh_team()
        if self.settings.login_required and not self.user(request):
            if self.settings.trust_user_header:
                return Response("401: the reverse proxy did not name a user", status_code=401)
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        # ``?watch=1``: an open batch page asking whether its rows changed; a page left open all
        # night must not keep its session from ending.
        if expired(request.session, self.settings.idle_minutes, touch=not request.query_params.get("watch")):
            request.session.clear()
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        if self.must_enrol(request) and not access.ENROLMENT.fullmatch(request.url.path):
            if request.method not in ("GET", "HEAD"):
                self.refuse(request, "enrol second factor first", TEXT.MUST_ENROL)
            return RedirectResponse("/account", status_code=303)
        self.refuse_unless(request, access.action_of(request.method, request.url.path))
        return None

    def refresh_team(self) -> None:
        """Users added from the CLI after the server started count at once: once the ledger has
        users, sign-in and roles come from it (and stay so: users are disabled, never deleted)."""
        if self.settings.team or not ledger_address.exists(self.settings.ledger_path):
            return
        with Ledger(self.settings.ledger_path) as ledger:
            self.settings.team = team_users.has_users(ledger)

    def current_user(self, request: Request) -> team_users.User | None:
        """The signed-in user's record in the ledger (read once per request), or None."""
        if not self.settings.team:
            return None
        if not hasattr(request.state, "team_user"):
            name = self.user(request)
            with Ledger(self.settings.ledger_path) as ledger:
                request.state.team_user = team_users.get_user(ledger, name) if name else None
        return request.state.team_user

    def must_enrol(self, request: Request) -> bool:
        """An approver or admin (bootstrapped ones too) without a second factor: only enrolment until then."""
        user = self.current_user(request)
        return bool(user and not user.disabled and user.needs_second_factor and not user.enrolled)

    def roles(self, request: Request) -> frozenset[str]:
        """The signed-in user's roles; every role where there are no users (one person, one machine)."""
        if not self.settings.team:
            return frozenset(team_roles.ROLES)
        user = self.current_user(request)
        return frozenset(user.roles) if user and not user.disabled else frozenset()

    def refuse_unless(self, request: Request, action: str) -> None:
        """403 unless the user may do ``action``; the refusal is recorded with who, where and what."""
        if team_roles.may(self.roles(request), action):
            return
        self.refuse(request, action)

    def refuse(self, request: Request, needed: str, message: Text = TEXT.FORBIDDEN, **detail: Any) -> None:
        """403, recorded in the team's trail with who, from where, what they asked and what it needed."""
        with Ledger(self.settings.ledger_path) as ledger:
            team_events.record(ledger, self.user(request), client_ip(request), "forbidden", method=request.method,
                               path=request.url.path, needed=needed, **detail)
        raise HTTPException(403, message.format(self.lang(request)))

    def sees_everything(self, request: Request) -> bool:
        """Approvers, auditors and admins see every batch and upload; a preparer alone only their own."""
        return team_roles.sees_everything(self.roles(request))

    def may_see_batch(self, request: Request, batch_id: str) -> bool:
        """Whether the user may see this batch at all; a preparer asking for another's is recorded
        (the answer is "not found", so a batch id is not confirmed to exist)."""
        if self.sees_everything(request):
            return True
        name = self.user(request)
        with Ledger(self.settings.ledger_path) as ledger:
            if team_owners.owns(ledger, batch_id, name):
                return True
            team_events.record(ledger, name, client_ip(request), "forbidden", method=request.method,
                               path=request.url.path, needed="own batch", batch=batch_id)
        return False

    def owned_upload(self, request: Request, upload_id: str) -> Upload | None:
        """The upload, if this user may see it: its own uploader; for reading (GET) also the roles
        that see everything.  Every step that changes it (POST) is its uploader's alone."""
        upload = self.uploads.get(upload_id)
        if upload is None or not self.settings.login_required or upload.user == self.user(request):
            return upload
        if request.method in ("GET", "HEAD") and self.settings.team and self.sees_everything(request):
            return upload
        if self.settings.team:
            with Ledger(self.settings.ledger_path) as ledger:
                team_events.record(ledger, self.user(request), client_ip(request), "forbidden", method=request.method,
                                   path=request.url.path, needed="own upload")
        return None

    def run_options(self, upload: Upload, lang: str, **overrides: Any) -> RunOptions:
        settings = self.settings
        values = dict(
            input_path=self.uploads.path(upload), input_name=upload.name, amount_unit=upload.amount_unit, lang=lang,
            sheet=upload.sheet,
            api_base=settings.api_base, api_version=settings.api_version, ledger_path=settings.ledger_path,
            workers=settings.workers, rate_limit=settings.rate_limit, live=settings.live,
            max_total=settings.max_total, max_amount=settings.max_amount, initial_backoff=settings.initial_backoff,
        )
        values.update(overrides)
        return RunOptions(**values)

    def describe(self, error: BatchError, lang: str, upload: Upload | None = None) -> str:
        """``error`` worded for the web (``wording``): the upload named as the user named it, no server path."""
        shown_as = {}
        if upload is not None:
            stem = Path(upload.name).stem
            shown_as = {self.uploads.path(upload): upload.name,
                        self.uploads.annotated_path(upload): f"{stem}.revision.xlsx"}
        return web_message(error, lang, shown_as, self.settings.data_dir)

    def connection(self, lang: str) -> Connection:
        s = self.settings
        return Connection(api_base=s.api_base, api_version=None, rate_limit=s.rate_limit, workers=s.workers, lang=lang)

    def _running(self, batch_id: str | None) -> bool:
        """This server runs the batch now (its own memory; see ``_running_anywhere``)."""
        progress = self.runs.progress(batch_id) if batch_id else None
        return progress is not None and progress.running

    def _running_anywhere(self, batch_id: str) -> bool:
        """This server or any other sharing the ledger (another web instance, a cron job on another
        host) runs the batch now: its lock is held (``lock_probe``).  Reads the ledger: call it in a thread."""
        if self._running(batch_id):
            return True
        with Ledger(self.settings.ledger_path) as ledger:
            return lock_probe.batch_running(ledger, batch_id)

    def _batch(self, request: Request) -> tuple[BatchRecord | None, str]:
        """The batch the URL names, by its full id or the 12 characters the pages show; and its full id."""
        batch_id = request.path_params["batch_id"]
        if not (BATCH_ID.fullmatch(batch_id) or SHORT_BATCH_ID.fullmatch(batch_id)):
            return None, batch_id
        with Ledger(self.settings.ledger_path) as ledger:
            batch = ledger.batch(batch_id) if len(batch_id) == 64 else ledger.find_batch(batch_id)
        if batch is not None and not self.may_see_batch(request, batch.batch_id):
            return None, batch_id  # another's batch, to a preparer: not found (and recorded)
        return batch, batch.batch_id if batch else batch_id

