"""What a command loads: `validate` must not pay for the HTTP client, the ledger,
the web app or the sandbox, and `--help` not even for pandas.

Each check runs in a fresh interpreter (the test session has imported everything).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import beneficiary, write_csv

ROOT = Path(__file__).resolve().parents[1]

# Modules only `run`, the operations commands, `web` or `sandbox` need.
NOT_FOR_VALIDATE = (
    "requests", "urllib3", "charset_normalizer", "http.client", "sqlite3",
    "starlette", "uvicorn", "jinja2", "multipart", "openpyxl", "platformdirs",
    "batch_payouts.payout.ledger", "batch_payouts.payout.ledger_schema", "batch_payouts.payout.audit",
    "batch_payouts.payout.audit_verify", "batch_payouts.operations",
    "batch_payouts.sandbox", "batch_payouts.web",
)

PROBE = """
import json, sys
from batch_payouts.cli.main import main
try:
    main(sys.argv[1:], standalone_mode=False)
    code = 0
except SystemExit as exit:
    code = exit.code
print(json.dumps({"exit_code": code, "modules": sorted(sys.modules)}))
"""


def _loaded(*args: str) -> tuple[object, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["exit_code"], set(answer["modules"])


def test_validate_loads_neither_the_http_client_nor_the_ledger_nor_the_web_app(tmp_path):
    rows = [beneficiary(1), beneficiary(2, correo="not-an-email")]
    source = write_csv(tmp_path / "pagos.csv", rows)
    output = tmp_path / "out.csv"
    exit_code, modules = _loaded("validate", str(source), "--output", str(output))
    assert exit_code == 1  # one invalid row: the command really ran
    assert output.exists()
    assert "pandera" in modules  # the schema is still pandera's
    assert [name for name in NOT_FOR_VALIDATE if name in modules] == []


def test_help_loads_no_pandas_yet_lists_every_command():
    exit_code, modules = _loaded("--help")
    assert exit_code in (0, None)
    assert [name for name in ("pandas", "pandera", *NOT_FOR_VALIDATE) if name in modules] == []
    listed = subprocess.run(
        [sys.executable, "-m", "batch_payouts", "--help"], cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    for name in ("validate", "run", "template", "audit", "sandbox", "status", "cancel", "reconcile", "batches",
                 "show", "report", "web", "hash-password"):
        assert f"  {name} " in listed, name
