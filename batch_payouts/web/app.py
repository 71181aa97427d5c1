"""Routes and pages: upload → review → confirm → progress → results, and the batch list.

Every step calls the library the CLI calls: the review is ``run_job`` with
``dry_run`` (validation, the plan, the balance, the mode -- no request that
moves money), the run is ``run_job`` on a background thread, and the batch
pages read the ledger and call ``operations`` for statuses and cancellations.
Pages are rendered on the server (Jinja2); the one script only polls progress
and handles drag and drop, and every page works without it.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from jinja2 import pass_context
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue, money
from batch_payouts.payout.conekta import is_loopback
from batch_payouts.totals import currency_lines, format_totals
from batch_payouts.web import formats, security
from batch_payouts.web.account import AccountPages
from batch_payouts.web.admin_pages import AdminPages
from batch_payouts.web.after_pages import AfterPages
from batch_payouts.web.batch_pages import BatchPages
from batch_payouts.web.review_pages import ReviewPages, problem_parts
from batch_payouts.web.runs import RunManager
from batch_payouts.web.settings import WebSettings
from batch_payouts.web.team_pages import TeamPages
from batch_payouts.web.uploads import UploadStore
from batch_payouts.web.webhooks import WebhookKey, WebhookReceiver

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

__all__ = ["WebApp", "WebSettings", "create_app", "problem_parts"]

HERE = Path(__file__).parent


class WebApp(ReviewPages, BatchPages, AfterPages, AccountPages, TeamPages, AdminPages, WebhookReceiver):
    """The app's state: settings, uploads, runs; one per server."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self.start_team()  # [web.users] into the ledger; sign-in and roles from the ledger's users
        if not is_loopback(settings.host) and not (settings.team or settings.trust_user_header):
            raise BatchError(TEXT.LOGIN_NEEDED, host=settings.host)
        self.uploads = UploadStore(settings.data_dir / "uploads", settings.max_upload_bytes)
        self.uploads.prune(settings.keep_uploads_days)
        self.results_dir = settings.data_dir / "results"
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self.runs = RunManager(settings.lang, settings.data_dir)
        self._review_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="review")
        self._reviews: dict[str, Future] = {}  # upload id -> its review under way
        self._reviews_lock = threading.Lock()
        self.webhook_key = WebhookKey(settings)
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["money"] = money
        self.templates.env.globals["currency_lines"] = currency_lines  # a total: one line per currency
        self.templates.env.globals["format_totals"] = format_totals
        self.templates.env.filters["when"] = _when  # "1 dic 2026, 16:55", in the page's language
        self.templates.env.filters["num"] = formats.number  # counts with thousands separators


@pass_context
def _when(context, unix_seconds: float | None) -> str:
    return formats.when(unix_seconds, context.get("lang", "es"))


def create_app(settings: WebSettings) -> Starlette:
    """The ASGI app.  Raises ``BatchError`` when it must not start (a public address without login)."""
    web = WebApp(settings)
    routes = [
        Route("/", web.home),
        Route("/template.xlsx", web.template_file),
        Route("/upload", web.upload, methods=["POST"]),
        Route("/uploads/{upload_id}", web.review_page),
        Route("/uploads/{upload_id}/sheet", web.choose_sheet, methods=["POST"]),
        Route("/uploads/{upload_id}/annotated.xlsx", web.annotated),
        Route("/uploads/{upload_id}/confirm", web.confirm_page, methods=["GET"]),
        Route("/uploads/{upload_id}/confirm", web.confirm, methods=["POST"]),
        Route("/batches", web.batches),
        Route("/batches/{batch_id}", web.batch_page),
        Route("/batches/{batch_id}/progress", web.progress),
        Route("/batches/{batch_id}/download/{kind:str}", web.download),
        Route("/batches/{batch_id}/refresh", web.refresh, methods=["POST"]),
        Route("/batches/{batch_id}/reissue", web.reissue_page, methods=["GET"]),
        Route("/batches/{batch_id}/reissue", web.reissue, methods=["POST"]),
        Route("/batches/{batch_id}/cancel", web.cancel_page, methods=["GET"]),
        Route("/batches/{batch_id}/cancel", web.cancel, methods=["POST"]),
        Route("/uploads/{upload_id}/submit", web.submit, methods=["POST"]),
        Route("/approvals", web.approvals_page),
        Route("/approvals/{request_id}/sheet", web.approval_sheet),
        Route("/approvals/{request_id}/approve", web.approve, methods=["POST"]),
        Route("/approvals/{request_id}/reject", web.reject, methods=["POST"]),
        Route("/account", web.account, methods=["GET"]),
        Route("/account/totp", web.enrol, methods=["POST"]),
        Route("/admin", web.admin_page, methods=["GET"]),
        Route("/admin/users", web.add_user, methods=["POST"]),
        Route("/admin/users/{name}", web.admin_user_page, methods=["GET"]),
        Route("/admin/users/{name}/roles", web.set_roles, methods=["POST"]),
        Route("/admin/users/{name}/disable", web.disable_user, methods=["POST"]),
        Route("/admin/users/{name}/password", web.reset_password, methods=["POST"]),
        Route("/admin/policy", web.admin_policy_page, methods=["GET"]),
        Route("/admin/policy", web.set_policy, methods=["POST"]),
        Route("/login/code", web.login_code_page, methods=["GET"]),
        Route("/login/code", web.login_code, methods=["POST"]),
        Route("/webhooks/conekta", web.conekta_webhook, methods=["POST"]),
        Route("/login", web.login_page, methods=["GET"]),
        Route("/login", web.login, methods=["POST"]),
        Route("/logout", web.logout, methods=["POST"]),
        Route("/lang/{code}", web.set_lang),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [
        Middleware(security.BodyLimit, limit=settings.max_upload_bytes + 64 * 1024),
        # Lax (not Strict): a link to the approvals queue in an e-mail opens signed in; every
        # state-changing request is a POST with a CSRF token, which Lax never sends cross-site.
        Middleware(security.SecureCookies),
        Middleware(SessionMiddleware, secret_key=security.session_secret(settings.data_dir),
                   session_cookie="batch_payouts_session", same_site="lax", max_age=12 * 3600),
        Middleware(security.SecurityHeaders),
    ]
    @asynccontextmanager
    async def lifespan(_app: Starlette):
        yield
        web.stop_reviews()
        await run_in_threadpool(web.runs.shutdown)

    app = Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: web.http_error},
                    lifespan=lifespan)
    app.state.web = web
    return app
