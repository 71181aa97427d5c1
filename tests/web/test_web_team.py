"""Four eyes over real HTTP: sign-in throttling, the second factor, roles on every route, approvals."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "team"))

from batch_payouts.payout.ledger import Ledger  # noqa: E402
from batch_payouts.team import events, totp  # noqa: E402
from conftest import WebServer, beneficiary, write_csv  # noqa: E402
from team_setup import PASSWORDS, team_with_policy  # noqa: E402
from web_client import Visitor, batch_id_of  # noqa: E402


def _sign_in(running, name: str, secret: str | None = None) -> Visitor:
    visitor = Visitor(running.url)
    visitor.get("/login")
    answer = visitor.post("/login", {"username": name, "password": PASSWORDS[name], "next": "/"})
    if secret:
        assert answer.url.endswith("/login/code"), answer.url
        answer = visitor.post("/login/code", {"code": totp.current_code(secret)})
    assert answer.status_code == 200 and name in answer.text
    return visitor


def test_the_sixth_wrong_password_is_refused_even_when_right_and_the_trail_shows_the_lock(web_settings):
    ledger = web_settings.ledger_path
    team_with_policy(ledger, "--every-batch")
    with WebServer(replace(web_settings, host="0.0.0.0")) as running:
        beto = Visitor(running.url)
        beto.get("/login")
        for _ in range(5):
            assert beto.post("/login", {"username": "beto", "password": "nope", "next": "/"}).status_code == 401
        sixth = beto.post("/login", {"username": "beto", "password": PASSWORDS["beto"], "next": "/"})
        assert sixth.status_code == 429 and "bloqueado" in sixth.text
        assert beto.get("/").url.endswith("/login?next=/")
    with Ledger(ledger) as opened:
        locks = events.events(opened, action="signin_locked")
        assert {e.detail["scope"] for e in locks} == {"user:beto", "ip:127.0.0.1"}
        assert events.events(opened, action="signin_refused_locked")[0].actor == "beto"


def test_headers_cookies_and_the_second_factor_at_sign_in(web_settings):
    secrets = team_with_policy(web_settings.ledger_path, "--every-batch")
    with WebServer(replace(web_settings, host="0.0.0.0")) as running:
        page = requests.get(running.url + "/login", timeout=10)
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "unsafe-inline" not in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff" and page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "same-origin"
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        ana = Visitor(running.url)
        ana.get("/login")
        before = ana.http.cookies.get("batch_payouts_session")
        step = ana.post("/login", {"username": "ana", "password": PASSWORDS["ana"], "next": "/"})
        assert step.url.endswith("/login/code") and ana.get("/").url.endswith("/login?next=/")  # not signed in yet
        assert ana.post("/login/code", {"code": "000000"}).status_code == 401
        assert ana.post("/login/code", {"code": totp.current_code(secrets["ana"])}).status_code == 200
        assert ana.http.cookies.get("batch_payouts_session") != before  # a new session at sign-in
        assert "ana" in ana.get("/approvals").text


def test_an_auditor_reads_but_every_state_changing_route_answers_403_with_a_trail_line(web_settings):
    team_with_policy(web_settings.ledger_path, "--every-batch")
    with WebServer(replace(web_settings, host="0.0.0.0")) as running:
        carla = _sign_in(running, "carla")
        assert carla.get("/batches").status_code == 200 and carla.get("/approvals").status_code == 200
        refused = []
        for route in running.app.routes:
            methods = getattr(route, "methods", None) or set()
            if "POST" not in methods or route.path in ("/login", "/logout", "/login/code", "/account/totp",
                                                       "/webhooks/conekta"):  # Conekta calls it, signed
                continue
            path = route.path.format(upload_id="0" * 32, batch_id="0" * 64, request_id="0" * 12, name="ana")
            answer = carla.post(path, {})
            refused.append((path, answer.status_code))
        assert refused and all(code == 403 for _, code in refused), [r for r in refused if r[1] != 403]
    with Ledger(web_settings.ledger_path) as opened:
        lines = events.events(opened, action="forbidden")
    assert {e.detail["path"] for e in lines} == {path for path, _ in refused}
    assert {e.actor for e in lines} == {"carla"}


def test_submit_then_approve_with_a_code_pays_once_and_the_preparer_cannot_approve(web_settings, sandbox):
    secrets = team_with_policy(web_settings.ledger_path, "--every-batch")
    source = write_csv(Path(web_settings.data_dir).parent / "pagos.csv", [beneficiary(n) for n in range(1, 4)])
    with WebServer(replace(web_settings, host="0.0.0.0")) as running:
        beto = _sign_in(running, "beto")
        review = beto.upload(source)
        assert 'id="submit-approval"' in review.text and 'id="continue"' not in review.text
        path = review.url.replace(running.url, "")
        assert beto.post(path + "/confirm", {"count": "3", "total": "x"}).status_code == 409  # not approved yet
        submitted = beto.post(path + "/submit")
        assert "Enviado a aprobación" in submitted.text
        with Ledger(web_settings.ledger_path) as opened:
            from batch_payouts.team import approvals

            [pending] = approvals.listing(opened, "pending")
        queue = beto.get("/approvals")
        assert pending.request_id in queue.text and "approve-button" not in queue.text
        forged = beto.post(f"/approvals/{pending.request_id}/approve", {"code": "123456"})
        assert forged.status_code == 403
        assert sandbox.payout_orders() == []

        ana = _sign_in(running, "ana", secrets["ana"])
        assert "approve-button" in ana.get("/approvals").text
        assert ana.get(f"/approvals/{pending.request_id}/sheet").status_code == 200  # the reviewed sheet
        wrong = ana.post(f"/approvals/{pending.request_id}/approve", {"code": "000000"})
        assert "no se aprobó nada" in wrong.text
        started = ana.post(f"/approvals/{pending.request_id}/approve", {"code": totp.current_code(secrets["ana"])})
        running.web.runs.wait(batch_id_of(started), timeout=60)
        assert len(sandbox.payout_orders()) == 3
        again = beto.post(path + "/submit")  # the approved plan: nothing more to submit, nothing paid twice
        assert again.status_code == 200 and len(sandbox.payout_orders()) == 3
    with Ledger(web_settings.ledger_path) as opened:
        actions = [(e.actor, e.action) for e in events.events(opened)]
    assert ("beto", "forbidden") in actions and ("ana", "approval_given") in actions
    assert ("beto", "approval_submitted") in actions


def test_a_rejection_reason_is_shown_to_the_preparer(web_settings):
    secrets = team_with_policy(web_settings.ledger_path, "--every-batch")
    source = write_csv(Path(web_settings.data_dir).parent / "pagos.csv", [beneficiary(n) for n in range(1, 3)])
    with WebServer(replace(web_settings, host="0.0.0.0")) as running:
        beto = _sign_in(running, "beto")
        review = beto.upload(source)
        path = review.url.replace(running.url, "")
        beto.post(path + "/submit")
        ana = _sign_in(running, "ana", secrets["ana"])
        request_id = ana.get("/approvals").text.split('id="request-')[1][:12]
        ana.post(f"/approvals/{request_id}/reject", {"reason": "Falta la firma del director"})
        again = beto.get(path)
        assert "Falta la firma del director" in again.text and 'id="submit-approval"' in again.text
