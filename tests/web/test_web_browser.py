"""The web app in a real browser: headless Chromium (Debian's package) driven by Playwright.

A finance user's whole path against the sandbox: upload the sample, see the
invalid rows, confirm, watch the progress (and reload midway), download the
results and check the references, then cancel the pending ones.  Every step is
photographed; when a test fails the photographs are written to
``tests/artifacts/`` so the failure can be seen, not guessed.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import WebServer, read_xlsx

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = os.environ.get("BATCH_PAYOUTS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a root user on a machine without a display or outside network (see .ci/run).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM}: `make test` installs Debian's chromium when run as root."
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


class Steps:
    """Named steps of a browser test, each photographed; all photographs saved if one fails."""

    def __init__(self, page, test_name: str) -> None:
        self.page = page
        self.test_name = test_name
        self.shots: list[tuple[str, bytes]] = []

    @contextmanager
    def step(self, name: str):
        try:
            yield
        except BaseException:
            self._save(name)
            raise
        self.shots.append((name, self.page.screenshot(full_page=True)))

    def _save(self, failed: str) -> None:
        folder = ARTIFACTS / self.test_name
        folder.mkdir(parents=True, exist_ok=True)
        for number, (name, png) in enumerate(self.shots, 1):
            (folder / f"{number:02d}-{name}.png").write_bytes(png)
        try:
            self.page.screenshot(path=str(folder / f"{len(self.shots) + 1:02d}-{failed}-FAILED.png"), full_page=True)
            (folder / f"{len(self.shots) + 1:02d}-{failed}-FAILED.html").write_text(self.page.content(), encoding="utf-8")
        except Exception:  # noqa: BLE001 - the page itself may be gone; the earlier shots still help
            pass


@pytest.fixture
def page(browser, request):
    context = browser.new_context(accept_downloads=True, locale="es-MX")
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    yield opened
    context.close()


def test_upload_review_confirm_watch_download_and_cancel(page, web_settings, sandbox, tmp_path, request):
    steps = Steps(page, request.node.name)
    sandbox.set_faults({"latency_ms": 120})  # slow enough to see the progress bar move
    with WebServer(replace(web_settings, workers=2)) as server:
        with steps.step("upload-page"):
            page.goto(server.url + "/")
            assert "Arrastra aquí tu archivo" in page.inner_text("#drop-zone")
        with steps.step("review"):
            page.set_input_files("#file", str(SAMPLES / "beneficiaries.xlsx"))
            page.click("#upload-button")
            page.wait_for_url(re.compile(r"/uploads/[0-9a-f]{32}$"))
            assert page.inner_text("#count-valid") == "14" and page.inner_text("#count-invalid") == "6"
            problems = page.locator("#problems tbody tr")
            assert problems.count() == 6
            assert "correo" in problems.nth(0).inner_text() and "Escríbelo como" in problems.nth(0).inner_text()
            assert "$21,899.00" in page.inner_text("#to-send")
        with steps.step("confirm"):
            page.click("#continue")
            button = page.locator("#confirm-button")
            assert "14" in button.inner_text() and "$21,899.00" in button.inner_text()
        with steps.step("progress"):
            button.click()
            page.wait_for_url(re.compile(r"/batches/[0-9a-f]{64}$"))
            batch_id = page.url.rsplit("/", 1)[1]
            page.wait_for_function("() => document.getElementById('progress-bar').value > 0")
            page.reload()  # the progress is the server's: a reload finds the run again
            assert page.locator("#progress-bar").count() == 1
        with steps.step("finished"):
            page.wait_for_selector("#download-results")
            assert page.inner_text("#created") == "14" and page.inner_text("#failed") == "0"
            assert "Terminado" in page.inner_text("#state")
        with steps.step("download"):
            with page.expect_download() as download:
                page.click("#download-results")
            saved = tmp_path / download.value.suggested_filename
            download.value.save_as(saved)
            assert saved.name == "beneficiaries.results.xlsx"
            created = [r for r in read_xlsx(saved) if r["status"] == "created"]
            references = {o["id"]: o["reference"] for o in sandbox.payout_orders()}
            assert len(created) == 14 == len(references)
            shown = page.inner_text("#rows")
            for row in created:
                assert str(row["reference"]) == references[row["payout_order_id"]]
                assert references[row["payout_order_id"]] in shown
            with page.expect_download() as audit:
                page.click("#download-audit")
            assert audit.value.suggested_filename == "beneficiaries.audit.jsonl"
        with steps.step("cancel"):
            page.click("#cancel-link")
            assert page.inner_text("#cancel-count") == "14"
            page.click("#cancel-button")
            page.wait_for_url(re.compile(rf"/batches/{batch_id}$"))
            assert "14 canceladas" in page.inner_text("main")
            assert [o["status"] for o in sandbox.payout_orders()] == ["cancelled"] * 14
        with steps.step("batch-list"):
            page.click("text=Lotes")
            assert batch_id[:12] in page.inner_text("#batches")


def test_drag_and_drop_upload_and_english(page, web_settings, request):
    steps = Steps(page, request.node.name)
    with WebServer(replace(web_settings, review_wait_seconds=0.1)) as server:
        review = server.web.review

        def large_file(upload, lang):  # long enough to see the page that refreshes itself
            time.sleep(2.5)
            review(upload, lang)

        server.web.review = large_file
        with steps.step("english"):
            page.goto(server.url + "/")
            page.click("text=English")
            assert "Drop your .xlsx or .csv file here" in page.inner_text("#drop-zone")
        with steps.step("drop"):
            content = (SAMPLES / "beneficiaries.csv").read_text(encoding="utf-8-sig")
            transfer = page.evaluate_handle(
                """(text) => { const dt = new DataTransfer();
                   dt.items.add(new File([text], "arrastrado.csv", {type: "text/csv"})); return dt; }""",
                content,
            )
            page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
            assert page.inner_text("#file-name") == "arrastrado.csv"
        with steps.step("busy"):
            # Held back once: what the user sees while a large file is being reviewed.
            page.evaluate("""() => document.getElementById("upload-form").addEventListener(
                "submit", (event) => event.preventDefault(), {once: true})""")
            assert page.locator("#upload-busy").is_hidden()
            page.click("#upload-button")
            page.wait_for_function("() => document.getElementById('upload-button').disabled")
            assert "Reviewing the file" in page.inner_text("#upload-busy")
            page.evaluate("() => { document.getElementById('upload-button').disabled = false; }")
        with steps.step("reviewing"):
            page.click("#upload-button")
            page.wait_for_url(re.compile(r"/uploads/[0-9a-f]{32}$"))
            assert "refreshes itself" in page.inner_text("#review-pending")
        with steps.step("review"):
            page.wait_for_selector("#count-invalid", timeout=20_000)  # the page refreshed itself
            assert "arrastrado.csv" in page.inner_text("h1")
            assert page.inner_text("#count-invalid") == "6"
            assert "Continue to payment" in page.inner_text("#continue")


def test_a_mixed_peso_and_dollar_file_shows_one_total_per_currency(page, web_settings, tmp_path, request):
    from batch_payouts.sandbox import Sandbox
    from conftest import beneficiary, write_csv

    steps = Steps(page, request.node.name)
    source = write_csv(tmp_path / "mixto.csv", [beneficiary(1, monto="150000", moneda="MXN"),
                                                 beneficiary(2, monto="2000", moneda="USD")])
    with Sandbox(starting_balance={"MXN": 10_000_000, "USD": 500_000}) as dollars, \
            WebServer(replace(web_settings, api_base=dollars.url)) as server:
        with steps.step("review"):
            page.goto(server.url + "/")
            page.set_input_files("#file", str(source))
            page.click("#upload-button")
            page.wait_for_url(re.compile(r"/uploads/[0-9a-f]{32}$"))
            assert page.locator("#total-valid .currency-total").all_inner_texts() == ["$1,500.00 MXN", "$20.00 USD"]
            assert page.locator("#to-send .currency-total").all_inner_texts() == ["$1,500.00 MXN", "$20.00 USD"]
            assert "$1,520.00" not in page.inner_text("main")  # pesos and dollars never added together
        with steps.step("confirm"):
            page.click("#continue")
            assert page.inner_text("#confirm-total") == "$1,500.00 MXN + $20.00 USD"
            assert "$1,500.00 MXN + $20.00 USD" in page.inner_text("#confirm-button")


def test_a_row_in_doubt_shows_as_unconfirmed_not_failed_on_the_batch_page(page, web_settings, sandbox, tmp_path, request):
    """The order of row 2 may exist at Conekta: the page must say "sin confirmar" (amber, with why and
    what to do), never "fallida" (red), or someone pays it by hand and the rerun pays it again."""
    from batch_payouts.sandbox import Faults
    from batch_payouts.web.wording import TEXT as WORDING_TEXT
    from conftest import FIRST_ORDER_IN_DOUBT, beneficiary, write_csv

    steps = Steps(page, request.node.name)
    source = write_csv(tmp_path / "pagos.csv", [beneficiary(1), beneficiary(2)])
    with WebServer(replace(web_settings, workers=1, initial_backoff=0.001)) as server:
        with steps.step("review"):
            page.goto(server.url + "/")
            page.set_input_files("#file", str(source))
            page.click("#upload-button")
            page.wait_for_url(re.compile(r"/uploads/[0-9a-f]{32}$"))
            page.click("#continue")
        with steps.step("finished"):
            sandbox.set_faults(Faults(**FIRST_ORDER_IN_DOUBT))  # row 2's answer is lost, and so is the lookup
            page.click("#confirm-button")
            page.wait_for_url(re.compile(r"/batches/[0-9a-f]{64}$"))
            page.wait_for_selector("#rows")  # the page reloads itself when the run ends
            assert page.inner_text("#created") == "1" and page.inner_text("#unconfirmed") == "1"
            assert page.inner_text("#failed") == "0"
            assert page.locator("#unconfirmed-explained").is_visible()
            assert page.inner_text("#unconfirmed-explained") == WORDING_TEXT.UNCONFIRMED_EXPLAINED.es
        with steps.step("row"):
            doubtful = page.locator("#rows tbody tr.state-unknown")
            assert doubtful.count() == 1 and "sin confirmar" in doubtful.inner_text()
            assert "fallida" not in page.inner_text("#rows")
            colour = doubtful.locator("td").first.evaluate("(cell) => getComputedStyle(cell).backgroundColor")
            assert colour == "rgb(255, 246, 219)"  # the amber of "unconfirmed", not the failed red
        with steps.step("batch-list"):
            page.click("text=Lotes")
            assert "sin confirmar" in page.inner_text("#batches")
            assert page.locator("#unconfirmed-explained").is_visible()


# -- issue 13: phones, the sandbox, dates, the short id, one reference, the planned counts -----------
PHONE_ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "web-phone"
PHONE, DESKTOP = {"width": 375, "height": 812}, {"width": 1280, "height": 800}


def _scroll_width(page) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth")


def _photograph(page, name: str) -> None:
    """Kept under tests/artifacts/ (git-ignored) so a person can look at the phone layout."""
    PHONE_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(PHONE_ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_phone_and_a_desktop_never_scroll_the_page_sideways(browser, web_settings, request):
    context = browser.new_context(viewport=PHONE, locale="es-MX", accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    steps = Steps(page, request.node.name)
    try:
        with WebServer(web_settings) as server:
            with steps.step("review"):
                page.goto(server.url + "/")
                assert _scroll_width(page) <= 375
                page.set_input_files("#file", str(SAMPLES / "beneficiaries.xlsx"))
                page.click("#upload-button")
                page.wait_for_url(re.compile(r"/uploads/[0-9a-f]{32}$"))
                assert page.locator("#problems").is_visible()
                _photograph(page, "review")
                assert _scroll_width(page) <= 375
            with steps.step("confirm"):
                page.click("#continue")
                _photograph(page, "confirm")
                assert _scroll_width(page) <= 375
            with steps.step("batch"):
                page.click("#confirm-button")
                page.wait_for_url(re.compile(r"/batches/[0-9a-f]{64}$"))
                page.wait_for_selector("#rows")  # finished: the widest page, with every row
                _photograph(page, "batch")
                assert _scroll_width(page) <= 375
                box = page.locator("#rows").evaluate("(t) => [t.parentElement.scrollWidth, t.parentElement.clientWidth]")
                assert box[0] > box[1]  # the table scrolls inside its own box instead
            with steps.step("batches"):
                page.goto(server.url + "/batches")
                _photograph(page, "batches")
                assert _scroll_width(page) <= 375
            with steps.step("desktop"):
                page.set_viewport_size(DESKTOP)
                for path in ("/batches", page.url.replace(server.url, "")):
                    page.goto(server.url + path)
                    assert _scroll_width(page) <= 1280
                _photograph(page, "batches-desktop")
    finally:
        context.close()


def test_sandbox_banner_dates_short_id_and_one_reference_cancelled(page, web_settings, sandbox, request):
    steps = Steps(page, request.node.name)
    with WebServer(web_settings) as server:
        with steps.step("banner"):
            page.goto(server.url + "/")
            assert "No se mueve dinero real" in page.inner_text("#sandbox-banner")
            page.set_input_files("#file", str(SAMPLES / "beneficiaries.xlsx"))
            page.click("#upload-button")
            page.wait_for_url(re.compile(r"/uploads/[0-9a-f]{32}$"))
            assert page.locator("#sandbox-banner").is_visible() and "--live" not in page.inner_text("main")
            page.click("#continue")
            page.click("#confirm-button")
            page.wait_for_url(re.compile(r"/batches/[0-9a-f]{64}$"))
            page.wait_for_selector("#rows")
            batch_id = page.url.rsplit("/", 1)[1]
        with steps.step("short-id"):
            page.goto(f"{server.url}/batches/{batch_id[:12]}")
            assert page.url.endswith(batch_id)
            assert re.fullmatch(r"\d{1,2} (ene|feb|mar|abr|may|jun|jul|ago|sep|oct|nov|dic) \d{4}, \d{1,2}:\d{2} \([+-]\d{2}:\d{2}\)",
                                page.inner_text("#last-run"))
            assert page.locator("#invalid-rows tbody tr").count() == 6
        with steps.step("cancel-one"):
            first = page.locator("#rows tbody tr").first
            name = first.locator("td.name").inner_text()
            assert name  # the beneficiary's name, from the results sheet
            first.locator("a.cancel-one").click()
            assert page.inner_text("#cancel-count") == "1"
            page.click("#cancel-button")
            page.wait_for_url(re.compile(rf"/batches/{batch_id}$"))
            assert "1 cancelada" in page.inner_text("main")
            assert [o["status"] for o in sandbox.payout_orders()].count("cancelled") == 1
            assert page.locator("#rows a.cancel-one").count() == 13
        with steps.step("english"):
            page.click("text=English")
            page.goto(f"{server.url}/batches")
            assert re.search(r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{1,2}, \d{4}, \d{1,2}:\d{2} (AM|PM)",
                             page.inner_text("#batches"))


def test_the_progress_page_shows_the_planned_rows_from_its_first_moment(page, web_settings, sandbox, request):
    from conftest import API_KEY

    steps = Steps(page, request.node.name)
    with WebServer(web_settings) as server:
        with steps.step("review"):
            page.goto(server.url + "/")
            page.set_input_files("#file", str(SAMPLES / "beneficiaries.xlsx"))
            page.click("#upload-button")
            page.wait_for_url(re.compile(r"/uploads/[0-9a-f]{32}$"))
            page.click("#continue")
        with steps.step("progress"):
            sandbox.revoke_key(API_KEY)  # the run stops before it reads the file again: no update ever comes
            page.click("#confirm-button")
            page.wait_for_url(re.compile(r"/batches/[0-9a-f]{64}$"))
            server.web.runs.wait(page.url.rsplit("/", 1)[1], 60)
            page.reload()
            assert page.inner_text("#pending") == "14" and page.inner_text("#created") == "0"
            assert page.locator("#run-message").is_visible()
