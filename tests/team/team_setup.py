"""Setting up a team in a ledger as an operator does, through the real CLI (shared by the team tests)."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from batch_payouts.cli.main import main
from batch_payouts.payout.ledger import Ledger
from batch_payouts.team import totp, users

PASSWORDS = {"root": "root password 1", "ana": "ana password 1", "beto": "beto password 1", "carla": "carla password 1",
             "dani": "dani password 1"}


def team_cli(*args: object, input: str | None = None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def enrol(ledger: Path, name: str) -> str:
    """Enrol NAME's second factor as the enrolment page does (a secret, then the first code from the
    'app'); returns the secret, which plays the user's authenticator app."""
    with Ledger(ledger) as opened:
        secret = users.start_enrolment(opened, name)
        assert users.confirm_enrolment(opened, name, totp.current_code(secret)) is not None
    return secret


def add_user(ledger: Path, name: str, roles: str, acting: str | None = None, acting_secret: str | None = None):
    lines = []
    extra: list[object] = []
    if acting:
        lines += [PASSWORDS[acting], totp.current_code(acting_secret)]
        extra = ["--as", acting]
    lines.append(PASSWORDS[name])
    return team_cli("users", "add", name, "--roles", roles, "--ledger", ledger, "--password-stdin", *extra,
                    input="\n".join(lines) + "\n")


def approve(ledger: Path, request_id: str, name: str, secret: str):
    return team_cli("approvals", "approve", request_id, "--user", name, "--ledger", ledger, "--password-stdin",
                    input=f"{PASSWORDS[name]}\n{totp.current_code(secret)}\n")


def request_ids(text: str) -> list[str]:
    return re.findall(r"approvals approve ([0-9a-f]{12})", text)


def team_with_policy(ledger: Path, *policy_args: object) -> dict[str, str]:
    """root (admin) and ana (approver), both enrolled, beto (preparer), and the policy: their secrets."""
    assert add_user(ledger, "root", "admin").exit_code == 0
    secrets = {"root": enrol(ledger, "root")}
    for name, roles in (("ana", "approver"), ("beto", "preparer"), ("carla", "auditor")):
        result = add_user(ledger, name, roles, acting="root", acting_secret=secrets["root"])
        assert result.exit_code == 0, result.output
    secrets["ana"] = enrol(ledger, "ana")
    result = team_cli("policy", "set", *policy_args, "--ledger", ledger, "--as", "root", "--password-stdin",
                      input=f"{PASSWORDS['root']}\n{totp.current_code(secrets['root'])}\n")
    assert result.exit_code == 0, result.output
    return secrets
