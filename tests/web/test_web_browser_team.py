"""Four eyes in a real browser (Debian's chromium): a preparer submits, cannot approve, a second
person approves with a TOTP code, the batch pays exactly once, and an auditor reads but changes nothing."""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "team"))

from batch_payouts.payout.ledger import Ledger  # noqa: E402
from batch_payouts.team import approvals, events, totp  # noqa: E402
from conftest import WebServer  # noqa: E402
from team_setup import PASSWORDS, team_with_policy  # noqa: E402
from test_web_browser import SAMPLES, TIMEOUT_MS, Steps, browser  # noqa: E402,F401 - the fixture by name


def _person(browser, server, name: str, secret: str | None = None):
    context = browser.new_context(accept_downloads=True, locale="es-MX")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(server.url + "/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("button.button")
    if secret:
        page.wait_for_url(re.compile(r"/login/code$"))
        page.fill("#code", totp.current_code(secret))
        page.click("#code-button")
    page.wait_for_url(server.url + "/")
    return context, page


def _forged_post(page, path: str) -> int:
    """A POST the page offers no button for, with the session's real CSRF token: only the role check stops it."""
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    return page.request.post(page.url.split("/", 3)[0] + "//" + page.url.split("/")[2] + path,
                             form={"csrf_token": token, "code": "123456", "reason": "x", "count": "1"}).status


def test_four_eyes_in_the_browser(browser, web_settings, sandbox, tmp_path, request):
    secrets = team_with_policy(web_settings.ledger_path, "--every-batch")
    with WebServer(replace(web_settings, host="0.0.0.0", workers=2)) as server:
        beto_context, beto = _person(browser, server, "beto")
        steps = Steps(beto, request.node.name)
        with steps.step("preparer-submits"):
            beto.set_input_files("#file", str(SAMPLES / "beneficiaries.xlsx"))
            beto.click("#upload-button")
            beto.wait_for_url(re.compile(r"/uploads/[0-9a-f]{32}$"))
            assert beto.locator("#continue").count() == 0
            beto.click("#submit-approval")
            assert "Enviado a aprobación" in beto.inner_text("#approval-state")
        with Ledger(web_settings.ledger_path) as ledger:
            [pending] = approvals.listing(ledger, "pending")
        with steps.step("preparer-cannot-approve"):
            beto.click("#nav-approvals")
            assert pending.request_id in beto.inner_text("main")
            assert beto.locator(".approve-button").count() == 0
            assert _forged_post(beto, f"/approvals/{pending.request_id}/approve") == 403
            assert sandbox.payout_orders() == []

        ana_context, ana = _person(browser, server, "ana", secrets["ana"])
        steps.page = ana
        with steps.step("approver-approves"):
            ana.click("#nav-approvals")
            card = ana.locator(f"#request-{pending.request_id}")
            assert "$21,899.00" in card.inner_text() and "6" in card.inner_text()
            card.locator("input.code").fill(totp.current_code(secrets["ana"]))
            card.locator(".approve-button").click()
            ana.wait_for_url(re.compile(r"/batches/[0-9a-f]{64}$"))
            batch_id = ana.url.rsplit("/", 1)[1]
            ana.wait_for_selector("#download-results")
            assert ana.inner_text("#created") == "14"
        assert len(sandbox.payout_orders()) == 14
        with steps.step("preparer-sees-results"):
            steps.page = beto
            beto.goto(server.url + f"/batches/{batch_id}")
            assert beto.inner_text("#created") == "14"

        carla_context, carla = _person(browser, server, "carla")
        steps.page = carla
        with steps.step("auditor-reads-only"):
            carla.goto(server.url + f"/batches/{batch_id}")
            with carla.expect_download() as download:
                carla.click("#download-results")
            assert download.value.suggested_filename == "beneficiaries.results.xlsx"
            for path in ("/upload", f"/batches/{batch_id}/cancel", f"/batches/{batch_id}/refresh",
                         f"/approvals/{pending.request_id}/approve", f"/approvals/{pending.request_id}/reject",
                         f"/uploads/{'0' * 32}/confirm"):
                assert _forged_post(carla, path) == 403, path
        assert len(sandbox.payout_orders()) == 14  # paid exactly once
        for context in (beto_context, ana_context, carla_context):
            context.close()
    with Ledger(web_settings.ledger_path) as ledger:
        refused = {(e.actor, e.detail["path"]) for e in events.events(ledger, action="forbidden")}
        assert ("beto", f"/approvals/{pending.request_id}/approve") in refused
        assert ("carla", "/upload") in refused
        assert events.verify(ledger) is None
