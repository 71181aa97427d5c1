"""The web app over real HTTP: every route, the safety rules, and a full batch against the sandbox."""

from __future__ import annotations

import html
import io
import re
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import openpyxl
import pytest
import requests

from batch_payouts.web.wording import TEXT as WORDING_TEXT
from conftest import API_KEY, FIRST_ORDER_IN_DOUBT, WebServer, beneficiary, read_xlsx, write_csv
from batch_payouts.payout.audit_verify import verify
from batch_payouts.errors import BatchError
from batch_payouts.web import WebSettings, create_app
from batch_payouts.web.app import problem_parts
from batch_payouts.rules.validation import Problem
from batch_payouts.web.security import hash_password, verify_password
from web_client import Visitor, batch_id_of, flashes, server, text_of, visitor  # noqa: F401 - fixtures by name

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def run_sample(server: WebServer, visitor: Visitor) -> tuple[requests.Response, str]:
    review = visitor.upload(SAMPLES / "beneficiaries.xlsx", name="nómina quincena.xlsx")
    assert review.status_code == 200, review.text
    started = visitor.confirm(review.url)
    batch_id = batch_id_of(started)
    server.web.runs.wait(batch_id, 60)
    return review, batch_id


# -- pages and the template ------------------------------------------------------------------------
def test_home_is_spanish_with_a_csrf_token_and_the_template_link(visitor):
    page = visitor.get("/")
    assert page.status_code == 200
    assert "Arrastra aquí tu archivo" in page.text and 'href="/template.xlsx"' in page.text
    assert visitor.csrf
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"


def test_language_switch_stays_for_the_session_and_refuses_open_redirects(visitor):
    switched = visitor.get("/lang/en?next=/batches")
    assert switched.url.endswith("/batches") and "Batches" in switched.text
    assert "Drop your .xlsx or .csv file here" in visitor.get("/").text
    outside = visitor.http.get(visitor.base + "/lang/es?next=//evil.example/x", allow_redirects=False, timeout=10)
    assert outside.headers["location"] == "/"


def test_blank_template_downloads_as_a_workbook(visitor, tmp_path):
    response = visitor.get("/template.xlsx")
    assert response.status_code == 200 and "plantilla_pagos.xlsx" in response.headers["content-disposition"]
    (tmp_path / "t.xlsx").write_bytes(response.content)
    headers = [c.value for c in openpyxl.load_workbook(tmp_path / "t.xlsx").worksheets[0][1]]
    assert "nombre" in headers and "correo" in headers and "monto" in headers


def test_static_files_are_served_and_paths_cannot_escape(visitor):
    assert visitor.get("/static/app.js").status_code == 200
    assert visitor.get("/static/../app.py").status_code == 404
    assert visitor.get("/static/%2e%2e/app.py").status_code == 404


# -- review -----------------------------------------------------------------------------------------
def test_review_shows_counts_totals_mode_balance_and_each_problem_with_its_fix(server, visitor, sandbox):
    review = visitor.upload(SAMPLES / "beneficiaries.xlsx")
    assert review.status_code == 200 and "/uploads/" in review.url
    text = text_of(review)
    assert re.search(r"20 filas 14 válidas 6 inválidas", text)
    assert "Por pagar ahora 14 pagos por $21,899.00 MXN" in text
    assert "Saldo disponible $100,000,000.00 MXN" in text
    assert "Todavía no se ha pagado nada" in text
    problems = re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>",
                          review.text)
    assert [int(p[0]) for p in problems] == [5, 8, 11, 14, 17, 20]
    row5 = problems[0]
    assert row5[2] == "correo" and "no es un correo válido." in row5[3] and row5[4].startswith("Escríbelo como")
    assert not [r for r in sandbox.request_log if r["method"] == "POST"], "a review never creates anything"


def test_annotated_sheet_of_the_review_can_be_downloaded(visitor, tmp_path):
    review = visitor.upload(SAMPLES / "beneficiaries.csv")
    sheet = visitor.get(review.url.replace(visitor.base, "") + "/annotated.xlsx")
    assert sheet.status_code == 200 and "beneficiaries.revision.xlsx" in sheet.headers["content-disposition"]
    (tmp_path / "a.xlsx").write_bytes(sheet.content)
    rows = read_xlsx(tmp_path / "a.xlsx")
    assert [r["status"] for r in rows].count("invalid") == 6 and [r["status"] for r in rows].count("valid") == 14


def test_review_in_english_and_amounts_in_pesos(visitor, env):
    visitor.get("/lang/en")
    path = write_csv(env / "pesos.csv", [beneficiary(1, monto="1500"), beneficiary(2, monto="12.34")])
    text = text_of(visitor.upload(path, unit="pesos"))
    assert "2 rows 1 valid 1 invalid" in text and "$1,500.00 MXN" in text
    assert "Cash withdrawals are whole pesos" in text


def test_an_unreadable_file_is_explained_on_the_review(visitor, env):
    path = env / "broken.csv"
    path.write_text("correo,telefono\nsolo@dos.mx,5512345678\n", encoding="utf-8")
    review = visitor.upload(path)
    assert review.status_code == 200
    assert "nombre" in review.text.lower() and 'id="review-error"' in review.text
    assert 'id="continue"' not in review.text


def test_problem_parts_are_the_failure_table_rendered_in_the_page_language():
    """The column, the problem and the fix come apart from the data, not from cutting a sentence:
    a full stop inside the value («a. b@x.mx») changes nothing."""
    problem = Problem(row=7, column="Correo", code="invalid_email", value="a. b@x.mx")
    assert problem_parts(problem, "Ana", "es") == {
        "row": 7, "name": "Ana", "column": "Correo", "problem": "«a. b@x.mx» no es un correo válido.",
        "fix": "Escríbelo como nombre@dominio.com, sin espacios ni acentos."}
    english = problem_parts(problem, "Ana", "en")
    assert english["column"] == "Correo" and english["problem"] == "«a. b@x.mx» is not a valid email address."
    assert english["fix"] == "Write it like name@domain.com, without spaces or accents."


# -- upload limits --------------------------------------------------------------------------------------
def test_upload_without_csrf_token_is_refused(visitor):
    visitor.get("/")
    with open(SAMPLES / "beneficiaries.csv", "rb") as handle:
        refused = visitor.post("/upload", {"csrf_token": "forged"}, csrf=False, files={"file": ("a.csv", handle)})
    assert refused.status_code == 403 and "Recarga la página" in refused.text


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("nomina.pdf", b"%PDF-1.4", "no es un archivo que podamos leer"),
        ("vacio.csv", b"", "está vacío"),
        ("falso.xlsx", b"nombre,correo\n", "no es un libro de Excel válido"),
    ],
)
def test_uploads_of_the_wrong_kind_are_refused_with_a_message(visitor, server, name, content, expected):
    refused = visitor.post("/upload", files={"file": (name, io.BytesIO(content))})
    assert refused.url.rstrip("/") == server.url and expected in " ".join(flashes(refused))
    assert not list((server.web.settings.data_dir / "uploads").glob("*.*")), "nothing refused is kept"


def test_zip_bombs_are_refused_before_any_reader_opens_them(visitor, server):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (64 * 1024 * 1024))
    refused = visitor.post("/upload", files={"file": ("bomba.xlsx", io.BytesIO(buffer.getvalue()))})
    assert "no se abrió" in " ".join(flashes(refused))


def test_uploads_over_the_size_limit_are_refused(web_settings, tmp_path):
    small = replace(web_settings, max_upload_bytes=64 * 1024)
    with WebServer(small) as running:
        visitor = Visitor(running.url)
        big = b"nombre,correo,telefono,monto,motivo\n" + b"x,a@b.mx,5512345678,10000,pago\n" * 20_000
        refused = visitor.post("/upload", files={"file": ("grande.csv", io.BytesIO(big))})
        assert refused.status_code == 413
        assert not list((small.data_dir / "uploads").glob("*.csv"))


def test_uploads_are_stored_under_random_names_and_never_served_raw(visitor, server):
    review = visitor.upload(SAMPLES / "beneficiaries.csv", name="../../etc/passwd.csv")
    upload_id = review.url.rsplit("/", 1)[1]
    stored = [p.name for p in (server.web.settings.data_dir / "uploads").iterdir()]
    assert f"{upload_id}.csv" in stored and not any("passwd" in name for name in stored)
    assert "«passwd.csv»" in review.text
    for path in (f"/uploads/{upload_id}.csv", f"/uploads/{upload_id}/file", f"/static/../uploads/{upload_id}.csv"):
        assert visitor.get(path).status_code == 404


# -- confirm, progress, results -------------------------------------------------------------------------
def test_full_batch_pays_every_valid_row_once_and_serves_results_and_audit(server, visitor, sandbox, tmp_path):
    review, batch_id = run_sample(server, visitor)
    progress = visitor.get(f"/batches/{batch_id}/progress").json()
    assert progress | {"started_at": 0, "finished_at": 0} == {
        "batch_id": batch_id, "state": "finished", "running": False, "total": 14, "done": 14, "created": 14,
        "unconfirmed": 0, "failed": 0, "duplicate": 0, "pending": 0, "message": None, "exit_code": 1, "started_at": 0, "finished_at": 0}
    page = visitor.get(f"/batches/{batch_id}")
    assert "Creadas: 14" in text_of(page) and "Total creado $21,899.00" in text_of(page)

    results = visitor.get(f"/batches/{batch_id}/download/results")
    assert results.status_code == 200 and "results.xlsx" in results.headers["content-disposition"]
    (tmp_path / "r.xlsx").write_bytes(results.content)
    rows = [r for r in read_xlsx(tmp_path / "r.xlsx") if r["status"] == "created"]
    orders = {o["id"]: o for o in sandbox.payout_orders()}
    assert len(rows) == 14 == len(orders)
    for row in rows:
        assert str(row["reference"]) in page.text
        assert orders[row["payout_order_id"]]["allowed_payout_methods"] == ["cashout"]

    audit = visitor.get(f"/batches/{batch_id}/download/audit")
    assert audit.status_code == 200
    (tmp_path / "a.audit.jsonl").write_bytes(audit.content)
    report = verify(tmp_path / "a.audit.jsonl")
    assert report.ok, report
    assert '"input_name": "nómina quincena.xlsx"' in audit.content.decode() or "nómina quincena.xlsx" in audit.content.decode()


def test_confirming_twice_or_uploading_again_never_pays_twice(server, visitor, sandbox):
    review, batch_id = run_sample(server, visitor)
    again = visitor.confirm(review.url)
    server.web.runs.wait(batch_id, 60)
    assert batch_id_of(again) == batch_id
    second = visitor.upload(SAMPLES / "beneficiaries.xlsx")
    text = text_of(second)
    assert "Ya pagadas antes 14" in text and "Por pagar ahora 0 pagos" in text
    assert 'id="continue"' not in second.text
    assert len(sandbox.payout_orders()) == 14


def test_confirmation_must_name_what_was_reviewed(server, visitor, sandbox):
    review = visitor.upload(SAMPLES / "beneficiaries.xlsx")
    path = review.url.replace(visitor.base, "") + "/confirm"
    confirm = visitor.get(path)
    assert "Sí, pagar 14 órdenes por $21,899.00" in text_of(confirm)
    refused = visitor.post(path, {"count": "14", "total": "1"})
    assert refused.status_code == 409 and "No se envió nada" in refused.text
    forged = visitor.post(path, {"count": "14", "total": "2189900", "csrf_token": "x"}, csrf=False)
    assert forged.status_code == 403
    assert sandbox.payout_orders() == []


def test_progress_is_live_while_running_and_survives_a_reload(web_settings, sandbox):
    sandbox.set_faults({"latency_ms": 150})
    with WebServer(replace(web_settings, workers=1)) as running:
        visitor = Visitor(running.url)
        started = visitor.confirm(visitor.upload(SAMPLES / "beneficiaries.xlsx").url)
        batch_id = batch_id_of(started)
        assert 'data-running="yes"' in started.text and "Puedes cerrar esta página" in started.text
        seen = visitor.get(f"/batches/{batch_id}/progress").json()
        assert seen["running"] and seen["total"] in (0, 14)
        other_tab = Visitor(running.url)  # a reload, or another browser: the state is on the server
        assert other_tab.get(f"/batches/{batch_id}/progress").json()["running"]
        running.web.runs.wait(batch_id, 60)
        assert other_tab.get(f"/batches/{batch_id}/progress").json()["created"] == 14
        # the batch list shows it with its totals
        listing = text_of(other_tab.get("/batches"))
        assert batch_id[:12] in listing and "$21,899.00" in listing and "TEST" in listing


def test_progress_after_a_server_restart_comes_from_the_ledger(server, visitor, web_settings):
    _, batch_id = run_sample(server, visitor)
    with WebServer(web_settings) as restarted:
        progress = Visitor(restarted.url).get(f"/batches/{batch_id}/progress").json()
        page = text_of(Visitor(restarted.url).get(f"/batches/{batch_id}"))
    assert progress["state"] == "idle" and progress["created"] == 14 and not progress["running"]
    assert "Creadas: 14 Fallidas: 0 Pendientes: 0" in page and "Detenido" not in page


def test_a_live_key_without_live_stops_before_paying(web_settings, sandbox):
    live = replace(web_settings, environ={"CONEKTA_API_KEY": "key_live_web_test_1234"})
    with WebServer(live) as running:
        visitor = Visitor(running.url)
        started = visitor.confirm(visitor.upload(SAMPLES / "beneficiaries.xlsx").url)
        batch_id = batch_id_of(started)
        running.web.runs.wait(batch_id, 60)
        progress = visitor.get(f"/batches/{batch_id}/progress").json()
        assert progress["state"] == "stopped" and "no está autorizado para pagar con dinero real" in progress["message"]
        assert "--live" not in progress["message"]
        assert sandbox.payout_orders("key_live_web_test_1234") == []
        again = visitor.upload(SAMPLES / "beneficiaries.xlsx")  # now the ledger knows the mode
        assert "LIVE" in again.text and 'id="review-blocker"' in again.text and 'id="continue"' not in again.text


def test_a_review_that_takes_long_shows_a_page_that_refreshes_itself_then_the_review(web_settings):
    import threading

    release = threading.Event()
    with WebServer(replace(web_settings, review_wait_seconds=0.2)) as running:
        review, calls = running.web.review, []

        def large_file(upload, lang):
            calls.append(upload.id)
            release.wait(30)
            review(upload, lang)

        running.web.review = large_file
        visitor = Visitor(running.url)
        with open(SAMPLES / "beneficiaries.xlsx", "rb") as handle:
            pending = visitor.post("/upload", {"amount_unit": "cents"}, files={"file": ("grande.xlsx", handle)})
        assert pending.status_code == 200 and re.search(r"/uploads/[0-9a-f]{32}$", pending.url)
        assert 'id="review-pending"' in pending.text and "Revisando «grande.xlsx»" in text_of(pending)
        assert '<meta http-equiv="refresh" content="2">' in pending.text
        path = pending.url.replace(running.url, "")
        assert 'id="review-pending"' in visitor.get(path).text  # asked again: still under way, not started twice
        early = visitor.get(path + "/confirm")
        assert 'id="review-pending"' in early.text, "nothing to confirm before the review"
        release.set()
        done = visitor.reviewed(visitor.get(path))
    assert re.search(r"14 válidas", text_of(done)) and 'id="continue"' in done.text
    assert len(calls) == 1, "one review, however often the page was asked for"


def test_an_upload_whose_review_was_cut_short_by_a_restart_is_reviewed_when_asked_for(web_settings):
    with WebServer(web_settings) as running:
        with open(SAMPLES / "beneficiaries.xlsx", "rb") as handle:  # stored, never reviewed (the server stopped)
            upload = running.web.uploads.save("antes.xlsx", handle, user=None, amount_unit="cents")
        visitor = Visitor(running.url)
        first = visitor.get(f"/uploads/{upload.id}")
        done = visitor.reviewed(first)
    assert re.search(r"14 válidas", text_of(done)) and "antes.xlsx" in done.text


def test_a_review_that_fails_says_so_instead_of_waiting_for_ever(web_settings):
    with WebServer(replace(web_settings, review_wait_seconds=5)) as running:
        def broken(upload, lang):
            raise RuntimeError("disk on fire")

        running.web.review = broken
        page = Visitor(running.url).upload(SAMPLES / "beneficiaries.xlsx")
    assert "No se pudo revisar el archivo" in text_of(page) and "disk on fire" not in page.text


def test_low_balance_blocks_the_confirmation(web_settings, tmp_path, monkeypatch):
    from batch_payouts.jobs import load as jobs
    from batch_payouts.sandbox import Sandbox

    reads = []
    read_table = jobs.read_table
    monkeypatch.setattr(jobs, "read_table", lambda *a, **k: reads.append(a) or read_table(*a, **k))
    with Sandbox(starting_balance=100) as poor:
        with WebServer(replace(web_settings, api_base=poor.url)) as running:
            review = Visitor(running.url).upload(SAMPLES / "beneficiaries.xlsx")
    assert "Saldo insuficiente" in review.text and 'id="continue"' not in review.text
    assert re.search(r"14 válidas", text_of(review)), "the rows are still reviewed"
    assert len(reads) == 1, "the blocked review reads and validates the file once"


def mixed_currencies(folder: Path) -> Path:
    """A file paying $1,500.00 MXN and $20.00 USD: added together they would read $1,520.00."""
    return write_csv(folder / "mixto.csv", [beneficiary(1, monto="150000", moneda="MXN"),
                                             beneficiary(2, monto="2000", moneda="USD")])


def test_mixed_currencies_are_totalled_per_currency_on_every_page_never_added(web_settings, tmp_path):
    from batch_payouts.sandbox import Sandbox

    with Sandbox(starting_balance={"MXN": 10_000_000, "USD": 500_000}) as dollars:
        with WebServer(replace(web_settings, api_base=dollars.url)) as running:
            visitor = Visitor(running.url)
            review = visitor.upload(mixed_currencies(tmp_path))
            assert 'id="review-blocker"' not in review.text, text_of(review)
            lines = re.findall(r'id="total-valid">(.*?)</span><span>', review.text)[0]
            assert re.findall(r'class="currency-total">([^<]+)<', lines) == ["$1,500.00 MXN", "$20.00 USD"]
            assert "Por pagar ahora 2 pagos por $1,500.00 MXN $20.00 USD" in text_of(review)
            confirm = visitor.get(review.url.replace(running.url, "") + "/confirm")
            assert "$1,500.00 MXN + $20.00 USD" in text_of(confirm)
            batch_id = batch_id_of(visitor.confirm(review.url))
            running.web.runs.wait(batch_id, 60)
            batch = visitor.get(f"/batches/{batch_id}")
            created = re.search(r'id="amount-created">(.*?)</td>', batch.text).group(1)
            assert re.findall(r'class="currency-total">([^<]+)<', created) == ["$1,500.00 MXN", "$20.00 USD"]
            assert "2 ($1,500.00 MXN + $20.00 USD)" in text_of(batch)
            cancel = visitor.get(f"/batches/{batch_id}/cancel")
            assert re.search(r'id="cancel-total">([^<]+)<', cancel.text).group(1) == "$1,500.00 MXN + $20.00 USD"
        assert sorted((o["currency"], o["amount"]) for o in dollars.payout_orders()) == [("MXN", 150000), ("USD", 2000)]
    for page in (review, confirm, batch, cancel):
        assert "$1,520.00" not in page.text


def test_a_row_in_doubt_is_unconfirmed_not_failed_in_progress_batch_page_and_list(web_settings, sandbox, tmp_path):
    """A row whose order may exist at Conekta: "Fallidas 1" would invite paying it by hand (then the
    rerun pays it again).  Live progress, the batch page, the list and the ledger's progress all say
    "sin confirmar", apart from the failures, with the explanation and its own (amber) class."""
    from batch_payouts.sandbox import Faults

    source = write_csv(tmp_path / "pagos.csv", [beneficiary(1), beneficiary(2)])
    settings = replace(web_settings, workers=1, initial_backoff=0.001)
    with WebServer(settings) as running:
        visitor = Visitor(running.url)
        review = visitor.upload(source)
        sandbox.set_faults(Faults(**FIRST_ORDER_IN_DOUBT))
        batch_id = batch_id_of(visitor.confirm(review.url))
        running.web.runs.wait(batch_id, 60)
        sandbox.set_faults(Faults())
        live = visitor.get(f"/batches/{batch_id}/progress").json()
        assert (live["state"], live["created"], live["unconfirmed"], live["failed"]) == ("finished", 1, 1, 0)
        page = visitor.get(f"/batches/{batch_id}")
        listing = visitor.get("/batches")
    text = text_of(page)
    assert "Creadas: 1 Fallidas: 0 Pendientes: 0 Sin confirmar: 1" in text
    assert WORDING_TEXT.UNCONFIRMED_EXPLAINED.es in html.unescape(text)
    [doubtful] = re.findall(r'<tr class="state-unknown ([^"]*)">(.*?)</tr>', page.text, re.S)
    assert doubtful[0] == "unconfirmed" and "<td class=\"row-state\">sin confirmar</td>" in doubtful[1]
    rows_table = re.search(r'<table class="grid" id="rows">(.*?)</table>', page.text, re.S).group(1)
    assert "fallida" not in rows_table and "state-failed" not in rows_table
    header = re.findall(r"<th>(.*?)</th>", listing.text)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", re.search(r"<tbody>(.*?)</tbody>", listing.text, re.S).group(1), re.S)
    by_header = dict(zip(header, cells))
    assert (by_header["Creadas"], by_header["Sin confirmar"], by_header["Fallidas"]) == ("1", "1", "0")
    assert "sin confirmar" in by_header["Estado"] and "con errores" not in listing.text
    assert WORDING_TEXT.UNCONFIRMED_EXPLAINED.es in html.unescape(text_of(listing))
    with WebServer(settings) as restarted:  # the same counters from the ledger, after a restart
        stored = Visitor(restarted.url).get(f"/batches/{batch_id}/progress").json()
    assert (stored["state"], stored["created"], stored["unconfirmed"], stored["failed"]) == ("idle", 1, 1, 0)


# -- after the run: statuses, cancellations ----------------------------------------------------------------
def test_refresh_statuses_and_cancel_pending_references_with_confirmation(server, visitor, sandbox):
    _, batch_id = run_sample(server, visitor)
    first = sandbox.payout_orders()[0]
    sandbox.set_order_status(first["id"], "cashed")
    refreshed = visitor.post(f"/batches/{batch_id}/refresh")
    assert "órdenes consultadas: 14; con cambios: 1" in " ".join(flashes(refreshed))
    assert "cobrada" in refreshed.text

    ask = visitor.get(f"/batches/{batch_id}/cancel")
    assert "Se cancelarán 13 referencias" in text_of(ask)
    stale = visitor.post(f"/batches/{batch_id}/cancel", {"count": "14"})
    assert "No se envió nada" in " ".join(flashes(stale))
    assert all(o["status"] != "cancelled" for o in sandbox.payout_orders())
    done = visitor.post(f"/batches/{batch_id}/cancel", {"count": "13"})
    assert "13 canceladas" in " ".join(flashes(done))
    assert sorted(o["status"] for o in sandbox.payout_orders()).count("cancelled") == 13
    assert 'id="cancel-link"' not in done.text
    assert visitor.post(f"/batches/{batch_id}/cancel", {"count": "13"}, csrf=False).status_code == 403


def test_unknown_batches_and_uploads_are_404(visitor):
    assert visitor.get("/batches/" + "0" * 64).status_code == 404
    assert visitor.get("/batches/not-an-id").status_code == 404
    assert visitor.get("/batches/" + "0" * 64 + "/progress").status_code == 404
    assert visitor.get("/uploads/" + "0" * 32).status_code == 404
    assert visitor.get("/batches/" + "0" * 64 + "/download/results").status_code == 404


def test_the_api_key_never_reaches_a_page(server, visitor):
    review, batch_id = run_sample(server, visitor)
    pages = [visitor.get(p) for p in ("/", "/batches", f"/batches/{batch_id}", f"/batches/{batch_id}/progress",
                                      f"/batches/{batch_id}/download/audit", f"/batches/{batch_id}/cancel")]
    pages.append(review)
    for page in pages:
        assert API_KEY not in page.text and API_KEY[-8:] not in page.text


# -- who may use it ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "192.168.1.20", "payouts.example"])
def test_a_public_address_without_login_refuses_to_start(web_settings, host):
    with pytest.raises(BatchError) as refused:
        create_app(replace(web_settings, host=host))
    assert "inicio de sesión" in refused.value.message("es")


def test_login_is_required_with_users_and_uploads_stay_private(web_settings):
    from batch_payouts.payout.ledger import Ledger
    from batch_payouts.team import totp
    from batch_payouts.team import users as team_users

    users = {"ana": hash_password("s3creta ana"), "beto": hash_password("otra clave")}
    with WebServer(replace(web_settings, host="0.0.0.0", users=users)) as running:
        # [web.users] become preparer+approver, who must enrol a second factor before anything else:
        # ana has enrolled hers; beto is made a preparer only (an approver would see every upload).
        with Ledger(web_settings.ledger_path) as ledger:
            secret = team_users.start_enrolment(ledger, "ana")
            team_users.confirm_enrolment(ledger, "ana", totp.current_code(secret))
            team_users.set_roles(ledger, "beto", "preparer", actor=None)
        ana = Visitor(running.url)
        assert ana.get("/").url.endswith("/login?next=/")
        assert ana.get("/batches").url.endswith("/login?next=/batches")
        wrong = ana.post("/login", {"username": "ana", "password": "nope", "next": "/"})
        assert wrong.status_code == 401 and "incorrectos" in wrong.text
        unknown = ana.post("/login", {"username": "zoe", "password": "nope", "next": "/"})
        assert unknown.status_code == 401
        step = ana.post("/login", {"username": "ana", "password": "s3creta ana", "next": "https://evil.example/"})
        assert step.url.endswith("/login/code")
        signed = ana.post("/login/code", {"code": totp.current_code(secret)})
        assert signed.url.rstrip("/") == running.url and "ana" in signed.text
        review = ana.upload(SAMPLES / "beneficiaries.csv")
        assert review.status_code == 200 and "14 válidas" in text_of(review)

        beto = Visitor(running.url)
        beto.get("/login")
        beto.post("/login", {"username": "beto", "password": "otra clave", "next": "/"})
        assert beto.get(review.url.replace(running.url, "")).status_code == 404
        assert beto.get(review.url.replace(running.url, "") + "/annotated.xlsx").status_code == 404
        # Every step after the review is not found for anyone else, and choosing a sheet of a CSV for anyone.
        path = review.url.replace(running.url, "")
        assert beto.get(path + "/confirm").status_code == 404
        assert beto.post(path + "/confirm", {"count": "14", "total": "x"}).status_code == 404
        assert beto.post(path + "/sheet", {"sheet": "Pagos"}).status_code == 404
        assert ana.post(path + "/sheet", {"sheet": "Pagos"}).status_code == 404

        out = ana.post("/logout")
        assert out.url.endswith("/login")
        assert ana.get("/").url.endswith("/login?next=/")

        # Every page and every action, not only the ones above, sends a stranger to sign in first.
        stranger = requests.Session()
        for route in running.app.routes:
            if not hasattr(route, "methods") or route.path in ("/login", "/logout", "/lang/{code}"):
                continue
            if route.path == "/webhooks/conekta":  # Conekta calls it, unsigned in: refused, never a sign-in page
                assert stranger.post(running.url + route.path, data=b"{}", timeout=10).status_code in (401, 503)
                continue
            path = route.path.replace("{kind:str}", "results").format(upload_id="0" * 32, batch_id="0" * 64,
                                                                                  request_id="0" * 12, name="ana")
            for method in sorted(route.methods - {"HEAD"}):
                answer = stranger.request(method, running.url + path, allow_redirects=False, timeout=10)
                assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), (method, path)


def test_a_trusted_proxy_header_names_the_user(web_settings):
    with WebServer(replace(web_settings, host="0.0.0.0", trust_user_header="X-Remote-User")) as running:
        assert requests.get(running.url + "/", timeout=10).status_code == 401
        proxied = Visitor(running.url, headers={"X-Remote-User": "carla"})
        page = proxied.get("/")
        assert page.status_code == 200 and "carla" in page.text


def test_password_hashes_verify_and_malformed_ones_never_match():
    stored = hash_password("contraseña larga")
    assert stored.startswith("scrypt$") and verify_password("contraseña larga", stored)
    assert not verify_password("otra", stored)
    for broken in ("", "scrypt$1$2", "bcrypt$x$y$z$a$b", "scrypt$x$8$1$AAAA$AAAA"):
        assert not verify_password("x", broken)


# -- the commands ---------------------------------------------------------------------------------------------
def test_web_command_refuses_a_public_address_without_login(cli, env):
    result = cli("web", "--host", "0.0.0.0", "--data-dir", env / "data")
    assert result.exit_code == 2 and "inicio de sesión" in result.output


def test_web_command_reads_users_from_the_config_file(cli, env, monkeypatch):
    import batch_payouts.cli.web as cli_web

    seen = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: seen.update(app=app, **kw))
    config = env / "config.toml"
    config.write_text(f'workers = 3\n[web]\nport = 8123\n[web.users]\nana = "{hash_password("x")}"\n', encoding="utf-8")
    result = cli("web", "--config", config, "--host", "0.0.0.0", "--data-dir", env / "data")
    assert result.exit_code == 0, result.output
    settings = seen["app"].state.web.settings
    assert seen["port"] == 8123 and settings.workers == 3 and list(settings.users) == ["ana"]
    assert cli_web.default_data_dir().name == "web"


def test_hash_password_command_prints_a_verifiable_hash(cli, monkeypatch):
    from click.testing import CliRunner

    from batch_payouts.cli.main import main

    result = CliRunner().invoke(main, ["hash-password", "--password-stdin"], input="mi clave\n")
    assert result.exit_code == 0 and verify_password("mi clave", result.output.strip())


def test_server_shutdown_stops_a_run_cleanly_and_uploading_again_finishes_it_once(web_settings, sandbox):
    sandbox.set_faults({"latency_ms": 200})
    with WebServer(replace(web_settings, workers=1)) as first:
        visitor = Visitor(first.url)
        batch_id = batch_id_of(visitor.confirm(visitor.upload(SAMPLES / "beneficiaries.xlsx").url))
        deadline = time.monotonic() + 30
        while visitor.get(f"/batches/{batch_id}/progress").json()["created"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        first.web.runs.shutdown()  # what uvicorn's shutdown (Ctrl-C, SIGTERM) calls
        progress = visitor.get(f"/batches/{batch_id}/progress").json()
    assert progress["state"] == "interrupted" and "Vuelve a subir el mismo archivo" in progress["message"]
    paid = len(sandbox.payout_orders())
    assert 2 <= paid < 14
    sandbox.set_faults({})
    with WebServer(web_settings) as second:
        visitor = Visitor(second.url)
        review = visitor.upload(SAMPLES / "beneficiaries.xlsx")
        assert f"Ya pagadas antes {paid}" in text_of(review) and f"Por pagar ahora {14 - paid} pagos" in text_of(review)
        visitor.confirm(review.url)
        second.web.runs.wait(batch_id, 60)
    keys = [o["metadata"]["row_key"] for o in sandbox.payout_orders()]
    assert len(keys) == len(set(keys)) == 14


def test_the_batch_list_offers_refresh_and_cancel_for_each_batch(server, visitor, sandbox):
    _, batch_id = run_sample(server, visitor)
    listing = visitor.get("/batches")
    assert f'action="/batches/{batch_id}/refresh"' in listing.text
    assert f'href="/batches/{batch_id}/cancel"' in listing.text
    sandbox.set_order_status(sandbox.payout_orders()[0]["id"], "expired")
    refreshed = visitor.post(f"/batches/{batch_id}/refresh")
    assert refreshed.url.endswith(f"/batches/{batch_id}") and "con cambios: 1" in " ".join(flashes(refreshed))
    assert "vencida" in refreshed.text


def test_old_uploads_are_deleted_when_the_server_starts(server, visitor, web_settings):
    import json

    review = visitor.upload(SAMPLES / "beneficiaries.csv")
    upload_id = review.url.rsplit("/", 1)[1]
    uploads = web_settings.data_dir / "uploads"
    meta = uploads / f"{upload_id}.json"
    record = json.loads(meta.read_text(encoding="utf-8"))
    meta.write_text(json.dumps({**record, "uploaded_at": record["uploaded_at"] - 31 * 86400}), encoding="utf-8")
    fresh = Visitor(server.url).upload(SAMPLES / "beneficiaries.csv").url.rsplit("/", 1)[1]
    create_app(web_settings)  # a server starting on the same data directory
    left = {p.name.split(".")[0] for p in uploads.iterdir() if not p.name.startswith(".")}
    assert upload_id not in left and fresh in left


def test_the_real_command_serves_the_sandbox_and_shares_the_ledger_with_the_cli(tmp_path, cli, monkeypatch):
    import os
    import signal
    import subprocess
    import sys

    from conftest import free_socket

    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    ledger = tmp_path / "ledger.sqlite"
    env = {**os.environ, "BATCH_PAYOUTS_LEDGER": str(ledger)}
    env.pop("CONEKTA_API_KEY", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "batch_payouts", "web", "--sandbox", "--port", str(port), "--data-dir", str(tmp_path / "d")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(base + "/", timeout=2)
                break
            except requests.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read()
                time.sleep(0.1)
        visitor = Visitor(base)
        batch_id = batch_id_of(visitor.confirm(visitor.upload(SAMPLES / "beneficiaries.xlsx").url))
        while visitor.get(f"/batches/{batch_id}/progress").json()["running"]:
            assert time.monotonic() < deadline + 60
            time.sleep(0.2)
        assert visitor.get(f"/batches/{batch_id}/progress").json()["created"] == 14
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    assert server.returncode in (0, -signal.SIGTERM) and "Traceback" not in err  # uvicorn re-raises the signal after a graceful stop
    assert "127.0.0.1:%d" % port in err and "sandbox" in err.lower()
    monkeypatch.setenv("BATCH_PAYOUTS_LEDGER", str(ledger))
    listed = cli("batches")
    assert listed.exit_code == 0 and batch_id[:12] in listed.output and "beneficiaries.xlsx" in listed.output


def test_review_tells_a_live_account_before_anything_is_sent(web_settings, sandbox):
    from batch_payouts.payout.conekta import ClientConfig, ConektaClient

    live_key = "key_live_web_review_7777"
    with ConektaClient(ClientConfig(api_key=live_key, api_base=sandbox.url)) as client:
        client.create_customer({"name": "Ana Pérez", "email": "ana@ejemplo.mx", "phone": "5512345678"}, "idem-web")
    with WebServer(replace(web_settings, environ={"CONEKTA_API_KEY": live_key})) as running:
        review = Visitor(running.url).upload(SAMPLES / "beneficiaries.xlsx")
    assert 'class="badge live"' in review.text and "no está autorizado para pagar con dinero real" in review.text
    assert "--live" not in review.text  # a web user has no command line: the page says what the mode means
    assert 'id="continue"' not in review.text
    assert sandbox.payout_orders(live_key) == []
