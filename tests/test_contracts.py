"""The published contracts (schemas/): generated from the code, committed, and true of real outputs.

Every output is produced by the real CLI over real HTTP against the sandbox and validated with the
``jsonschema`` library against the *committed* files, so a reader who validates with them sees
what these tests see.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from batch_payouts.contracts import SCHEMA_VERSION, publish
from batch_payouts.contracts.inputs import METADATA_HEADER
from batch_payouts.rules.messages import ERROR_CODES
from conftest import beneficiary, read_xlsx, write_csv

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


def problems(name: str, instance) -> list[str]:
    validator = Draft202012Validator(schema(name), format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(instance)]


def assert_valid(name: str, instance) -> None:
    found = problems(name, instance)
    assert not found, f"{name} does not accept this output:\n" + "\n".join(found) + f"\n{json.dumps(instance)[:2000]}"


IN_PLACE = ("allOf", "anyOf", "oneOf", "if", "then", "else")  # applicators at the same instance location


def closed(node, new_location: bool = True):
    """The schema with every object closed: each key an output carries must be documented.

    The published files keep objects open (additions are MINOR for readers); here ``unevaluatedProperties:
    false`` goes on each instance location, so keys described in an ``allOf``/``if``-``then`` branch count."""
    if isinstance(node, list):
        return [closed(item, new_location) for item in node]
    if not isinstance(node, dict):
        return node
    copy = {}
    for key, value in node.items():
        if key == "additionalProperties" and value is True:
            continue
        if key == "properties":
            copy[key] = {name: closed(sub) for name, sub in value.items()}
        elif key in IN_PLACE:
            copy[key] = closed(value, new_location=False)
        else:
            copy[key] = closed(value) if key in ("items", "additionalProperties", "$defs") else value
    declares = "properties" in node or any(
        "properties" in branch for k in IN_PLACE for branch in (node.get(k) if isinstance(node.get(k), list) else [node.get(k)])
        if isinstance(branch, dict))
    if new_location and declares and node.get("additionalProperties", True) is True:
        copy["unevaluatedProperties"] = False
    return copy


def assert_documented(name: str, instance) -> None:
    """Valid against ``name`` *and* every key it carries described there (not just tolerated)."""
    assert_valid(name, instance)
    validator = Draft202012Validator(closed(schema(name)))
    found = [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(instance)]
    assert not found, (
        f"an output carries keys {name} does not describe:\n" + "\n".join(found)
        + f"\ndescribe them in batch_payouts/contracts/ and run `{publish.REGENERATE}`."
    )


def last_json(result) -> dict:
    """The document a --json command prints as the last line on stdout."""
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- the committed files are the code's ----------------------------------------------------------
def test_committed_schemas_match_the_code():
    drifted = publish.differences(SCHEMAS)
    assert not drifted, (
        f"schemas/ is out of date with the code ({', '.join(drifted)}): run `{publish.REGENERATE}` "
        "and commit the result (bump SCHEMA_VERSION in batch_payouts/contracts/__init__.py if the change "
        "can break a reader: see schemas/README.md)."
    )


def test_every_json_schema_is_a_valid_draft_2020_12_schema_with_the_current_version():
    names = [name for name in publish.CATALOGUE if name.endswith(".json")]
    assert len(names) == 12
    for name in names:
        document = schema(name)
        Draft202012Validator.check_schema(document)
        assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert document["x-schema-version"] == SCHEMA_VERSION


def test_the_pandera_yaml_loads_back_and_names_every_check_by_its_error_code():
    import pandera.pandas as pa

    text = (SCHEMAS / "beneficiaries.yaml").read_text(encoding="utf-8")
    loaded = pa.DataFrameSchema.from_yaml(text)
    assert "amount" in loaded.columns and loaded.strict is True
    document = yaml.safe_load(text)
    listed = document["unserialized_checks"]
    codes = [item["error_code"] for item in listed]
    elsewhere = [item["error_code"] for item in document["rules_outside_this_schema"]]
    assert codes == [code for code in ERROR_CODES if code in codes]  # in the order rows report them
    assert sorted(codes + elsewhere) == sorted(ERROR_CODES)
    assert "invalid_email" in codes
    assert {item["when"] for item in listed if item["error_code"] == "amount_over_limit"} == {"with --max-amount (default 10000 pesos per row)"}
    assert {item["when"] for item in listed if item["error_code"] == "duplicate_row"} == {"unless --allow-duplicate-rows"}


def test_schemas_check_command_reports_drift_and_names_the_command_that_fixes_it(cli, tmp_path):
    written = cli("schemas", "write", tmp_path / "out")
    assert written.exit_code == 0, written.output
    assert cli("schemas", "check", tmp_path / "out").exit_code == 0
    (tmp_path / "out" / "run.schema.json").write_text("{}", encoding="utf-8")
    (tmp_path / "out" / "old.schema.json").write_text("{}", encoding="utf-8")
    drifted = cli("schemas", "check", tmp_path / "out", "--lang", "en")
    assert drifted.exit_code == 1
    assert "run.schema.json, old.schema.json" in drifted.output
    assert "`batch-payouts schemas write schemas/`" in drifted.output
    assert cli("schemas", "write", tmp_path / "out").exit_code == 0
    assert not (tmp_path / "out" / "old.schema.json").exists()  # a dropped schema is not left behind
    assert cli("schemas", "check", tmp_path / "out").exit_code == 0


# -- the input contract agrees with the rules ----------------------------------------------------
ROWS = [  # (row, what the rules say), one rule per row; cross-row rules are beneficiaries.yaml's
    ({}, True),
    ({"phone": "+52 (55) 1234-5678"}, True),
    ({"amount": "1,500"}, True),
    ({"amount": "150000.0"}, True),
    ({"currency": "USD", "expires_at": "2031-12-31"}, True),
    ({"expires_at": "2031-12-31T10:00:00-06:00"}, True),
    ({"email": "no-es-correo"}, False),
    ({"phone": "12345"}, False),
    ({"amount": "150050"}, False),
    ({"amount": "0"}, False),
    ({"amount": "$1,500"}, False),
    ({"amount": "1500.5"}, False),
    ({"currency": "MNX"}, False),
    ({"reason": "x" * 41}, False),
    ({"name": "   "}, False),
    ({"expires_at": "mañana"}, False),
]


def test_the_input_row_schema_agrees_with_the_tool_row_by_row(env, cli):
    rows = []
    for n, (change, _) in enumerate(ROWS, start=1):
        row = {"name": f"Persona {n}", "email": f"p{n}@ejemplo.mx", "phone": f"55{n:08d}", "amount": str(10000 + 100 * n),
               "currency": "MXN", "reason": f"Apoyo {n}", "expires_at": "", "meta_proyecto": "Norte"}
        rows.append({**row, **change})
    source = write_csv(env / "reglas.csv", rows)
    result = cli("validate", source, "--output", env / "reglas.results.xlsx", "--json")
    assert result.exit_code == 1, result.output
    assert_documented("validate.schema.json", last_json(result))
    verdicts = [r["status"] == "valid" for r in read_xlsx(env / "reglas.results.xlsx")]
    assert verdicts == [valid for _, valid in ROWS]  # the rows say what the test thinks the rules say
    for row, valid in zip(rows, verdicts):
        assert (not problems("beneficiaries.schema.json", row)) == valid, (row, problems("beneficiaries.schema.json", row))
    assert problems("beneficiaries.schema.json", {**rows[0], "amount": 150000}) == []  # an integer amount too
    assert problems("beneficiaries.schema.json", {"name": "x", "email": "a@b.mx", "amount": "100"})  # no reason


def test_the_metadata_pattern_matches_the_header_rule():
    from batch_payouts.rules.headers import _METADATA_HEADER

    for header in ("meta_proyecto", "Metadata.Centro", "META-x", "meta proyecto", "metadata_", "metax", "meta_ ",
                   "proyecto", "metadatos_x"):
        assert bool(re.search(METADATA_HEADER, header)) == bool(_METADATA_HEADER.match(header)), header


# -- every output of a real batch ----------------------------------------------------------------
@pytest.fixture
def paid(sandbox, env, cli):
    """A batch with a created, a refused (failed) and an invalid row, sent with --json and --log-json."""
    customer = {"id cliente": ""}
    rows = [beneficiary(1, folio="F-1", meta_proyecto="Norte", **customer),
            beneficiary(2, folio="F-2", meta_proyecto="", **customer),
            beneficiary(3, folio="F-3", meta_proyecto="", **{"id cliente": "cus_doesnotexist00000"}),
            beneficiary(4, folio="F-4", meta_proyecto="", correo="no-es-correo", **customer)]
    source = write_csv(env / "pagos.csv", rows)
    out = env / "pagos.results.xlsx"
    result = cli("run", source, "--api-base", sandbox.url, "--output", out, "--json", "--log-json")
    assert result.exit_code == 1, result.output
    return source, out, result


def test_run_json_log_lines_results_sheet_and_audit_lines_follow_their_schemas(paid, sandbox, env, cli):
    source, out, result = paid
    summary = last_json(result)
    assert summary["schema_version"] == SCHEMA_VERSION
    assert summary["counts"] == {"created": 2, "invalid": 1, "failed": 1}
    assert_documented("run.schema.json", summary)

    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert {"invalid_row", "summary"} <= {line["event"] for line in lines}
    for line in lines:
        assert_documented("log-line.schema.json", line)

    sheet = read_xlsx(out)
    assert [r["status"] for r in sheet] == ["created", "created", "failed", "invalid"]
    for row in sheet:
        assert_valid("results-row.schema.json", row)

    audit = [json.loads(line) for line in (env / "pagos.results.audit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {"run_started", "api_call", "run_finished"} <= {entry["type"] for entry in audit}
    for entry in audit:
        assert_documented("audit-line.schema.json", entry)

    dry = cli("run", source, "--api-base", sandbox.url, "--output", env / "plan.xlsx", "--dry-run", "--json")
    assert "plan" in last_json(dry)
    assert_documented("run.schema.json", last_json(dry))
    broken = write_csv(env / "sin-monto.csv", [{"nombre": "Ana", "correo": "ana@ejemplo.mx", "motivo": "Apoyo"}])
    refused = cli("run", broken, "--api-base", sandbox.url, "--json")
    assert refused.exit_code == 2 and set(last_json(refused)) == {"schema_version", "exit_code", "error"}
    assert_documented("run.schema.json", last_json(refused))
    assert_documented("validate.schema.json", last_json(cli("validate", broken, "--json")))


def test_every_after_run_command_json_follows_its_schema(paid, sandbox, env, cli):
    _, out, _ = paid
    documents = {
        "status": cli("status", out, "--api-base", sandbox.url, "--json"),
        "cancel": cli("cancel", out, "--rows", "2", "--yes", "--api-base", sandbox.url, "--json"),
        "reconcile": cli("reconcile", out, "--api-base", sandbox.url, "--json"),
        "batches": cli("batches", "--json"),
        "show": cli("show", out, "--json"),
        "report": cli("report", "--since", "2020-01-01", "--output", env / "mes.xlsx", "--json"),
    }
    for command, result in documents.items():
        assert result.exit_code == 0, (command, result.output)
        document = last_json(result)
        assert document["schema_version"] == SCHEMA_VERSION
        assert_documented(f"{command}.schema.json", document)
    assert len(last_json(documents["cancel"])["cancelled"]) == 1
    # After status and cancel, the results sheet has the status columns: still a valid row.
    for row in read_xlsx(out):
        assert_valid("results-row.schema.json", row)
    audit = (out.with_suffix(".audit.jsonl")).read_text(encoding="utf-8").splitlines()
    assert any('"command_started"' in line for line in audit)
    for line in audit:
        assert_documented("audit-line.schema.json", json.loads(line))


def test_a_schema_rejects_an_output_that_breaks_the_contract(paid):
    summary = last_json(paid[2])
    assert problems("run.schema.json", {k: v for k, v in summary.items() if k != "counts"})  # a key removed
    assert problems("run.schema.json", {**summary, "counts": {"paid": 1}})  # a status nobody documented
    assert problems("run.schema.json", {**summary, "schema_version": "2.0"})  # another MAJOR
    assert not problems("run.schema.json", {**summary, "new_key": 1})  # additions are MINOR: accepted
    with pytest.raises(AssertionError, match="new_key"):  # ... but the tests want every key documented
        assert_documented("run.schema.json", {**summary, "new_key": 1})
    with pytest.raises(AssertionError, match="extra"):  # also inside an if/then branch (audit entries)
        assert_documented("audit-line.schema.json", {"seq": 1, "ts": "2026-03-02T18:04:05.123456Z", "prev": "0" * 64,
                                                     "type": "command_finished", "command": "status", "extra": 1})
