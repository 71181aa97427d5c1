"""The CLI as documentation promises it: every command has help and a README entry,
the module entry point works, the template and validate commands behave."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import openpyxl
import pytest

from batch_payouts.cli.main import main
from conftest import beneficiary, read_xlsx, write_csv

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(group, prefix=""):
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        full = f"{prefix}{name}"
        if hasattr(command, "commands"):
            yield from _commands(command, full + " ")
        else:
            yield full, command


@pytest.mark.parametrize(("name", "command"), list(_commands(main)))
def test_every_command_has_help_and_a_readme_example(name, command):
    assert command.help and len(command.help) > 20
    assert re.search(rf"batch-payouts {name}\b", README), f"README has no example of `batch-payouts {name}`"
    for param in command.params:
        if param.param_type_name == "option" and not param.hidden:
            assert param.help, f"{name} {param.opts} has no help text"
            assert param.opts[0] in README or name.startswith("sandbox"), f"README does not document {param.opts[0]}"


def test_python_dash_m_entry_point():
    done = subprocess.run([sys.executable, "-m", "batch_payouts", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "run" in done.stdout and "validate" in done.stdout


def test_template_writes_headers_example_and_instructions(env, cli):
    out = env / "plantilla.xlsx"
    result = cli("template", out)
    assert result.exit_code == 0
    book = openpyxl.load_workbook(out)
    assert len(book.worksheets) == 2
    headers = [c.value for c in book.worksheets[0][1]]
    assert {"nombre", "correo", "monto", "motivo"} <= set(headers)
    # the template's only problem is its example row, which is never paid
    assert cli("validate", out, "--output", env / "t.xlsx").exit_code == 1
    assert [r["error_code"] for r in read_xlsx(env / "t.xlsx")] == ["example_row"]


def test_validate_sends_nothing_and_marks_rows(env, cli):
    source = write_csv(env / "p.csv", [beneficiary(1), beneficiary(2, monto="-100")])
    result = cli("validate", source, "--output", env / "v.xlsx")
    assert result.exit_code == 1
    sheet = read_xlsx(env / "v.xlsx")
    assert [r["status"] for r in sheet] == ["valid", "invalid"]
    assert sheet[1]["error_code"] == "amount_not_positive"
    assert "Fila 3" in result.output
    assert isinstance(sheet[0]["monto"], int)  # amounts in cents are numbers Excel can sum
    assert isinstance(sheet[0]["telefono"], str)


def test_output_never_overwrites_the_input(env, cli):
    source = write_csv(env / "p.csv", [beneficiary(1)])
    before = source.read_bytes()
    result = cli("validate", source, "--output", source)
    assert result.exit_code == 2
    assert source.read_bytes() == before


def test_demo_sample_gets_16_digit_references(env, cli, monkeypatch):
    monkeypatch.delenv("CONEKTA_API_KEY")
    out = env / "demo.xlsx"
    result = cli("run", ROOT / "samples" / "beneficiaries.xlsx", "--sandbox", "--output", out)
    assert result.exit_code == 1, result.output  # the sample has invalid rows on purpose
    sheet = read_xlsx(out)
    created = [r for r in sheet if r["status"] == "created"]
    assert created and all(re.fullmatch(r"\d{16}", r["reference"]) for r in created)
    assert {r["status"] for r in sheet} == {"created", "invalid"}
    again = cli("run", ROOT / "samples" / "beneficiaries.xlsx", "--sandbox", "--output", out)
    assert [r["reference"] for r in read_xlsx(out)] == [r["reference"] for r in sheet]
    assert again.exit_code == 1


def test_config_file_supplies_options_and_the_command_line_wins(sandbox, env, cli, monkeypatch):
    config = env / "nightly.toml"
    config.write_text('lang = "en"\nworkers = 2\n[run]\ndry-run = true\njson = true\n', encoding="utf-8")
    source = write_csv(env / "p.csv", [beneficiary(1)])
    result = cli("run", source, "--api-base", sandbox.url, "--config", config)
    assert result.exit_code == 0
    assert "Dry run" in result.stderr  # lang and dry-run came from the file
    assert sandbox.payout_orders() == []
    monkeypatch.setenv("BATCH_PAYOUTS_CONFIG", str(config))
    spanish = cli("run", source, "--api-base", sandbox.url, "--lang", "es")
    assert "Simulación" in spanish.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('api_key = "key_abc"\n', "CONEKTA_API_KEY"),
        ("workrs = 3\n", "workrs"),
        ("[nosuchcommand]\nworkers = 1\n", "nosuchcommand"),
        ("workers = = 3\n", "config"),
    ],
)
def test_bad_config_files_are_refused_clearly(env, cli, text, expected):
    config = env / "bad.toml"
    config.write_text(text, encoding="utf-8")
    source = write_csv(env / "p.csv", [beneficiary(1)])
    result = cli("validate", source, "--config", config)
    assert result.exit_code == 2
    assert expected in result.output
    assert "Traceback" not in result.output


def test_log_json_writes_one_json_object_per_stderr_line(env, cli):
    import json

    source = write_csv(env / "p.csv", [beneficiary(1), beneficiary(2, correo="x")])
    result = cli("validate", source, "--log-json")
    lines = [json.loads(line) for line in result.stderr.strip().splitlines()]
    assert lines and all({"ts", "level", "event", "message"} <= set(line) for line in lines)
    assert lines[0]["event"] == "invalid_row" and "Fila 3" in lines[0]["message"]


def test_a_bug_ends_with_a_message_and_its_own_exit_code_never_a_traceback(cli, env, tmp_path, monkeypatch):
    """An unexpected exception is not "some rows need a look" (1): `make demo` and cron must see it."""
    from batch_payouts.jobs import load

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(load, "read_table", broken)
    source = write_csv(tmp_path / "pagos.csv", [beneficiary(1)])
    result = cli("validate", source)
    assert result.exit_code == 70
    assert "Traceback" not in result.output and "Error inesperado (RuntimeError)" in result.output
    details = Path(result.output.rsplit("reportarla: ", 1)[1].strip())
    assert "disk on fire" in details.read_text() and "Traceback" in details.read_text()
    details.unlink()
