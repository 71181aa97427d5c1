"""The four-eyes rules through the real CLI, with the sandbox over real HTTP and a real ledger file."""

from __future__ import annotations

import pytest

from batch_payouts.payout.ledger import Ledger
from batch_payouts.team import events, totp
from conftest import beneficiary, write_csv
from team_setup import PASSWORDS, add_user, approve, enrol, request_ids, team_cli, team_with_policy


def test_an_unapproved_batch_is_refused_runs_once_approved_and_an_edited_amount_needs_approval_again(
        sandbox, env, cli, engine_env):
    ledger = engine_env
    secrets = team_with_policy(ledger, "--every-batch")
    rows = [beneficiary(n) for n in range(1, 4)]
    source = write_csv(env / "pagos.csv", rows)

    refused = cli("run", source, "--api-base", sandbox.url)
    assert refused.exit_code == 2, refused.output
    assert "approver" in refused.output and "no se envió nada" in refused.output
    assert sandbox.payout_orders() == []
    [request_id] = request_ids(refused.output)
    listed = team_cli("approvals", "--ledger", ledger)
    assert request_id in listed.output and "pending" in listed.output

    approved = approve(ledger, request_id, "ana", secrets["ana"])
    assert approved.exit_code == 0, approved.output
    paid = cli("run", source, "--api-base", sandbox.url)
    assert paid.exit_code == 0, paid.output
    assert len(sandbox.payout_orders()) == 3
    assert "approved by ana" in team_cli("approvals", "--ledger", ledger).output

    rows[1]["monto"] = "20000"  # one amount edited after the approval
    write_csv(source, rows)
    again = cli("run", source, "--api-base", sandbox.url)
    assert again.exit_code == 2, again.output
    assert len(sandbox.payout_orders()) == 3  # nothing more sent
    with Ledger(ledger) as opened:
        actions = [e.action for e in events.events(opened)]
        assert events.verify(opened) is None
    assert actions.count("run_refused_unapproved") == 2 and "approval_given" in actions


def test_nobody_approves_their_own_batch_and_a_wrong_code_approves_nothing(sandbox, env, cli, engine_env):
    ledger = engine_env
    secrets = team_with_policy(ledger, "--above", "100", "--two-above", "200")
    source = write_csv(env / "pagos.csv", [beneficiary(n) for n in range(1, 3)])  # $101.00 + $102.00
    refused = cli("run", source, "--api-base", sandbox.url)
    [request_id] = request_ids(refused.output)
    assert "requeridas: 2; recibidas: 0" in refused.output
    wrong = team_cli("approvals", "approve", request_id, "--user", "ana", "--ledger", ledger, "--password-stdin",
                     input=f"{PASSWORDS['ana']}\n000000\n")
    assert wrong.exit_code == 2
    assert approve(ledger, request_id, "ana", secrets["ana"]).exit_code == 0
    # one approval of two: still refused; the same approver twice does not count as two
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 2
    assert approve(ledger, request_id, "ana", secrets["ana"]).exit_code == 2
    assert sandbox.payout_orders() == []


def test_users_are_managed_by_an_admin_once_there_is_one(env, engine_env):
    ledger = engine_env
    assert add_user(ledger, "root", "admin").exit_code == 0  # the first admin: no one to ask yet
    refused = add_user(ledger, "ana", "approver")
    assert refused.exit_code == 2 and "--as" in refused.output
    secret = enrol(ledger, "root")
    assert add_user(ledger, "ana", "approver", acting="root", acting_secret=secret).exit_code == 0
    bad_role = team_cli("users", "set-roles", "ana", "boss", "--ledger", ledger, "--as", "root", "--password-stdin",
                        input=f"{PASSWORDS['root']}\n{totp.current_code(secret)}\n")
    assert bad_role.exit_code == 2 and "boss" in bad_role.output
    disabled = team_cli("users", "disable", "ana", "--ledger", ledger, "--as", "root", "--password-stdin",
                        input=f"{PASSWORDS['root']}\n{totp.current_code(secret)}\n")
    assert disabled.exit_code == 0
    listing = team_cli("users", "list", "--ledger", ledger).output
    assert "root\tadmin\t2FA" in listing and "ana\tapprover" in listing and "desactivado" in listing
    log = team_cli("users", "log", "--ledger", ledger).output
    assert "user_disabled" in log and PASSWORDS["ana"] not in log and PASSWORDS["root"] not in log


def test_enrolling_on_the_terminal_shows_the_key_once_and_refuses_a_wrong_first_code(env, engine_env):
    ledger = engine_env
    assert add_user(ledger, "root", "admin").exit_code == 0
    result = team_cli("users", "enrol", "root", "--ledger", ledger, "--password-stdin",
                      input=f"{PASSWORDS['root']}\n123\n")
    assert result.exit_code == 2 and "Escanea" in result.output


def test_under_a_policy_a_reissue_needs_its_own_approval(sandbox, env, cli):
    """Paying expired references again moves money: under the policy its plan is queued and refused
    (exit 2, nothing sent) until an approver approves that reissue; then it pays once."""
    ledger = env / "ledger.sqlite"
    secrets = team_with_policy(ledger, "--every-batch")
    source = write_csv(env / "pagos.csv", [beneficiary(n) for n in range(1, 3)])
    [request_id] = request_ids(cli("run", source, "--api-base", sandbox.url).output)
    assert approve(ledger, request_id, "ana", secrets["ana"]).exit_code == 0
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    with Ledger(ledger) as opened:
        order = opened._query("SELECT payout_order_id FROM rows ORDER BY row_number")[0]["payout_order_id"]
    sandbox.set_order_status(order, "expired")
    results = env / "pagos.results.xlsx"
    assert cli("status", results, "--api-base", sandbox.url).exit_code == 0
    before = len(sandbox.payout_orders())

    refused = cli("reissue", results, "--expired", "--api-base", sandbox.url)
    assert refused.exit_code == 2 and "no se envió nada" in refused.output
    [reissue_request] = request_ids(refused.output)
    assert reissue_request != request_id and len(sandbox.payout_orders()) == before
    assert "pagos.csv (reissue)" in team_cli("approvals", "--ledger", ledger).output
    assert approve(ledger, reissue_request, "ana", secrets["ana"]).exit_code == 0
    paid = cli("reissue", results, "--expired", "--api-base", sandbox.url)
    assert paid.exit_code == 0, paid.output
    assert len(sandbox.payout_orders()) == before + 1


def test_a_config_file_cannot_weaken_the_policy_and_policy_show_says_where_it_lives(sandbox, env, cli):
    """The policy is in the ledger: a config table or key that looks like one is refused by name (exit 2,
    nothing sent), never read silently; ``policy show`` names the ledger and says why."""
    ledger = env / "ledger.sqlite"
    team_with_policy(ledger, "--every-batch")
    source = write_csv(env / "pagos.csv", [beneficiary(1)])
    for text, key in (("[policy]\nevery-batch = false\n", "[policy]"), ("every-batch = false\n", "every-batch"),
                      ("[run]\ntwo-above = 1\n", "two-above"), ("[approvals]\nneeded = 0\n", "[approvals]")):
        config = env / "nightly.toml"
        config.write_text(text, encoding="utf-8")
        refused = cli("run", source, "--api-base", sandbox.url, "--config", config)
        assert refused.exit_code == 2 and key in refused.output and "bitácora" in refused.output, refused.output
    assert sandbox.payout_orders() == []
    shown = team_cli("policy", "show", "--ledger", ledger, "--lang", "en").output
    assert f"Policy kept in the ledger {ledger}" in shown and "no config changes it" in shown
    assert "every-batch: yes" in shown
