"""A config file's table for one command is left alone by the others (``cli/config.py``).

Commands are loaded lazily, so the one running may not know the command a table is for: the
nightly file's ``[notify]`` table (SMTP settings) must not stop ``validate``, ``run`` or
``status``; the ``notify`` command itself still refuses a key it does not know.
"""

from __future__ import annotations

import click
import pytest

from batch_payouts.cli.config import defaults_for
from batch_payouts.errors import BatchError
from conftest import beneficiary, write_csv

NOTIFY_TABLE = ('[notify]\nsmtp-host = "smtp.empresa.mx"\nsmtp-port = 2525\nstarttls = false\n'
                'from = "pagos@empresa.mx"\nto = "finanzas@empresa.mx"\n')


def _command(name: str, *options: str) -> click.Command:
    return click.Command(name, params=[click.Option([f"--{o}"]) for o in options])


def test_a_table_of_a_command_not_loaded_yet_is_accepted_and_not_applied():
    run = _command("run", "workers")
    config = {"workers": 4, "notify": {"smtp-host": "smtp.empresa.mx", "to": "a@b.mx"}}
    assert defaults_for(run, config, "nightly.toml", {"run": run}, {"notify"}) == {"workers": 4}
    with pytest.raises(BatchError) as refused:  # a table named after no command at all is still refused
        defaults_for(run, {"notfy": {"to": "a@b.mx"}}, "nightly.toml", {"run": run}, {"notify"})
    assert "notfy" in refused.value.message("en")


def test_the_notify_table_is_read_by_notify_and_ignored_by_validate(env, cli, sandbox):
    config = env / "nightly.toml"
    config.write_text('lang = "en"\n' + NOTIFY_TABLE, encoding="utf-8")
    source = write_csv(env / "pagos.csv", [beneficiary(1)])
    validated = cli("validate", source, "--config", config)
    assert validated.exit_code == 0, validated.output

    config.write_text(NOTIFY_TABLE + 'smtp-pasword = "x"\n', encoding="utf-8")
    refused = cli("notify", "--config", config)
    assert refused.exit_code == 2 and "smtp-pasword" in refused.output
