"""After the run, in a real browser: an open batch page follows Conekta's webhooks by itself.

The sandbox delivers signed webhooks to the app's ``/webhooks/conekta``; the page (opened once,
never reloaded by the test) shows the references being cashed -- per-row status and chart -- as
the page's own script notices the ledger changed.
"""

from __future__ import annotations

import sqlite3

from conftest import WebServer, beneficiary, write_csv
from test_web_browser import Steps, browser, page  # noqa: F401 - the fixtures, by name


def test_an_open_batch_page_shows_references_cashed_and_expired_without_a_manual_reload(
        page, web_settings, sandbox, env, cli, request):  # noqa: F811 - page: the fixture
    steps = Steps(page, request.node.name)
    source = write_csv(env / "pagos.csv", [beneficiary(n, folio=f"F-{n}") for n in (1, 2, 3)])
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        batch_id, = conn.execute("SELECT batch_id FROM batches").fetchone()
        references = [r[0] for r in conn.execute("SELECT reference FROM rows ORDER BY row_number")]
    with WebServer(web_settings) as server:
        sandbox.set_webhook_urls([server.url + "/webhooks/conekta"])
        with steps.step("open"):
            page.goto(f"{server.url}/batches/{batch_id}")
            assert "cobrada" not in page.inner_text("#rows")
            page.evaluate("() => { window.openedOnce = true; }")  # gone if the page reloads itself
        with steps.step("cashed"):
            sandbox.cash(references[0])
            page.wait_for_function("() => document.querySelector('#rows').innerText.includes('cobrada (')")
            assert page.evaluate("() => window.openedOnce") is None
            assert "1 cobradas" in page.inner_html("svg.order-chart")
        with steps.step("expired"):
            page.evaluate("() => { window.openedOnce = true; }")
            sandbox.expire(references[1])
            page.wait_for_function("() => document.querySelector('#rows').innerText.includes('vencida')")
            assert page.evaluate("() => window.openedOnce") is None
            assert "1 vencidas" in page.inner_html("svg.order-chart")
            assert page.locator("#reissue-button").count() == 1
