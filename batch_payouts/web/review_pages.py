"""Upload, review and confirm: a dry run of the file first, then the run the user confirmed.

The review is ``run_job`` with ``dry_run`` (validation, the plan, the balance, the mode -- no
request that moves money), on a background thread so a large file's page can say it is under
way; the confirmation starts the same ``run_job`` for real (``runs.RunManager``).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from batch_payouts.errors import BatchError, InputFileError
from batch_payouts.i18n import catalogue
from batch_payouts.jobs.load import JobResult, load_file, validate_job
from batch_payouts.jobs.run import run_job
from batch_payouts.report import mode_text
from batch_payouts.rules.template import write_template
from batch_payouts.rules.validation import Problem
from batch_payouts.totals import format_totals, totals_by_currency
from batch_payouts.web import security
from batch_payouts.web.pages import Pages, signed_in
from batch_payouts.web.pages import TEXT as PAGES_TEXT
from batch_payouts.web.uploads import Upload, UploadRefused
from batch_payouts.web.uploads import TEXT as UPLOADS_TEXT
from batch_payouts.web.wording import problem_words, unit_note_words
from batch_payouts.web.wording import TEXT as WORDING_TEXT

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

log = logging.getLogger("batch_payouts.web")
PROBLEMS_SHOWN = 500


def problem_parts(problem: Problem, name: str, lang: str) -> dict[str, Any]:
    """One line of the review's problem table, rendered in ``lang`` from the failure table:
    the row, the beneficiary's name, the column as the file wrote it, what is wrong and how to fix it."""
    wrong, fix = problem_words(problem, lang)  # web wording where the CLI's names an option
    return {"row": problem.row, "name": name, "column": problem.column, "problem": wrong, "fix": fix}


class ReviewPages(Pages):
    """The upload, review and confirmation pages."""

    # four eyes (team_pages.TeamPages, beside this class in app.WebApp)
    review_approval: Callable[..., dict[str, Any]]
    approval_of: Callable[..., dict[str, Any] | None]

    _review_pool: ThreadPoolExecutor
    _reviews: dict[str, Future]  # upload id -> its review under way
    _reviews_lock: threading.Lock

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
            return self.error_page(request, TEXT.UPLOAD_TOO_LARGE.format(lang, limit=self.settings.max_upload_bytes // 2**20), 413)
        sent = form.get("file")
        if not isinstance(sent, UploadFile) or not sent.filename:
            self.flash(request, UPLOADS_TEXT.NO_FILE.format(lang), "error")
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
        return await self._to_review(upload.id, lang)

    async def _to_review(self, upload_id: str, lang: str) -> Response:
        """Start the review and go to its page: a small file's review is shown at once, a large
        one's page says it is under way."""
        review = asyncio.wrap_future(self.start_review(upload_id, lang))
        try:
            await asyncio.wait_for(asyncio.shield(review), timeout=self.settings.review_wait_seconds)
        except asyncio.TimeoutError:
            pass
        return RedirectResponse(f"/uploads/{upload_id}", status_code=303)

    def _reviewed_upload(
        self, request: Request, usable: Callable[[Upload], object]
    ) -> tuple[Upload, None] | tuple[None, Response]:
        """The user's upload named in the URL with its finished review, or the answer to give instead:
        while the review is still being made, the redirect to its page (choosing a sheet or confirming
        needs the finished review); when it is not the user's or not ``usable`` for this step, not found."""
        upload = self.owned_upload(request, request.path_params["upload_id"])
        if upload is not None and upload.review is None:
            return None, RedirectResponse(f"/uploads/{upload.id}", status_code=303)
        if upload is None or not usable(upload):
            return None, self.error_page(request, PAGES_TEXT.NOT_FOUND.format(self.lang(request)), 404)
        return upload, None

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
                    upload.review = {"error": TEXT.REVIEW_FAILED.format(lang), "blocker": None}
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
        review["sheets"] = workbook_sheets(options.input_path) if upload.suffix == ".xlsx" else []
        review["sheet"] = upload.sheet
        try:
            loaded = load_file(options.input_path, options)  # read and validated once, for both paths below
            try:
                result = run_job(options, environ=self.settings.environ, loaded=loaded)
            except InputFileError:
                raise
            except BatchError as error:  # it can, but cannot be paid now: still show what is wrong with the rows
                review["blocker"] = self.describe(error, lang, upload)
                result = validate_job(options, loaded=loaded)
        except InputFileError as error:  # the file itself cannot be read: nothing more to show
            review["error"] = self.describe(error, lang, upload)
            review["sheet"] = getattr(error, "sheet", None) or upload.sheet
            upload.review = review
            self.uploads.put(upload)
            return
        review.update(self._review_facts(result, lang))
        review.update(self.review_approval(result.pin))  # four eyes: the pin and the approvals it needs
        review["sheet"] = result.loaded.raw.attrs.get("sheet") or upload.sheet
        if review["mode"] == "LIVE" and not self.settings.live and review["blocker"] is None:
            review["blocker"] = WORDING_TEXT.LIVE_NOT_ALLOWED.format(lang)
        if review["to_send"] == 0 and review["blocker"] is None and review["already_done"] == 0:
            review["blocker"] = TEXT.NOTHING_TO_SEND.format(lang)
        upload.review = review
        upload.batch_id = result.batch_id
        self.uploads.put(upload)
        self.claim_batch(upload)  # four eyes: the uploader's batch, for "a preparer sees their own"

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
            # rows, total, largest and median per currency, and how the unit was decided (rules/amount_unit.py)
            "amount_lines": [f.line(result.loaded.amount_unit, lang) for f in result.loaded.figures()],
            "unit_notes": [unit_note_words(note, lang) for note in result.loaded.unit.notes],
        }

    @signed_in
    async def review_page(self, request: Request) -> Response:
        upload = self.owned_upload(request, request.path_params["upload_id"])
        if upload is None:
            return self.error_page(request, PAGES_TEXT.NOT_FOUND.format(self.lang(request)), 404)
        if upload.review is None:
            self.start_review(upload.id, self.lang(request))
            return self.render(request, "reviewing.html", upload=upload)
        return self.render(request, "review.html", upload=upload, review=upload.review,
                           running=self._running(upload.batch_id), approval=self.approval_of(upload.review))

    @signed_in
    async def choose_sheet(self, request: Request) -> Response:
        """Review the upload again, reading the sheet the user chose (the web's ``--sheet``)."""
        form = await self.form(request)
        lang = self.lang(request)
        upload, instead = self._reviewed_upload(request, lambda upload: upload.suffix == ".xlsx")
        if instead:
            return instead
        if self._running(upload.batch_id):
            return RedirectResponse(f"/uploads/{upload.id}", status_code=303)
        names = [sheet["name"] for sheet in upload.review.get("sheets") or []]
        chosen = str(form.get("sheet") or "")
        if chosen not in names:
            return self.error_page(request, TEXT.NO_SUCH_SHEET.format(lang, sheet=chosen, name=upload.name), 400)
        upload.sheet, upload.review, upload.batch_id = chosen, None, None
        self.uploads.put(upload)
        return await self._to_review(upload.id, lang)

    @signed_in
    async def annotated(self, request: Request) -> Response:
        upload = self.owned_upload(request, request.path_params["upload_id"])
        path = self.uploads.annotated_path(upload) if upload else None
        if path is None or not path.exists():
            return self.error_page(request, PAGES_TEXT.NOT_FOUND.format(self.lang(request)), 404)
        return FileResponse(path, filename=f"{Path(upload.name).stem}.revision.xlsx")

    @signed_in
    async def confirm_page(self, request: Request) -> Response:
        upload, instead = self._reviewed_upload(request, lambda upload: not upload.review.get("error"))
        if instead:
            return instead
        if upload.review.get("blocker"):
            return RedirectResponse(f"/uploads/{upload.id}", status_code=303)
        return self.render(request, "confirm.html", upload=upload, review=upload.review)

    @signed_in
    async def confirm(self, request: Request) -> Response:
        form = await self.form(request)
        lang = self.lang(request)
        upload, instead = self._reviewed_upload(
            request, lambda upload: not upload.review.get("error") and upload.batch_id
        )
        if instead:
            return instead
        review = upload.review
        if review.get("blocker"):
            return self.error_page(request, review["blocker"], 409)
        if form.get("count") != str(review["to_send"]) or form.get("total") != format_totals(review["send_totals"]):
            return self.error_page(
                request, PAGES_TEXT.CHANGED_SINCE_REVIEW.format(lang, count=form.get("count"), total=form.get("total")), 409
            )
        approval = self.approval_of(review)
        if approval and not (approval["request"] and approval["request"].state == "approved"):
            return self.error_page(request, TEXT.NOT_APPROVED.format(lang), 409)
        options = self.run_options(upload, lang, output_path=self.results_dir / f"{upload.batch_id}.xlsx",
                                   operator=self.user(request))
        try:
            self.runs.start(upload.batch_id, upload.id, self.user(request), options, self.settings.environ,
                            planned=review["valid"])
        except BatchError as error:
            self.flash(request, self.describe(error, lang, upload), "error")
        return RedirectResponse(f"/batches/{upload.batch_id}", status_code=303)


def workbook_sheets(path: Path) -> list[dict[str, Any]]:
    """Every worksheet of a workbook, in order, and whether Excel hides it: the review's sheet list.
    Empty when the workbook cannot be opened (its review then says why)."""
    try:
        from python_calamine import CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum

        metadata = CalamineWorkbook.from_path(str(path)).sheets_metadata
        return [{"name": m.name, "hidden": m.visible != SheetVisibleEnum.Visible}
                for m in metadata if m.typ == SheetTypeEnum.WorkSheet]
    except Exception:  # noqa: BLE001 - a damaged or locked workbook: reading it says what is wrong
        return []
    except BaseException as exc:  # the Rust reader's panics derive from BaseException (see files.read)
        if type(exc).__name__ != "PanicException":
            raise
        return []


def _remove_tree(folder: Path) -> None:
    for child in folder.iterdir():
        child.unlink(missing_ok=True)
    folder.rmdir()

