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

# Third-party modules only `run`, the after-run commands, `web` or `sandbox` need (openpyxl: and a
# `validate` of a sheet too large for calamine, files/xlsx_stream.py; never of a small one).
NOT_FOR_VALIDATE = (
    "requests", "urllib3", "charset_normalizer", "http.client", "sqlite3",
    "starlette", "uvicorn", "jinja2", "multipart", "openpyxl", "platformdirs",
)
# The rule about our own code is a rule about folders: `validate` reads (files/) and judges
# (rules/) through the facade that writes its sheet (jobs.load, report); it never loads the
# layer that pays (payout/), the after-run operations, the web app or the sandbox.
FOLDERS_NOT_FOR_VALIDATE = ("payout", "operations", "web", "sandbox", "contracts.publish")
JOBS_FOR_VALIDATE = {"batch_payouts.jobs", "batch_payouts.jobs.load"}


def _ours_outside_validate(modules: set[str]) -> list[str]:
    """Our modules that `validate` should not have loaded: any under the paying folders, and any job but load."""
    ours = {name.removeprefix("batch_payouts.") for name in modules if name.startswith("batch_payouts.")}
    wrong = [name for name in ours if name.split(".")[0] in FOLDERS_NOT_FOR_VALIDATE or name in FOLDERS_NOT_FOR_VALIDATE]
    wrong += [name for name in ours if name.startswith("jobs") and f"batch_payouts.{name}" not in JOBS_FOR_VALIDATE]
    return sorted(wrong)


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
    assert _ours_outside_validate(modules) == []
    assert {"batch_payouts.files.read", "batch_payouts.rules.validation"} <= modules  # it did read and judge


def test_help_loads_no_pandas_yet_lists_every_command():
    exit_code, modules = _loaded("--help")
    assert exit_code in (0, None)
    assert [name for name in ("pandas", "pandera", *NOT_FOR_VALIDATE) if name in modules] == []
    listed = subprocess.run(
        [sys.executable, "-m", "batch_payouts", "--help"], cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    for name in ("validate", "run", "template", "audit", "sandbox", "status", "cancel", "reconcile", "batches",
                 "show", "report", "web", "hash-password", "schemas"):
        assert f"  {name} " in listed, name
