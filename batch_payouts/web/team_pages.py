"""Four eyes in the browser: submitting a reviewed batch for approval, the approvers' queue,
approving (with the second factor) or rejecting with a reason, and enrolling the second factor.

Who starts the run: the approval that completes what the policy asks starts it, on the
approver's click ("Aprobar y pagar"), with the file the preparer reviewed.  The preparer may
also start an approved batch from the review page (the run's own gate lets only an approved
plan through either way, and exactly-once makes a second click harmless).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from batch_payouts import ledger_address
from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue
from batch_payouts.payout.ledger import Ledger
from batch_payouts import ledger_address
from batch_payouts.team import approvals, events, totp
from batch_payouts.team import owners as team_owners
from batch_payouts.team import users as team_users
from batch_payouts.team.roles import APPROVER
from batch_payouts.web.pages import Pages, client_ip, signed_in
from batch_payouts.web.pages import TEXT as PAGES_TEXT
from batch_payouts.web.uploads import Upload

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


class TeamPages(Pages):
    """Approvals and the second factor; ``WebApp`` puts them beside the other pages."""

    def start_team(self) -> None:
        """Copy the config file's ``[web.users]`` into the ledger (once), and take sign-in and roles
        from the ledger when it has users.  A server with neither leaves the ledger file unmade."""
        path = self.settings.ledger_path
        if not self.settings.users and not ledger_address.exists(path):
            return
        with Ledger(path) as ledger:
            team_users.bootstrap(ledger, self.settings.users)
            self.settings.team = team_users.has_users(ledger)

    def claim_batch(self, upload: Upload) -> None:
        """The uploader owns the batch their file makes (``team.owners``): a preparer sees it."""
        if upload.user and upload.batch_id:
            with Ledger(self.settings.ledger_path) as ledger:
                team_owners.claim(ledger, upload.batch_id, upload.user)

    # -- what the review page shows about approval --------------------------------------------------
    def review_approval(self, pin: approvals.Pin | None) -> dict[str, Any]:
        """The facts a review keeps about approval: the pin and how many approvals the policy asks."""
        if pin is None or not ledger_address.exists(self.settings.ledger_path):
            return {"pin": asdict(pin) if pin else None, "approvals_needed": 0}
        with Ledger(self.settings.ledger_path) as ledger:
            return {"pin": asdict(pin), "approvals_needed": approvals.needed(ledger, pin)}

    def approval_of(self, review: dict[str, Any] | None) -> dict[str, Any] | None:
        """The latest request about the reviewed plan (pending, approved or rejected), or None."""
        if not review or not review.get("pin") or not review.get("approvals_needed"):
            return None
        pin = approvals.Pin(**review["pin"])
        with Ledger(self.settings.ledger_path) as ledger:
            latest = next(iter(approvals.for_pin(ledger, pin)), None)
        return {"needed": review["approvals_needed"], "request": latest}

    # -- submit -----------------------------------------------------------------------------------------
    @signed_in
    async def submit(self, request: Request) -> Response:
        await self.form(request)
        lang = self.lang(request)
        upload, instead = self._reviewed_upload(request, lambda u: not u.review.get("error") and u.batch_id)
        if instead:
            return instead
        if upload.review.get("blocker") or not upload.review.get("pin"):
            return self.error_page(request, upload.review.get("blocker") or TEXT.NO_PIN.format(lang), 409)
        pin = approvals.Pin(**upload.review["pin"])

        def work() -> approvals.Request:
            with Ledger(self.settings.ledger_path) as ledger:
                return approvals.submit(ledger, pin, input_name=upload.name, submitted_by=self.user(request) or "web",
                                        upload_id=upload.id, problems=int(upload.review.get("invalid") or 0),
                                        ip=client_ip(request))

        made = await run_in_threadpool(work)
        self.flash(request, TEXT.SUBMITTED.format(lang, request=made.request_id))
        return RedirectResponse(f"/uploads/{upload.id}", status_code=303)

    # -- the approvers' queue -----------------------------------------------------------------------------
    @signed_in
    async def approvals_page(self, request: Request) -> Response:
        name = self.user(request)
        roles = self.roles(request)

        def load() -> tuple[list[approvals.Request], bool]:
            with Ledger(self.settings.ledger_path) as ledger:
                user = team_users.get_user(ledger, name) if name else None
                return approvals.listing(ledger), bool(user and user.enrolled)

        found, enrolled = (await run_in_threadpool(load) if ledger_address.exists(self.settings.ledger_path)
                           else ([], False))
        if self.settings.team and not self.sees_everything(request):  # a preparer: their own requests
            found = [r for r in found if r.submitted_by == name]
        found.sort(key=lambda r: (r.state != "pending", -r.submitted_at))
        may_decide = {r.request_id for r in found if APPROVER in roles and approvals.may_decide(r, name)}
        return self.render(request, "approvals.html", requests=found, may_decide=may_decide, enrolled=enrolled)

    @signed_in
    async def approval_sheet(self, request: Request) -> Response:
        """The reviewed sheet of a submitted upload (its problem rows marked), for the approver."""
        found = await run_in_threadpool(self._request_of, request)
        if found is not None and self.settings.team and not self.sees_everything(request) \
                and found.submitted_by != self.user(request):
            found = None
        upload = self.uploads.get(found.upload_id) if found and found.upload_id else None
        path = self.uploads.annotated_path(upload) if upload else None
        if path is None or not path.exists():
            return self.error_page(request, PAGES_TEXT.NOT_FOUND.format(self.lang(request)), 404)
        return FileResponse(path, filename=f"{Path(upload.name).stem}.revision.xlsx")

    def _request_of(self, request: Request) -> approvals.Request | None:
        with Ledger(self.settings.ledger_path) as ledger:
            return approvals.get(ledger, request.path_params["request_id"])

    @signed_in
    async def approve(self, request: Request) -> Response:
        return await self._decide(request, approve=True)

    @signed_in
    async def reject(self, request: Request) -> Response:
        return await self._decide(request, approve=False)

    async def _decide(self, request: Request, *, approve: bool) -> Response:
        form = await self.form(request)
        lang = self.lang(request)
        name = self.user(request)
        ip = client_ip(request)
        found = await run_in_threadpool(self._request_of, request)
        if found is None:
            return self.error_page(request, PAGES_TEXT.NOT_FOUND.format(lang), 404)
        if name == found.submitted_by:  # even an approver never decides on their own batch
            with Ledger(self.settings.ledger_path) as ledger:
                events.record(ledger, name, ip, "forbidden", method="POST", path=request.url.path,
                              needed="approve own batch", request=found.request_id)
            raise HTTPException(403, approvals.TEXT.OWN_BATCH.format(lang))

        def work() -> approvals.Request | str:
            with Ledger(self.settings.ledger_path) as ledger:
                user = team_users.get_user(ledger, name)
                if approve:
                    if user is None or not user.enrolled:
                        return TEXT.ENROL_FIRST.format(lang)
                    throttle = team_users.Throttle(self.settings.lock_after, self.settings.lock_minutes)
                    if team_users.locked(ledger, name, ip, throttle) or not team_users.second_factor_ok(
                            ledger, name, str(form.get("code") or "")):
                        team_users.record_failure(ledger, name, ip, throttle, "approval_second_factor")
                        return TEXT.BAD_CODE.format(lang)
                return approvals.decide(ledger, found.request_id, name, approve=approve,
                                        reason=str(form.get("reason") or ""), ip=ip)

        try:
            decided = await run_in_threadpool(work)
        except BatchError as error:
            self.flash(request, self.describe(error, lang), "error")
            return RedirectResponse("/approvals", status_code=303)
        if isinstance(decided, str):
            self.flash(request, decided, "error")
            return RedirectResponse("/approvals", status_code=303)
        if decided.state == "rejected":
            self.flash(request, TEXT.REJECTED_NOTE.format(lang))
            return RedirectResponse("/approvals", status_code=303)
        if decided.state == "pending":
            self.flash(request, TEXT.APPROVED_WAITING.format(lang, missing=decided.needed - len(decided.approvers)))
            return RedirectResponse("/approvals", status_code=303)
        return self._start_approved(request, decided, lang)

    def _start_approved(self, request: Request, decided: approvals.Request, lang: str) -> Response:
        """The approval that completes the policy starts the run with the upload the preparer reviewed."""
        upload = self.uploads.get(decided.upload_id) if decided.upload_id else None
        if upload is None or upload.review is None:  # submitted from the CLI: the next `run` pays it
            return RedirectResponse("/approvals", status_code=303)
        options = self.run_options(upload, lang, output_path=self.results_dir / f"{decided.batch_id}.xlsx",
                                   operator=self.user(request))
        try:
            self.runs.start(decided.batch_id, upload.id, self.user(request), options, self.settings.environ,
                            planned=int(upload.review.get("valid") or 0))
            self.flash(request, TEXT.APPROVED_RUNNING.format(lang))
        except BatchError as error:
            self.flash(request, self.describe(error, lang, upload), "error")
        return RedirectResponse(f"/batches/{decided.batch_id}", status_code=303)

    # -- the second factor ------------------------------------------------------------------------------
    @signed_in
    async def account(self, request: Request) -> Response:
        """One's second factor: enrolled, or a new QR code (shown once: each visit makes a new one)."""
        name = self.user(request)
        if not name or not self.settings.team:
            return self.error_page(request, PAGES_TEXT.NOT_FOUND.format(self.lang(request)), 404)

        def load() -> tuple[team_users.User | None, str | None]:
            with Ledger(self.settings.ledger_path) as ledger:
                user = team_users.get_user(ledger, name)
                return user, (team_users.start_enrolment(ledger, name) if user and not user.enrolled else None)

        user, secret = await run_in_threadpool(load)
        qr = totp.qr_svg(totp.provisioning_uri(secret, name)) if secret else None
        return self.render(request, "account.html", account=user, secret=secret, qr=qr, codes=None, failed=False)

    @signed_in
    async def enrol(self, request: Request) -> Response:
        form = await self.form(request)
        name = self.user(request)
        if not name or not self.settings.team:
            return self.error_page(request, PAGES_TEXT.NOT_FOUND.format(self.lang(request)), 404)

        def work() -> tuple[team_users.User | None, list[str] | None]:
            with Ledger(self.settings.ledger_path) as ledger:
                codes = team_users.confirm_enrolment(ledger, name, str(form.get("code") or ""), client_ip(request))
                return team_users.get_user(ledger, name), codes

        user, codes = await run_in_threadpool(work)
        if codes is None:
            self.flash(request, TEXT.ENROL_WRONG.format(self.lang(request)), "error")
            return RedirectResponse("/account", status_code=303)
        return self.render(request, "account.html", account=user, secret=None, qr=None, codes=codes, failed=False)
