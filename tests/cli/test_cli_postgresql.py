"""The real CLI on a PostgreSQL ledger: the same commands as on a file, the URL taken from
--ledger, BATCH_PAYOUTS_LEDGER or the config file, and a password in it never printed."""

from __future__ import annotations

import json

from conftest import beneficiary, write_csv

SECRET = "Pw-in-the-URL-9731"


def test_run_batches_show_and_report_on_a_postgresql_ledger_never_print_its_password(sandbox, env, cli, pg_cluster, monkeypatch):
    url = pg_cluster.new_database().replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")
    monkeypatch.setenv("BATCH_PAYOUTS_LEDGER", url)
    source = write_csv(env / "pagos.csv", [beneficiary(n) for n in range(1, 4)])
    first = cli("run", source, "--api-base", sandbox.url, "--json")
    assert first.exit_code == 0, first.output
    assert len(sandbox.payout_orders()) == 3
    summary = json.loads(first.output.strip().splitlines()[-1])
    assert summary["ledger"].startswith("postgresql://postgres:***@")
    again = cli("run", source, "--api-base", sandbox.url)  # the shared record: nothing sent twice
    assert again.exit_code == 0 and len(sandbox.payout_orders()) == 3
    outputs = [first.output, again.output]
    for command in (("batches", "--json"), ("show", summary["batch_id"][:12]), ("report", "--since", "2000-01-01", "--output", env / "mes.xlsx")):
        done = cli(*command)
        assert done.exit_code == 0, done.output
        outputs.append(done.output)
    assert all(SECRET not in out for out in outputs)
    assert json.loads(outputs[2].strip().splitlines()[-1])["ledger"].startswith("postgresql://postgres:***@")


def test_the_ledger_url_from_the_option_and_the_config_file(sandbox, env, cli, pg_cluster):
    url = pg_cluster.new_database()
    source = write_csv(env / "pagos.csv", [beneficiary(1)])
    assert cli("run", source, "--api-base", sandbox.url, "--ledger", url).exit_code == 0
    config = env / "ops.toml"
    config.write_text(f'ledger = "{url}"\n', encoding="utf-8")
    listed = cli("batches", "--json", "--config", config)
    assert listed.exit_code == 0, listed.output
    assert len(json.loads(listed.output.strip().splitlines()[-1])["batches"]) == 1
    assert not (env / "ledger.sqlite").exists()  # BATCH_PAYOUTS_LEDGER's file was never used


def test_sqlite_url_is_a_file(sandbox, env, cli):
    source = write_csv(env / "pagos.csv", [beneficiary(1)])
    target = env / "other.sqlite"
    assert cli("run", source, "--api-base", sandbox.url, "--ledger", f"sqlite:///{target}").exit_code == 0
    assert target.exists()
