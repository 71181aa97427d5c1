"""The batch pages: the list, one batch's progress and results, downloads, statuses, cancelling.

They read the ledger (so a batch run from the CLI, or by another web instance sharing the ledger, shows up too) and call ``operations`` for
statuses and cancellations, the same functions as ``batch-payouts status`` and ``cancel``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response

from batch_payouts.errors import BatchError
from batch_payouts import ledger_address
from batch_payouts.i18n import catalogue
from batch_payouts.operations import PENDING_STATUSES, cancel_rows, open_client, refresh_status, select_rows
from batch_payouts.payout import lock_probe
from batch_payouts.payout.audit import audit_path_for
from batch_payouts.payout.ledger import Ledger
from batch_payouts.payout.records import BatchRecord
from batch_payouts.team import owners as team_owners
from batch_payouts.totals import format_totals
from batch_payouts.web.pages import BATCH_ID, ROWS_SHOWN, Pages, _totals_of, signed_in
from batch_payouts.web.pages import TEXT as PAGES_TEXT
from batch_payouts.web.after_pages import order_chart, orders_mark
from batch_payouts.web.results import SheetFacts, sheet_facts
from batch_payouts.web.runs import ledger_progress

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


class BatchPages(Pages):
    """The batch list and one batch's page, with what can be done about a finished batch."""

    @signed_in
    async def batches(self, request: Request) -> Response:

        def load() -> tuple[list[BatchRecord], set[str]]:
            if not ledger_address.exists(self.settings.ledger_path):
                return [], set()
            with Ledger(self.settings.ledger_path) as ledger:
                found = ledger.batches()
                if self.settings.team and not self.sees_everything(request):  # a preparer: their own batches
                    mine = team_owners.owned_by(ledger, self.user(request))
                    found = [batch for batch in found if batch.batch_id in mine]
                return found, lock_probe.batches_running(ledger)  # run here or by another instance

        found, elsewhere = await run_in_threadpool(load)
        running = {batch.batch_id for batch in found if self._running(batch.batch_id) or batch.batch_id in elsewhere}
        return self.render(request, "batches.html", batches=found, running=running)

    @signed_in
    async def batch_page(self, request: Request) -> Response:
        batch, batch_id = await run_in_threadpool(self._batch, request)
        if batch is not None and batch_id != request.path_params["batch_id"]:  # the short id: one address per batch
            return RedirectResponse(f"/batches/{batch_id}", status_code=303)
        progress = self.runs.progress(batch_id) if BATCH_ID.fullmatch(batch_id) else None
        if batch is None and progress is not None and not await run_in_threadpool(self.may_see_batch, request, batch_id):
            progress = None
        if batch is None and progress is None:
            return self.error_page(request, PAGES_TEXT.NOT_FOUND.format(self.lang(request)), 404)

        output = Path(batch.output_path) if batch and batch.output_path else None

        def details() -> dict[str, Any]:
            with Ledger(self.settings.ledger_path) as ledger:
                rows = ledger.rows(batch_id) if batch else []
                mark = orders_mark(ledger, batch_id) if batch else ""
                shown = progress.as_json() if progress else self._ledger_progress(ledger, batch_id, rows)
            running = shown["running"]
            created = [r for r in rows if r.state == "created"]
            pending = [r for r in created if (r.order_status or "pending") in PENDING_STATUSES]
            sheet = SheetFacts() if running else sheet_facts(output)  # the sheet is rewritten while it runs
            return {"rows": sorted(rows, key=lambda r: r.row_number)[:ROWS_SHOWN], "rows_total": len(rows),
                    "pending": len(pending), "pending_totals": _totals_of(pending), "created_totals": _totals_of(created),
                    "progress": shown,
                    "names": sheet.names, "invalid_rows": sheet.invalid, "invalid_total": sheet.invalid_total,
                    "cancellable": PENDING_STATUSES, "reissuable": len(to_reissue_rows(rows)) if self.may_pay(request) else 0,
                    "reissues": {r.row_key: r for r in rows if r.reissue_of},
                    "chart": order_chart(rows, self.lang(request)), "orders_mark": mark}

        facts = await run_in_threadpool(details)
        finished = not facts["progress"]["running"]
        return self.render(
            request, "batch.html", batch=batch, batch_id=batch_id,
            has_results=bool(finished and output and output.exists()),
            has_audit=bool(finished and output and audit_path_for(output).exists()), **facts,
        )

    @signed_in
    async def progress(self, request: Request) -> Response:
        batch_id = request.path_params["batch_id"]
        progress = self.runs.progress(batch_id) if BATCH_ID.fullmatch(batch_id) else None
        if (progress is not None and (progress.running or not request.query_params.get("watch"))
                and await run_in_threadpool(self.may_see_batch, request, batch_id)):
            return JSONResponse(progress.as_json())
        batch, batch_id = await run_in_threadpool(self._batch, request)
        if batch is None:
            return JSONResponse({"error": "not found"}, status_code=404)

        def from_ledger() -> dict[str, Any]:
            with Ledger(self.settings.ledger_path) as ledger:
                shown = self._ledger_progress(ledger, batch_id, ledger.rows(batch_id))
                if request.query_params.get("watch") and not shown["running"]:  # the open batch page after its run
                    return {"running": False, "orders": orders_mark(ledger, batch_id)}  # only what it watches
                return shown

        return JSONResponse(await run_in_threadpool(from_ledger))

    def _ledger_progress(self, ledger: Ledger, batch_id: str, rows: list) -> dict[str, Any]:
        """A batch this server is not running: finished, or run right now by another web instance or
        host sharing the ledger (its lock is held), whose total comes from the review in the shared
        data directory when that instance's upload is there."""
        if not lock_probe.batch_running(ledger, batch_id):
            return ledger_progress(batch_id, rows)
        return ledger_progress(batch_id, rows, running_elsewhere=True, planned=self.uploads.planned_rows(batch_id))

    @signed_in
    async def download(self, request: Request) -> Response:
        """The results sheet or the audit log of a batch: files this tool wrote, never an upload."""
        lang = self.lang(request)
        batch, _ = await run_in_threadpool(self._batch, request)
        if batch is None:
            return self.error_page(request, PAGES_TEXT.NOT_FOUND.format(lang), 404)
        if await run_in_threadpool(self._running_anywhere, batch.batch_id):
            return self.error_page(request, PAGES_TEXT.RUNNING_NOW.format(lang), 409)
        if request.path_params["kind"] not in ("results", "audit"):
            return self.error_page(request, PAGES_TEXT.NOT_FOUND.format(lang), 404)
        output = Path(batch.output_path) if batch.output_path else None
        stem = Path(batch.input_name).stem
        if request.path_params["kind"] == "audit":
            path, name, media = (audit_path_for(output) if output else None), f"{stem}.audit.jsonl", "application/x-ndjson"
        else:
            path, name, media = output, f"{stem}.results{output.suffix if output else ''}", None
        if path is None or not path.exists():
            return self.error_page(request, TEXT.NO_RESULTS_YET.format(lang), 404)
        return FileResponse(path, filename=name, media_type=media)

    @signed_in
    async def refresh(self, request: Request) -> Response:
        """Ask Conekta every created order's status now (``batch-payouts status``)."""

        def work(lang: str, form: Any, batch: BatchRecord, ledger: Ledger, client: Callable[[str], Any]) -> None:
            results = refresh_status(ledger, client("web status"), batch, workers=self.settings.workers)
            self.flash(request, TEXT.REFRESHED.format(lang, count=len(results), changed=sum(r.changed for r in results)))
            failed = [r for r in results if r.error]
            if failed:
                self.flash(request, TEXT.REFRESH_FAILED.format(lang, count=len(failed)), "error")

        return await self._batch_operation(request, work)

    @signed_in
    async def cancel_page(self, request: Request) -> Response:
        batch, batch_id = await run_in_threadpool(self._batch, request)
        if batch is None:
            return self.error_page(request, PAGES_TEXT.NOT_FOUND.format(self.lang(request)), 404)

        row = _one_row(request.query_params.get("row"))
        if request.query_params.get("row") and row is None:
            return self.error_page(request, PAGES_TEXT.NOT_FOUND.format(self.lang(request)), 404)

        def pending() -> list:
            with Ledger(self.settings.ledger_path) as ledger:
                return _to_cancel(ledger, batch, row, self.lang(request))

        try:
            rows = await run_in_threadpool(pending)
        except BatchError as error:
            return self.error_page(request, self.describe(error, self.lang(request)), 409)
        return self.render(request, "cancel.html", batch=batch, batch_id=batch_id, rows=rows[:ROWS_SHOWN],
                           count=len(rows), totals=_totals_of(rows), row=row)

    @signed_in
    async def cancel(self, request: Request) -> Response:
        """Cancel what the confirmation page named: every pending reference (``batch-payouts cancel
        --all-pending``), as many as it counted, or the one reference of a row (``--rows N``)."""

        def work(lang: str, form: Any, batch: BatchRecord, ledger: Ledger, client: Callable[[str], Any]) -> None:
            row = _one_row(form.get("row"))
            rows = _to_cancel(ledger, batch, row, lang)
            if not rows:
                self.flash(request, TEXT.NO_PENDING.format(lang))
                return
            if form.get("count") != str(len(rows)):
                raise BatchError(PAGES_TEXT.CHANGED_SINCE_REVIEW, count=form.get("count"), total=format_totals(_totals_of(rows)))
            outcomes = cancel_rows(ledger, client("web cancel"), batch, rows)
            tally = {kind: sum(o.result == kind for o in outcomes) for kind in TEXT.CANCEL_PARTS}
            parts = "; ".join(TEXT.CANCEL_PARTS[kind].format(lang, count=n) for kind, n in tally.items()
                              if n or kind == "cancelled")
            self.flash(request, TEXT.CANCELLED.format(lang, parts=parts), "error" if tally["failed"] else "info")

        return await self._batch_operation(request, work)

    async def _batch_operation(self, request: Request, work: Callable[..., None]) -> Response:
        """A POST about one finished batch (its route is ``signed_in``): CSRF-checked, not while it
        runs; ``work`` gets the ledger and opens the batch's client (same key, audited) only if it needs one."""
        form = await self.form(request)
        lang = self.lang(request)
        batch, batch_id = await run_in_threadpool(self._batch, request)
        if batch is None:
            return self.error_page(request, PAGES_TEXT.NOT_FOUND.format(lang), 404)
        if await run_in_threadpool(self._running_anywhere, batch_id):
            return self.error_page(request, PAGES_TEXT.RUNNING_NOW.format(lang), 409)

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
            self.flash(request, self.describe(error, lang), "error")
        return RedirectResponse(f"/batches/{batch_id}", status_code=303)


def to_reissue_rows(rows: list) -> list:
    """Expired, uncashed rows not paid again yet: what the reissue button would pay."""
    return [r for r in rows if r.state == "created" and r.order_status == "expired" and not r.cashed_at
            and not r.reissued_as]


def _one_row(value: object) -> int | None:
    """The row number of a single-reference cancellation, or None (all pending ones)."""
    text = str(value or "").strip()
    return int(text) if text.isdigit() and 0 < len(text) < 10 else None


def _to_cancel(ledger: Ledger, batch: BatchRecord, row: int | None, lang: str) -> list:
    """The references a cancellation is about: one row's (refused with a message when it has no
    order to cancel) or every one not cashed yet."""
    if row is not None:
        return select_rows(ledger, batch, rows=str(row), lang=lang)
    return select_rows(ledger, batch, all_pending=True)
