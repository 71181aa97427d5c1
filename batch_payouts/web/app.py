"""Routes and pages: upload → review → confirm → progress → results, and the batch list.

Every step calls the library the CLI calls: the review is ``run_job`` with
``dry_run`` (validation, the plan, the balance, the mode -- no request that
moves money), the run is ``run_job`` on a background thread, and the batch
pages read the ledger and call ``operations`` for statuses and cancellations.
Pages are rendered on the server (Jinja2); the one script only polls progress
and handles drag and drop, and every page works without it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, asynccontextmanager
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from batch_payouts.payout.audit import audit_path_for
from batch_payouts.payout.conekta import DEFAULT_API_VERSION, is_loopback
from batch_payouts.errors import BatchError, InputFileError
from batch_payouts import states
from batch_payouts.i18n import LANGUAGES, Plural, Text, money
from batch_payouts.totals import currency_lines, format_totals, totals_by_currency
from batch_payouts.jobs import JobResult, RunOptions, load_file, run_job, validate_job
from batch_payouts.payout.ledger import Ledger
from batch_payouts.payout.records import BatchRecord
from batch_payouts.operations import (
    PENDING_STATUSES,
    Connection,
    cancel_rows,
    open_client,
    refresh_status,
    select_rows,
    time_text,
)
from batch_payouts.report import mode_text
from batch_payouts.rules.template import write_template
from batch_payouts.rules.validation import Problem
from batch_payouts.web import security
from batch_payouts.web.runs import RunManager, ledger_progress
from batch_payouts.web.uploads import NO_FILE, Upload, UploadRefused, UploadStore

log = logging.getLogger("batch_payouts.web")
HERE = Path(__file__).parent
PROBLEMS_SHOWN = 500
ROWS_SHOWN = 1000
BATCH_ID = re.compile(r"[0-9a-f]{64}")

LOGIN_NEEDED = Text(
    es="El servidor escucha en {host}, fuera de esta computadora: se necesita inicio de sesión. Agrega usuarios "
    "en la sección [web.users] del archivo de configuración (batch-payouts hash-password da el valor) o indica "
    "--trust-user-header si un proxy ya autentica a los usuarios.",
    en="The server listens on {host}, beyond this computer: a login is required. Add users to the [web.users] "
    "table of the config file (batch-payouts hash-password prints the value), or give --trust-user-header if "
    "a reverse proxy already authenticates users.",
)
BAD_LOGIN = Text(es="Usuario o contraseña incorrectos.", en="Wrong user name or password.")
BAD_CSRF = Text(
    es="El formulario caducó o no vino de esta página. Recarga la página y vuelve a intentarlo.",
    en="The form expired or did not come from this page. Reload the page and try again.",
)
CHANGED_SINCE_REVIEW = Text(
    es="Lo que confirmaste (pagos: {count}; total: {total}) ya no coincide con la revisión. No se envió nada: "
    "revisa de nuevo.",
    en="What you confirmed (payouts: {count}; total: {total}) no longer matches the review. Nothing was sent: "
    "review again.",
)
NOTHING_TO_SEND = Text(
    es="No hay filas por pagar en este archivo: corrige las filas inválidas y súbelo de nuevo.",
    en="There are no rows to pay in this file: fix the invalid rows and upload it again.",
)
LIVE_NOT_ALLOWED = Text(
    es="La llave de API es de modo LIVE (dinero real) y este servidor no se inició con --live: no se puede "
    "pagar desde aquí. Pide a quien opera el servidor que lo inicie con --live si de verdad se debe pagar.",
    en="The API key is a LIVE key (real money) and this server was not started with --live: it cannot pay "
    "from here. Ask whoever runs the server to start it with --live if this really must be paid.",
)
# Several counts in one sentence: each after its label ("consultadas: 1"), so no word has to agree with a number.
REFRESHED = Text(es="Estados actualizados — órdenes consultadas: {count}; con cambios: {changed}.",
                 en="Statuses refreshed — orders checked: {count}; changed: {changed}.")
REFRESH_FAILED = Plural(
    one=Text(es="{count} orden no se pudo consultar; vuelve a intentar.", en="{count} order could not be checked; try again."),
    other=Text(es="{count} órdenes no se pudieron consultar; vuelve a intentar.",
               en="{count} orders could not be checked; try again."),
)
CANCELLED = Text(es="Cancelación — canceladas: {cancelled}; ya no estaban pendientes: {already}; fallaron: {failed}.",
                 en="Cancellation — cancelled: {cancelled}; no longer pending: {already}; failed: {failed}.")
NO_PENDING = Text(es="No hay referencias pendientes que cancelar.", en="There are no pending references to cancel.")
UPLOAD_TOO_LARGE = Text(es="El archivo pesa más de {limit} MB, el máximo para subir.",
                        en="The file is larger than {limit} MB, the upload limit.")
REVIEW_FAILED = Text(
    es="No se pudo revisar el archivo por un error inesperado; no se pagó nada. Vuelve a subirlo; si se repite, "
    "avisa a quien administra este servidor.",
    en="The file could not be reviewed because of an unexpected error; nothing was paid. Upload it again; if it "
    "happens again, tell whoever runs this server.",
)
NOT_FOUND = Text(es="No existe o no tienes acceso.", en="It does not exist, or you have no access to it.")
RUNNING_NOW = Text(es="El lote se está ejecutando: espera a que termine.", en="The batch is running: wait for it to finish.")
NO_RESULTS_YET = Text(es="Este lote aún no tiene hoja de resultados.", en="This batch has no results sheet yet.")




@dataclass
class WebSettings:
    """How the server reaches Conekta, where it keeps its files, and who may use it."""

    data_dir: Path
    ledger_path: Path
    lang: str = "es"
    host: str = "127.0.0.1"
    api_base: str | None = None
    api_version: str = DEFAULT_API_VERSION
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    users: dict[str, str] = field(default_factory=dict)
    trust_user_header: str | None = None
    max_upload_bytes: int = 20 * 1024 * 1024
    keep_uploads_days: float = 30.0
    amount_unit: str = "cents"
    workers: int = 8
    rate_limit: float | None = None
    live: bool = False
    max_total: int | None = None
    max_amount: int | None = None
    # How long the upload request waits for its review: a small file's review is shown at once, a
    # large one's page says it is being reviewed (and refreshes itself) while the review goes on.
    review_wait_seconds: float = 3.0
    initial_backoff: float = 0.5  # first wait before retrying a request (tests shorten it; see RunOptions)

    @property
    def login_required(self) -> bool:
        return bool(self.users) or bool(self.trust_user_header) or not is_loopback(self.host)


def _totals_of(rows: list) -> dict[str, int]:
    """Cents per currency of ledger rows: a page never adds pesos to dollars."""
    return totals_by_currency((r.amount for r in rows), (r.currency for r in rows))


def problem_parts(problem: Problem, name: str, lang: str) -> dict[str, Any]:
    """One line of the review's problem table, rendered in ``lang`` from the failure table:
    the row, the beneficiary's name, the column as the file wrote it, what is wrong and how to fix it."""
    return {"row": problem.row, "name": name, "column": problem.column,
            "problem": problem.problem(lang), "fix": problem.fix(lang)}


def signed_in(page: Callable[..., Any]) -> Callable[..., Any]:
    """A page for the signed-in only: anyone else is sent to sign in first (``WebApp.guard``)."""

    @functools.wraps(page)
    async def guarded(self: WebApp, request: Request) -> Response:
        if (redirect := self.guard(request)) is not None:
            return redirect
        return await page(self, request)

    return guarded


class WebApp:
    """The app's state: settings, uploads, runs; one per server."""

    def __init__(self, settings: WebSettings) -> None:
        if not is_loopback(settings.host) and not (settings.users or settings.trust_user_header):
            raise BatchError(LOGIN_NEEDED, host=settings.host)
        self.settings = settings
        self.uploads = UploadStore(settings.data_dir / "uploads", settings.max_upload_bytes)
        self.uploads.prune(settings.keep_uploads_days)
        self.results_dir = settings.data_dir / "results"
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self.runs = RunManager(settings.lang)
        self._review_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="review")
        self._reviews: dict[str, Future] = {}  # upload id -> its review under way
        self._reviews_lock = threading.Lock()
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["money"] = money
        self.templates.env.globals["currency_lines"] = currency_lines  # a total: one line per currency
        self.templates.env.globals["format_totals"] = format_totals
        self.templates.env.filters["when"] = time_text

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
            unconfirmed_explained=states.UNCONFIRMED_EXPLAINED.format(lang),
            csrf=security.csrf_token(request.session), user=self.user(request),
            login_enabled=bool(self.settings.users) and not self.settings.trust_user_header, flashes=flashes,
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
            raise HTTPException(403, BAD_CSRF.format(self.lang(request)))
        return form

    def guard(self, request: Request) -> Response | None:
        """A redirect to the login page (or 401 behind a proxy) when someone must sign in first."""
        if not self.settings.login_required or self.user(request):
            return None
        if self.settings.trust_user_header:
            return Response("401: the reverse proxy did not name a user", status_code=401)
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    def owned_upload(self, request: Request, upload_id: str) -> Upload | None:
        upload = self.uploads.get(upload_id)
        if upload is None or (self.settings.login_required and upload.user != self.user(request)):
            return None
        return upload

    def run_options(self, upload: Upload, lang: str, **overrides: Any) -> RunOptions:
        settings = self.settings
        values = dict(
            input_path=self.uploads.path(upload), input_name=upload.name, amount_unit=upload.amount_unit, lang=lang,
            api_base=settings.api_base, api_version=settings.api_version, ledger_path=settings.ledger_path,
            workers=settings.workers, rate_limit=settings.rate_limit, live=settings.live,
            max_total=settings.max_total, max_amount=settings.max_amount, initial_backoff=settings.initial_backoff,
        )
        values.update(overrides)
        return RunOptions(**values)

    def connection(self, lang: str) -> Connection:
        s = self.settings
        return Connection(api_base=s.api_base, api_version=None, rate_limit=s.rate_limit, workers=s.workers, lang=lang)

    # -- upload and review ------------------------------------------------------------------------
    @signed_in
    async def home(self, request: Request) -> Response:
        return self.render(request, "upload.html", max_mb=self.settings.max_upload_bytes // 2**20,
                           amount_unit=self.settings.amount_unit)

    @signed_in
    async def template_file(self, request: Request) -> Response:
        lang = self.lang(request)
        folder = Path(tempfile.mkdtemp(prefix="template-", dir=self.settings.data_dir))
        name = "plantilla_pagos.xlsx" if lang == "es" else "payouts_template.xlsx"
        path = await run_in_threadpool(write_template, folder / name, lang)
        return FileResponse(path, filename=name, background=BackgroundTask(_remove_tree, folder))

    @signed_in
    async def upload(self, request: Request) -> Response:
        lang = self.lang(request)
        try:
            form = await self.form(request)
        except security.BodyTooLarge:
            return self.error_page(request, UPLOAD_TOO_LARGE.format(lang, limit=self.settings.max_upload_bytes // 2**20), 413)
        sent = form.get("file")
        if not isinstance(sent, UploadFile) or not sent.filename:
            self.flash(request, NO_FILE.format(lang), "error")
            return RedirectResponse("/", status_code=303)
        unit = form.get("amount_unit") if form.get("amount_unit") in ("cents", "pesos") else self.settings.amount_unit
        try:
            upload = await run_in_threadpool(
                self.uploads.save, sent.filename, sent.file, user=self.user(request), amount_unit=unit
            )
        except UploadRefused as refused:
            self.flash(request, refused.message(lang), "error")
            return RedirectResponse("/", status_code=303)
        finally:
            await sent.close()
        review = asyncio.wrap_future(self.start_review(upload.id, lang))
        try:  # a small file: straight to its review; a large one: to the page that says it is under way
            await asyncio.wait_for(asyncio.shield(review), timeout=self.settings.review_wait_seconds)
        except asyncio.TimeoutError:
            pass
        return RedirectResponse(f"/uploads/{upload.id}", status_code=303)

    def start_review(self, upload_id: str, lang: str) -> Future:
        """The upload's review, on a background thread: started unless one is under way (a server
        restarted during a review starts it again when the page is asked for)."""
        with self._reviews_lock:
            future = self._reviews.get(upload_id)
            if future is None:
                future = self._review_pool.submit(self._review_in_background, upload_id, lang)
                self._reviews[upload_id] = future
        return future

    def _review_in_background(self, upload_id: str, lang: str) -> None:
        try:
            upload = self.uploads.get(upload_id)
            if upload is not None and upload.review is None:
                try:
                    self.review(upload, lang)
                except Exception:  # recorded, so the page says so instead of waiting for ever
                    log.exception("the review of upload %s failed", upload_id)
                    upload.review = {"error": REVIEW_FAILED.format(lang), "blocker": None}
                    self.uploads.put(upload)
        finally:
            with self._reviews_lock:
                self._reviews.pop(upload_id, None)

    def stop_reviews(self) -> None:
        """At shutdown: reviews not started are dropped (their page starts them again)."""
        self._review_pool.shutdown(wait=False, cancel_futures=True)

    def review(self, upload: Upload, lang: str) -> None:
        """A dry run of the upload (validation, the plan, the balance, the mode; nothing is sent),
        kept with the upload so the review page and the confirmation read the same facts."""
        review: dict[str, Any] = {"error": None, "blocker": None}
        options = self.run_options(upload, lang, output_path=self.uploads.annotated_path(upload), dry_run=True)
        try:
            loaded = load_file(options.input_path, options)  # read and validated once, for both paths below
            try:
                result = run_job(options, environ=self.settings.environ, loaded=loaded)
            except InputFileError:
                raise
            except BatchError as error:  # it can, but cannot be paid now: still show what is wrong with the rows
                review["blocker"] = error.message(lang)
                result = validate_job(options, loaded=loaded)
        except InputFileError as error:  # the file itself cannot be read: nothing more to show
            review["error"] = error.message(lang)
            upload.review = review
            self.uploads.put(upload)
            return
        review.update(self._review_facts(result, lang))
        if review["mode"] == "LIVE" and not self.settings.live and review["blocker"] is None:
            review["blocker"] = LIVE_NOT_ALLOWED.format(lang)
        if review["to_send"] == 0 and review["blocker"] is None and review["already_done"] == 0:
            review["blocker"] = NOTHING_TO_SEND.format(lang)
        upload.review = review
        upload.batch_id = result.batch_id
        self.uploads.put(upload)

    @staticmethod
    def _review_facts(result: JobResult, lang: str) -> dict[str, Any]:
        validated = result.loaded.validated
        valid = validated["valid"].astype(bool)
        totals = totals_by_currency(validated.loc[valid, "amount"].tolist(), validated.loc[valid, "currency"].tolist())
        problems = result.loaded.problems
        shown = [problem_parts(p, str(validated.at[p.row, "name"] or ""), lang) for p in problems[:PROBLEMS_SHOWN]]
        plan = result.plan
        return {
            "rows": int(len(validated)), "valid": int(valid.sum()), "invalid": int((~valid).sum()),
            "valid_totals": totals, "problems": shown, "problems_total": len(problems),
            "batch_id": result.batch_id,
            "mode": mode_text(result.livemode),
            "to_send": len(plan.to_send) if plan else 0, "already_done": plan.already_done if plan else 0,
            "send_totals": dict(plan.totals) if plan else {}, "balance": result.balance,
        }

    @signed_in
    async def review_page(self, request: Request) -> Response:
        upload = self.owned_upload(request, request.path_params["upload_id"])
        if upload is None:
            return self.error_page(request, NOT_FOUND.format(self.lang(request)), 404)
        if upload.review is None:
            self.start_review(upload.id, self.lang(request))
            return self.render(request, "reviewing.html", upload=upload)
        return self.render(request, "review.html", upload=upload, review=upload.review,
                           running=self._running(upload.batch_id))

    @signed_in
    async def annotated(self, request: Request) -> Response:
        upload = self.owned_upload(request, request.path_params["upload_id"])
        path = self.uploads.annotated_path(upload) if upload else None
        if path is None or not path.exists():
            return self.error_page(request, NOT_FOUND.format(self.lang(request)), 404)
        return FileResponse(path, filename=f"{Path(upload.name).stem}.revision.xlsx")

    @signed_in
    async def confirm_page(self, request: Request) -> Response:
        upload = self.owned_upload(request, request.path_params["upload_id"])
        if upload is not None and upload.review is None:  # still being reviewed
            return RedirectResponse(f"/uploads/{upload.id}", status_code=303)
        if upload is None or upload.review.get("error"):
            return self.error_page(request, NOT_FOUND.format(self.lang(request)), 404)
        if upload.review.get("blocker"):
            return RedirectResponse(f"/uploads/{upload.id}", status_code=303)
        return self.render(request, "confirm.html", upload=upload, review=upload.review)

    @signed_in
    async def confirm(self, request: Request) -> Response:
        form = await self.form(request)
        lang = self.lang(request)
        upload = self.owned_upload(request, request.path_params["upload_id"])
        if upload is not None and upload.review is None:  # still being reviewed: nothing to confirm yet
            return RedirectResponse(f"/uploads/{upload.id}", status_code=303)
        if upload is None or upload.review.get("error") or not upload.batch_id:
            return self.error_page(request, NOT_FOUND.format(lang), 404)
        review = upload.review
        if review.get("blocker"):
            return self.error_page(request, review["blocker"], 409)
        if form.get("count") != str(review["to_send"]) or form.get("total") != format_totals(review["send_totals"]):
            return self.error_page(
                request, CHANGED_SINCE_REVIEW.format(lang, count=form.get("count"), total=form.get("total")), 409
            )
        options = self.run_options(upload, lang, output_path=self.results_dir / f"{upload.batch_id}.xlsx")
        try:
            self.runs.start(upload.batch_id, upload.id, self.user(request), options, self.settings.environ)
        except BatchError as error:
            self.flash(request, error.message(lang), "error")
        return RedirectResponse(f"/batches/{upload.batch_id}", status_code=303)

    # -- batches ---------------------------------------------------------------------------------
    def _running(self, batch_id: str | None) -> bool:
        progress = self.runs.progress(batch_id) if batch_id else None
        return progress is not None and progress.running

    def _batch(self, request: Request) -> tuple[BatchRecord | None, str]:
        batch_id = request.path_params["batch_id"]
        if not BATCH_ID.fullmatch(batch_id):
            return None, batch_id
        with Ledger(self.settings.ledger_path) as ledger:
            return ledger.batch(batch_id), batch_id

    @signed_in
    async def batches(self, request: Request) -> Response:

        def load() -> list[BatchRecord]:
            if not self.settings.ledger_path.exists():
                return []
            with Ledger(self.settings.ledger_path) as ledger:
                return ledger.batches()

        found = await run_in_threadpool(load)
        running = {batch.batch_id for batch in found if self._running(batch.batch_id)}
        return self.render(request, "batches.html", batches=found, running=running)

    @signed_in
    async def batch_page(self, request: Request) -> Response:
        batch, batch_id = await run_in_threadpool(self._batch, request)
        progress = self.runs.progress(batch_id) if BATCH_ID.fullmatch(batch_id) else None
        if batch is None and progress is None:
            return self.error_page(request, NOT_FOUND.format(self.lang(request)), 404)

        def details() -> dict[str, Any]:
            with Ledger(self.settings.ledger_path) as ledger:
                rows = ledger.rows(batch_id) if batch else []
            created = [r for r in rows if r.state == "created"]
            pending = [r for r in created if (r.order_status or "pending") in PENDING_STATUSES]
            return {"rows": sorted(rows, key=lambda r: r.row_number)[:ROWS_SHOWN], "rows_total": len(rows),
                    "pending": len(pending), "pending_totals": _totals_of(pending), "created_totals": _totals_of(created),
                    "progress": progress.as_json() if progress else ledger_progress(batch_id, rows)}

        facts = await run_in_threadpool(details)
        output = Path(batch.output_path) if batch and batch.output_path else None
        return self.render(
            request, "batch.html", batch=batch, batch_id=batch_id,
            has_results=bool(output and output.exists()),
            has_audit=bool(output and audit_path_for(output).exists()), **facts,
        )

    @signed_in
    async def progress(self, request: Request) -> Response:
        batch_id = request.path_params["batch_id"]
        progress = self.runs.progress(batch_id) if BATCH_ID.fullmatch(batch_id) else None
        if progress is not None:
            return JSONResponse(progress.as_json())
        batch, batch_id = await run_in_threadpool(self._batch, request)
        if batch is None:
            return JSONResponse({"error": "not found"}, status_code=404)

        def from_ledger() -> dict[str, Any]:
            with Ledger(self.settings.ledger_path) as ledger:
                return ledger_progress(batch_id, ledger.rows(batch_id))

        return JSONResponse(await run_in_threadpool(from_ledger))

    @signed_in
    async def download(self, request: Request) -> Response:
        """The results sheet or the audit log of a batch: files this tool wrote, never an upload."""
        lang = self.lang(request)
        batch, _ = await run_in_threadpool(self._batch, request)
        if batch is None:
            return self.error_page(request, NOT_FOUND.format(lang), 404)
        if self._running(batch.batch_id):
            return self.error_page(request, RUNNING_NOW.format(lang), 409)
        if request.path_params["kind"] not in ("results", "audit"):
            return self.error_page(request, NOT_FOUND.format(lang), 404)
        output = Path(batch.output_path) if batch.output_path else None
        stem = Path(batch.input_name).stem
        if request.path_params["kind"] == "audit":
            path, name, media = (audit_path_for(output) if output else None), f"{stem}.audit.jsonl", "application/x-ndjson"
        else:
            path, name, media = output, f"{stem}.results{output.suffix if output else ''}", None
        if path is None or not path.exists():
            return self.error_page(request, NO_RESULTS_YET.format(lang), 404)
        return FileResponse(path, filename=name, media_type=media)

    @signed_in
    async def refresh(self, request: Request) -> Response:
        """Ask Conekta every created order's status now (``batch-payouts status``)."""

        def work(lang: str, form: Any, batch: BatchRecord, ledger: Ledger, client: Callable[[str], Any]) -> None:
            results = refresh_status(ledger, client("web status"), batch, workers=self.settings.workers)
            self.flash(request, REFRESHED.format(lang, count=len(results), changed=sum(r.changed for r in results)))
            failed = [r for r in results if r.error]
            if failed:
                self.flash(request, REFRESH_FAILED.format(lang, count=len(failed)), "error")

        return await self._batch_operation(request, work)

    @signed_in
    async def cancel_page(self, request: Request) -> Response:
        batch, batch_id = await run_in_threadpool(self._batch, request)
        if batch is None:
            return self.error_page(request, NOT_FOUND.format(self.lang(request)), 404)

        def pending() -> list:
            with Ledger(self.settings.ledger_path) as ledger:
                try:
                    return select_rows(ledger, batch, all_pending=True)
                except BatchError:
                    return []

        rows = await run_in_threadpool(pending)
        return self.render(request, "cancel.html", batch=batch, batch_id=batch_id, rows=rows[:ROWS_SHOWN],
                           count=len(rows), totals=_totals_of(rows))

    @signed_in
    async def cancel(self, request: Request) -> Response:
        """Cancel every pending reference (``batch-payouts cancel --all-pending``), as many as the
        confirmation page named."""

        def work(lang: str, form: Any, batch: BatchRecord, ledger: Ledger, client: Callable[[str], Any]) -> None:
            rows = select_rows(ledger, batch, all_pending=True)
            if not rows:
                self.flash(request, NO_PENDING.format(lang))
                return
            if form.get("count") != str(len(rows)):
                raise BatchError(CHANGED_SINCE_REVIEW, count=form.get("count"), total=format_totals(_totals_of(rows)))
            outcomes = cancel_rows(ledger, client("web cancel"), batch, rows)
            tally = {kind: sum(o.result == kind for o in outcomes) for kind in ("cancelled", "already", "failed")}
            self.flash(request, CANCELLED.format(lang, **tally), "error" if tally["failed"] else "info")

        return await self._batch_operation(request, work)

    async def _batch_operation(self, request: Request, work: Callable[..., None]) -> Response:
        """A POST about one finished batch (its route is ``signed_in``): CSRF-checked, not while it
        runs; ``work`` gets the ledger and opens the batch's client (same key, audited) only if it needs one."""
        form = await self.form(request)
        lang = self.lang(request)
        batch, batch_id = await run_in_threadpool(self._batch, request)
        if batch is None:
            return self.error_page(request, NOT_FOUND.format(lang), 404)
        if self._running(batch_id):
            return self.error_page(request, RUNNING_NOW.format(lang), 409)

        def run() -> None:
            with ExitStack() as stack:
                ledger = stack.enter_context(Ledger(self.settings.ledger_path))

                def client(command: str):
                    return open_client(stack, batch, ledger, self.connection(lang), environ=self.settings.environ,
                                       command=command)

                work(lang, form, batch, ledger, client)

        try:
            await run_in_threadpool(run)
        except BatchError as error:
            self.flash(request, error.message(lang), "error")
        return RedirectResponse(f"/batches/{batch_id}", status_code=303)

    # -- sign in, language -------------------------------------------------------------------------
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


def _remove_tree(folder: Path) -> None:
    for child in folder.iterdir():
        child.unlink(missing_ok=True)
    folder.rmdir()


def create_app(settings: WebSettings) -> Starlette:
    """The ASGI app.  Raises ``BatchError`` when it must not start (a public address without login)."""
    web = WebApp(settings)
    routes = [
        Route("/", web.home),
        Route("/template.xlsx", web.template_file),
        Route("/upload", web.upload, methods=["POST"]),
        Route("/uploads/{upload_id}", web.review_page),
        Route("/uploads/{upload_id}/annotated.xlsx", web.annotated),
        Route("/uploads/{upload_id}/confirm", web.confirm_page, methods=["GET"]),
        Route("/uploads/{upload_id}/confirm", web.confirm, methods=["POST"]),
        Route("/batches", web.batches),
        Route("/batches/{batch_id}", web.batch_page),
        Route("/batches/{batch_id}/progress", web.progress),
        Route("/batches/{batch_id}/download/{kind:str}", web.download),
        Route("/batches/{batch_id}/refresh", web.refresh, methods=["POST"]),
        Route("/batches/{batch_id}/cancel", web.cancel_page, methods=["GET"]),
        Route("/batches/{batch_id}/cancel", web.cancel, methods=["POST"]),
        Route("/login", web.login_page, methods=["GET"]),
        Route("/login", web.login, methods=["POST"]),
        Route("/logout", web.logout, methods=["POST"]),
        Route("/lang/{code}", web.set_lang),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [
        Middleware(security.BodyLimit, limit=settings.max_upload_bytes + 64 * 1024),
        Middleware(SessionMiddleware, secret_key=security.session_secret(settings.data_dir),
                   session_cookie="batch_payouts_session", same_site="strict", max_age=12 * 3600),
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
