"""Operator and cron papercuts (issue 13, items 7-11), over the real CLI and real HTTP.

Each test here failed before its fix: a sandbox batch asked for an API key, a LIVE key
without --live told the operator to "run the same file again" (which only stops again)
and called the rows failed, a copied audit log was called intact, a held lock looked like
a bad file to cron, times had no zone, and a config file's booleans could not be turned off.
"""

from __future__ import annotations

import json
import re

import click

from conftest import beneficiary, read_xlsx, write_csv


def _sandbox_batch(env, cli, monkeypatch, count=2):
    """A batch sent with `run --sandbox`, and no API key in the environment afterwards."""
    monkeypatch.delenv("CONEKTA_API_KEY")
    source = write_csv(env / "demo.csv", [beneficiary(n) for n in range(1, count + 1)])
    out = env / "demo.results.xlsx"
    result = cli("run", source, "--sandbox", "--output", out, "--json")
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout.strip().splitlines()[-1])["batch_id"]


def test_after_run_commands_on_a_sandbox_batch_use_the_sandbox_without_a_key(env, cli, monkeypatch):
    out, batch_id = _sandbox_batch(env, cli, monkeypatch)

    status = cli("status", out, "--json")
    assert status.exit_code == 0, status.output
    assert "CONEKTA_API_KEY" not in status.output
    assert json.loads(status.stdout.strip().splitlines()[-1])["checked"] == 2

    reconcile = cli("reconcile", batch_id[:12])
    assert reconcile.exit_code == 0, reconcile.output
    assert "Todo coincide" in reconcile.output

    cancel = cli("cancel", out, "--rows", "2", "--yes", "--json")
    assert cancel.exit_code == 0, cancel.output
    assert [row["row"] for row in json.loads(cancel.stdout.strip().splitlines()[-1])["cancelled"]] == [2]


def test_a_sandbox_batch_whose_emulator_state_is_gone_says_so(env, cli, monkeypatch):
    out, _batch_id = _sandbox_batch(env, cli, monkeypatch, count=1)
    (env / "ledger.sandbox-state.sqlite").unlink()

    result = cli("status", out)
    assert result.exit_code == 2
    assert "--sandbox" in result.output and "CONEKTA_API_KEY" not in result.output
    assert "Traceback" not in result.output


def test_a_live_key_without_live_leaves_rows_not_sent_with_the_flag_to_add(env, cli, monkeypatch):
    from batch_payouts.sandbox import Sandbox

    monkeypatch.setenv("CONEKTA_API_KEY", "key_live_papercut_4242")
    source = write_csv(env / "p.csv", [beneficiary(1), beneficiary(2)])
    out = env / "p.results.xlsx"
    with Sandbox() as live:
        result = cli("run", source, "--api-base", live.url, "--output", out)
        assert live.payout_orders() == []
    assert result.exit_code == 2
    summary = result.output.split("Resumen del lote", 1)[1]
    assert "sin enviar (vuelve a ejecutar con --live para enviarlas)" in summary
    assert "fallida" not in summary
    rows = read_xlsx(out)
    assert {r["error_code"] for r in rows} == {"not_sent"}
    assert all("con --live para enviarla" in r["error_message"] for r in rows)
    assert not any("mismo archivo" in r["error_message"] for r in rows)

    with Sandbox() as live:
        as_json = cli("run", source, "--api-base", live.url, "--output", out, "--json", "--lang", "en")
    document = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert document["not_sent"] == 2 and document["exit_code"] == 2
    assert "run again with --live to send them" in as_json.output


def test_audit_verify_of_a_copy_says_its_end_was_not_checked(sandbox, env, cli):
    source = write_csv(env / "p.csv", [beneficiary(1)])
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    original = env / "p.results.audit.jsonl"
    at_home = cli("audit", "verify", original)
    assert at_home.exit_code == 0 and "Registro de auditoría íntegro" in at_home.output

    copy = env / "copia" / "p.results.audit.jsonl"
    copy.parent.mkdir()
    lines = original.read_text(encoding="utf-8").splitlines(keepends=True)
    copy.write_text("".join(lines[:-1]), encoding="utf-8")  # a copy, its last line gone: only the ledger could tell
    result = cli("audit", "verify", copy)
    assert result.exit_code == 0, result.output
    assert "íntegro" not in result.output
    assert "NO se pudo comprobar contra la bitácora" in result.output


def test_a_batch_held_by_another_run_exits_75_not_2(sandbox, env, cli):
    import subprocess
    import sys

    source = write_csv(env / "p.csv", [beneficiary(1)])
    plan = cli("run", source, "--api-base", sandbox.url, "--dry-run", "--json")
    batch_id = json.loads(plan.stdout.strip().splitlines()[-1])["batch_id"]
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys,time; from batch_payouts.payout.ledger import Ledger; l=Ledger(sys.argv[1]);"
         "l.acquire_lock(sys.argv[2]); print('locked', flush=True); time.sleep(60)",
         str(env / "ledger.sqlite"), batch_id],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        held = cli("run", source, "--api-base", sandbox.url, "--json")
    finally:
        holder.kill()
        holder.wait()
    assert held.exit_code == 75, held.output
    assert re.search(r"desde \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-06:00", held.output), held.output  # its zone
    assert json.loads(held.stdout.strip().splitlines()[-1])["exit_code"] == 75
    assert sandbox.payout_orders() == []
    bad_file = cli("run", env / "missing.csv", "--api-base", sandbox.url)
    assert bad_file.exit_code == 2


def test_the_readme_exit_code_table_is_the_exit_codes_module():
    from pathlib import Path

    from batch_payouts.exit_codes import EXIT_CODES

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| code")]
    assert rows == [f"| {code} | {meaning} |" for code, meaning in EXIT_CODES.items()]


ISO_WITH_ZONE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"


def test_times_carry_their_zone_which_the_config_or_the_command_line_chooses(sandbox, env, cli):
    source = write_csv(env / "p.csv", [beneficiary(n) for n in range(1, 4)])
    run = cli("run", source, "--api-base", sandbox.url)
    assert run.exit_code == 0, run.output
    # a plain progress line (no terminal here) says when it was written, offset included
    progress = [line for line in run.stderr.splitlines() if "filas procesadas" in line]
    assert progress and all(re.match(ISO_WITH_ZONE + r" \d+/3 filas procesadas", line) for line in progress)
    assert all(r["expires_at"].endswith("-06:00") for r in read_xlsx(env / "p.results.xlsx"))

    config = env / "ops.toml"
    config.write_text('timezone = "UTC"\n', encoding="utf-8")
    shown = json.loads(cli("show", source.with_name("p.results.xlsx"), "--json", "--config", config)
                       .stdout.strip().splitlines()[-1])
    assert shown["last_run_at"].endswith("+00:00")
    wins = json.loads(cli("show", env / "p.results.xlsx", "--json", "--config", config,
                          "--timezone", "America/Mexico_City").stdout.strip().splitlines()[-1])
    assert wins["last_run_at"].endswith("-06:00")

    status = cli("status", env / "p.results.xlsx", "--api-base", sandbox.url, "--timezone", "UTC")
    assert status.exit_code == 0, status.output
    assert all(r["status_checked_at"].endswith("+00:00") for r in read_xlsx(env / "p.results.xlsx"))

    bad = cli("batches", "--timezone", "Luna/Base_Alfa")
    assert bad.exit_code == 2 and "America/Mexico_City" in bad.output and "Traceback" not in bad.output


def test_every_boolean_option_can_be_turned_off_on_the_command_line(sandbox, env, cli):
    from batch_payouts.cli.main import _LAZY_COMMANDS, main

    import importlib

    for module in set(_LAZY_COMMANDS.values()):
        importlib.import_module(module)
    commands = [main.commands[name] for name in main.commands]
    commands += [sub for group in commands if hasattr(group, "commands") for sub in group.commands.values()]
    flags = [(command.name, param.name) for command in commands for param in command.params
             if isinstance(param, click.Option) and param.is_flag and not param.secondary_opts
             and param.name not in ("help", "version")]
    assert flags == []

    config = env / "nightly.toml"
    config.write_text("[run]\njson = true\ndry-run = true\n", encoding="utf-8")
    source = write_csv(env / "p.csv", [beneficiary(1)])
    result = cli("run", source, "--api-base", sandbox.url, "--config", config, "--no-json", "--no-dry-run")
    assert result.exit_code == 0, result.output
    assert "schema_version" not in result.stdout  # --no-json won over the file
    assert len(sandbox.payout_orders()) == 1  # --no-dry-run won: the row was paid
