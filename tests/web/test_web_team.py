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
from team_setup import PASSWORDS, team_cli, team_with_policy  # noqa: E402
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


# -- second round: enrolment required, own batches, administration, users added later ---------------------
def test_an_approver_without_a_second_factor_can_only_enrol_then_everything_opens(web_settings):
    """A [web.users] user (bootstrapped preparer+approver) is sent to enrol right after the password,
    cannot reach or change anything else until then (403 and a trail line for a POST), and is let in once enrolled."""
    import re

    from batch_payouts.web.security import hash_password

    users = {"dora": hash_password("dora password 1")}
    with WebServer(replace(web_settings, host="0.0.0.0", users=users)) as running:
        dora = Visitor(running.url)
        dora.get("/login")
        signed = dora.post("/login", {"username": "dora", "password": "dora password 1", "next": "/batches"})
        assert signed.url.endswith("/account") and 'id="must-enrol"' in signed.text
        for path in ("/", "/batches", "/approvals", "/admin"):
            assert dora.get(path).url.endswith("/account"), path
        assert dora.post("/upload", {}).status_code == 403
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', dora.get("/account").text).group(1)
        enrolled = dora.post("/account/totp", {"code": totp.current_code(secret)})
        assert 'id="recovery-codes"' in enrolled.text
        assert dora.get("/batches").url.endswith("/batches") and dora.get("/approvals").status_code == 200
    with Ledger(web_settings.ledger_path) as opened:
        refused = events.events(opened, action="forbidden")
        assert [(e.actor, e.detail["path"], e.detail["needed"]) for e in refused] == [
            ("dora", "/upload", "enrol second factor first")]
        assert events.events(opened, action="second_factor_enrolled")[0].actor == "dora"


def test_a_preparer_sees_only_their_own_batches_and_uploads(web_settings, sandbox, ledger_location):
    """beto's batch is not in dani's list and its addresses answer 404 to her (recorded); the
    auditor and the approver see it, and may read beto's review, but never change it."""
    settings = replace(web_settings, ledger_path=ledger_location, host="0.0.0.0")
    secrets = team_with_policy(settings.ledger_path, "--rows-over", "1000")  # nothing here needs approval
    root = _sign_in_cli_admin(settings.ledger_path, secrets)
    assert root.exit_code == 0, root.output
    source = write_csv(Path(web_settings.data_dir).parent / "pagos.csv", [beneficiary(n) for n in range(1, 3)])
    with WebServer(settings) as running:
        beto = _sign_in(running, "beto")
        review = beto.upload(source)
        upload_path = review.url.replace(running.url, "")
        batch_id = batch_id_of(beto.confirm(review.url))
        running.web.runs.wait(batch_id, timeout=60)
        assert batch_id[:12] in beto.get("/batches").text

        dani = _sign_in(running, "dani")
        assert batch_id[:12] not in dani.get("/batches").text
        for path in (f"/batches/{batch_id}", f"/batches/{batch_id[:12]}", f"/batches/{batch_id}/progress",
                     f"/batches/{batch_id}/download/results", f"/batches/{batch_id}/download/audit",
                     upload_path, upload_path + "/annotated.xlsx"):
            assert dani.get(path).status_code == 404, path
        assert dani.post(f"/batches/{batch_id}/refresh").status_code == 404

        carla = _sign_in(running, "carla")
        ana = _sign_in(running, "ana", secrets["ana"])
        for reader in (carla, ana):
            assert batch_id[:12] in reader.get("/batches").text
            assert reader.get(f"/batches/{batch_id}").status_code == 200
            assert reader.get(upload_path).status_code == 200  # reading another's review
        assert ana.post(upload_path + "/confirm", {"count": "2", "total": "x"}).status_code == 404  # its uploader's alone
    with Ledger(settings.ledger_path) as opened:
        refused = [e for e in events.events(opened, action="forbidden") if e.actor == "dani"]
        assert {e.detail["needed"] for e in refused} == {"own batch", "own upload"}
        assert any(e.detail.get("batch") == batch_id for e in refused)


def _sign_in_cli_admin(ledger, secrets):
    """dani, a second preparer, added by the admin from the CLI."""
    from team_setup import add_user

    return add_user(ledger, "dani", "preparer", acting="root", acting_secret=secrets["root"])


def test_an_admin_manages_users_and_the_policy_in_the_browser_with_a_code_each_time(web_settings):
    secrets = team_with_policy(web_settings.ledger_path, "--every-batch")
    with WebServer(replace(web_settings, host="0.0.0.0")) as running:
        ana = _sign_in(running, "ana", secrets["ana"])
        assert ana.get("/admin").status_code == 403 and ana.post("/admin/policy", {"clear": "1"}).status_code == 403
        root = _sign_in(running, "root", secrets["root"])
        page = root.get("/admin")
        assert 'id="user-beto"' in page.text and 'id="nav-admin"' in page.text
        code = totp.current_code(secrets["root"])
        wrong = root.post("/admin/users", {"name": "dani", "password": PASSWORDS["dani"], "roles": "preparer",
                                           "code": "000000"})
        assert "no se cambió nada" in wrong.text and 'id="user-dani"' not in wrong.text
        added = root.post("/admin/users", {"name": "dani", "password": PASSWORDS["dani"], "roles": ["preparer", "auditor"],
                                           "code": code})
        assert 'id="user-dani"' in added.text and "auditor, preparer" in added.text
        assert "al menos 10" in root.post("/admin/users", {"name": "eva", "password": "short", "roles": "preparer",
                                                           "code": code}).text
        assert "auditor" not in root.post("/admin/users/dani/roles", {"roles": "preparer", "code": code}).text.split(
            'id="roles">')[1].split("<")[0]
        root.post("/admin/users/dani/password", {"password": "dani new password", "code": code})
        assert 'id="state">desactivado' in root.post("/admin/users/dani/disable", {"enable": "0", "code": code}).text
        assert "a ti mismo" in root.post("/admin/users/root/disable", {"enable": "0", "code": code}).text
        policy = root.post("/admin/policy", {"above": "50,000", "two_above": "500000", "currency": "MXN", "code": code})
        assert "$50,000.00 MXN" in policy.text and 'id="policy-where"' in policy.text
        assert "no es un monto" in root.post("/admin/policy", {"above": "mucho", "code": code}).text

        dani = Visitor(running.url)
        dani.get("/login")
        assert dani.post("/login", {"username": "dani", "password": "dani new password", "next": "/"}).status_code == 401
    shown = team_cli("policy", "show", "--ledger", web_settings.ledger_path)
    assert "$50,000.00 MXN" in shown.output and "$500,000.00 MXN" in shown.output and "every-batch: no" in shown.output
    with Ledger(web_settings.ledger_path) as opened:
        trail = [(e.actor, e.action, e.ip) for e in events.events(opened)]
        assert events.verify(opened) is None
    for action in ("user_added", "roles_set", "password_reset", "user_disabled", "policy_set"):
        assert ("root", action, "127.0.0.1") in trail, action
    assert ("root", "signin_failed", "127.0.0.1") in trail  # the wrong code counts as a failed sign-in
    assert all("dani password" not in str(line) and "dani new password" not in str(line) for line in trail)


def test_users_added_from_the_cli_after_the_server_started_count_at_once(web_settings):
    """On loopback with no users, nobody signs in; the first user added on a terminal turns sign-in on
    for the running server, and roles changed later apply at the next request."""
    from team_setup import add_user, enrol

    with WebServer(web_settings) as running:
        nobody = Visitor(running.url)
        assert nobody.get("/batches").url.endswith("/batches")
        assert add_user(web_settings.ledger_path, "root", "admin").exit_code == 0
        secret = enrol(web_settings.ledger_path, "root")
        assert nobody.get("/batches").url.endswith("/login?next=/batches")
        assert add_user(web_settings.ledger_path, "beto", "preparer", "root", secret).exit_code == 0
        beto = _sign_in(running, "beto")
        assert beto.get("/approvals").status_code == 200
        assert team_cli("users", "set-roles", "beto", "auditor", "--ledger", web_settings.ledger_path, "--as", "root",
                        "--password-stdin", input=f"{PASSWORDS['root']}\n{totp.current_code(secret)}\n").exit_code == 0
        assert beto.post("/upload", {}).status_code == 403
