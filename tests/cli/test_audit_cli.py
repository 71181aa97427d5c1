"""The audit log a run leaves beside its results sheet, and `audit verify` over it."""

from __future__ import annotations

import json

from conftest import API_KEY, beneficiary, write_csv


def _lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_run_writes_a_chained_audit_log_that_verifies(sandbox, env, cli):
    source = write_csv(env / "p.csv", [beneficiary(1), beneficiary(2), beneficiary(3, correo="x")])
    result = cli("run", source, "--api-base", sandbox.url)
    assert result.exit_code == 1
    audit = env / "p.results.audit.jsonl"
    entries = _lines(audit)
    assert entries[0]["type"] == "run_started" and entries[-1]["type"] == "run_finished"
    assert entries[0]["input_sha256"] and entries[0]["batch_id"]
    calls = [e for e in entries if e["type"] == "api_call"]
    assert {(c["method"], c["path"]) for c in calls} >= {("GET", "/balance"), ("POST", "/customers"), ("POST", "/payout_orders")}
    posts = [c for c in calls if c["method"] == "POST"]
    assert posts and all(c["idempotency_key"].startswith("bp-") and c["http_status"] == 200 for c in posts)
    assert entries[-1]["counts"] == {"created": 2, "invalid": 1} and entries[-1]["exit_code"] == 1
    assert API_KEY not in audit.read_text(encoding="utf-8")
    assert "persona1@ejemplo.mx" not in audit.read_text(encoding="utf-8")  # no personal data in the log
    assert cli("audit", "verify", audit).exit_code == 0
    # a rerun appends to the same chain
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 1
    again = _lines(audit)
    assert len(again) > len(entries) and [e["seq"] for e in again] == list(range(1, len(again) + 1))
    assert cli("audit", "verify", audit).exit_code == 0


def test_audit_verify_detects_edits_and_a_cut_tail(sandbox, env, cli):
    source = write_csv(env / "p.csv", [beneficiary(1), beneficiary(2)])
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    audit = env / "p.results.audit.jsonl"
    original = audit.read_text(encoding="utf-8")
    lines = original.splitlines(keepends=True)
    audit.write_text("".join(lines[:-1]), encoding="utf-8")  # the last line removed
    cut = cli("audit", "verify", audit)
    assert cut.exit_code == 1
    lines[2] = lines[2].replace('"POST"', '"GET"')
    audit.write_text("".join(lines), encoding="utf-8")  # a middle line edited
    edited = cli("audit", "verify", audit, "--lang", "en")
    assert edited.exit_code == 1 and "Line" in edited.output


def test_dry_run_writes_no_audit_log(sandbox, env, cli):
    source = write_csv(env / "p.csv", [beneficiary(1)])
    assert cli("run", source, "--api-base", sandbox.url, "--dry-run").exit_code == 0
    assert not (env / "p.results.audit.jsonl").exists()


def test_verify_of_a_missing_file_is_a_clear_error(env, cli):
    result = cli("audit", "verify", env / "nope.jsonl")
    assert result.exit_code == 2 and "nope.jsonl" in result.output
