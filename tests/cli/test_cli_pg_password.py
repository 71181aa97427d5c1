"""A ledger URL without a password, on a server whose user needs one (SCRAM): the password comes
from where every libpq tool takes it -- PGPASSWORD, ~/.pgpass, a PGSERVICE entry -- and is never
printed, logged or stored.  The real CLI, the real cluster with a ``scram-sha-256`` rule for the
user; HOME, PGPASSFILE and PGSERVICEFILE point at this test's own folder."""

from __future__ import annotations

import json

import pytest

from conftest import beneficiary, write_csv

USER = "pagos_scram"
PASSWORD = "Scram-Secret-6620"


@pytest.fixture(scope="module")
def scram_database(pg_cluster):
    """(cluster, database) for a role that must give PASSWORD; made once per module."""
    return pg_cluster, pg_cluster.password_role(USER, PASSWORD)


@pytest.fixture
def libpq_env(env, monkeypatch):
    """No password source but the one a test sets: HOME is the test's folder (its ~/.pgpass)."""
    for name in ("PGPASSWORD", "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE", "PGUSER", "PGHOST", "PGPORT", "PGDATABASE"):
        monkeypatch.delenv(name, raising=False)
    home = env / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def _ledger_text(cluster, database: str) -> str:
    """Every row of every ledger table as text: where a stored password would show."""
    tables = [r[0] for r in cluster.sql("SELECT tablename FROM pg_tables WHERE schemaname='public'", database)]
    assert "rows" in tables and "batches" in tables
    return "\n".join(str(cluster.sql(f'SELECT row_to_json(t)::text FROM "{name}" t', database)) for name in tables)


def _run_and_read(cli, sandbox, env, url: str) -> list[str]:
    """A run, a rerun, batches, show: what a user sees.  Returns every output and written file's text."""
    source = write_csv(env / "pagos.csv", [beneficiary(n) for n in range(1, 4)])
    first = cli("run", source, "--api-base", sandbox.url, "--ledger", url, "--json")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.output.strip().splitlines()[-1])
    outputs = [first.output]
    for command in (("run", source, "--api-base", sandbox.url), ("batches", "--json"), ("show", summary["batch_id"][:12])):
        done = cli(*command, "--ledger", url)
        assert done.exit_code == 0, done.output
        outputs.append(done.output)
    outputs += [path.read_text(encoding="utf-8", errors="replace") for path in env.rglob("*.jsonl")]
    return outputs


@pytest.mark.parametrize("source", ["PGPASSWORD", "pgpass", "PGSERVICE"])
def test_a_url_without_password_connects_with_what_libpq_reads_and_never_shows_it(
        source, scram_database, libpq_env, sandbox, env, cli, monkeypatch):
    cluster, database = scram_database
    cluster.sql(f'DROP OWNED BY "{USER}"', database)  # each case starts from an empty database
    url = f"postgresql://{USER}@127.0.0.1:{cluster.port}/{database}"
    if source == "PGPASSWORD":
        monkeypatch.setenv("PGPASSWORD", PASSWORD)
    elif source == "pgpass":
        pgpass = libpq_env / ".pgpass"
        pgpass.write_text(f"127.0.0.1:{cluster.port}:{database}:{USER}:{PASSWORD}\n")
        pgpass.chmod(0o600)  # libpq ignores a password file others can read
    else:
        services = env / "pg_service.conf"
        services.write_text(f"[pagos]\nhost=127.0.0.1\nport={cluster.port}\ndbname={database}\nuser={USER}\n"
                            f"password={PASSWORD}\n")
        monkeypatch.setenv("PGSERVICEFILE", str(services))
        url = "postgresql:///?service=pagos"

    outputs = _run_and_read(cli, sandbox, env, url)
    assert len(sandbox.payout_orders()) == 3  # and the rerun sent nothing: one shared record
    assert all(PASSWORD not in text for text in outputs)
    assert PASSWORD not in _ledger_text(cluster, database)


def test_a_wrong_password_is_a_clear_refusal_that_does_not_repeat_it(scram_database, libpq_env, sandbox, env, cli, monkeypatch):
    cluster, database = scram_database
    monkeypatch.setenv("PGPASSWORD", "Not-The-Password-1234")
    source = write_csv(env / "pagos.csv", [beneficiary(1)])
    done = cli("run", source, "--api-base", sandbox.url, "--ledger", f"postgresql://{USER}@127.0.0.1:{cluster.port}/{database}")
    assert done.exit_code != 0
    assert "Traceback" not in done.output and "Not-The-Password-1234" not in done.output
    assert "password authentication failed" in done.output or "contraseña" in done.output
    assert sandbox.payout_orders() == []
