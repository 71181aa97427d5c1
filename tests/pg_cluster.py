"""A throwaway PostgreSQL cluster for the tests: Debian's initdb and pg_ctl, in a temporary
directory, on a free loopback port, stopped and deleted at the end of the session.

initdb refuses to run as root, so under root the cluster belongs to the unprivileged
``postgres`` user the Debian package creates (``runuser``).  Each test gets a database of its
own, created from a template that already holds the ledger's tables (``CREATE DATABASE ...
TEMPLATE`` copies files: far faster than migrating again).  No PostgreSQL on this machine
(and no root to install it with scripts/ensure-postgresql): the tests that need it skip,
saying why -- except under CI, where they fail, as the browser tests do.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

TEMPLATE = "ledger_template"


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def unavailable(reason: str):
    """Skip (or, under CI, fail) a test that needs PostgreSQL."""
    message = f"PostgreSQL tests need Debian's postgresql package: {reason} (scripts/ensure-postgresql installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class Cluster:
    """initdb + pg_ctl start on a free port; ``url(db)`` for clients; ``stop()`` removes it all."""

    def __init__(self, *, fsync: bool = False) -> None:
        bindir = _bin_dir()
        if bindir is None:
            unavailable("initdb was not found")
        self.bin = bindir
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                import pwd

                owner = pwd.getpwnam("postgres")
            except KeyError:
                unavailable("running as root and there is no 'postgres' user to run the cluster as")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.root = Path(tempfile.mkdtemp(prefix="bp-pg-"))
        if self.as_user:
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.data = self.root / "data"
        self.port = _free_port()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync",
                  "--no-instructions")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not fsync:  # a throwaway cluster: a power cut loses nothing anyone needs
            options += " -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "-t", "60",
                  "start")

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self.as_user, str(self.bin / tool), *args], capture_output=True, text=True, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}")

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        auth = f"postgres:{password}" if password else "postgres"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def new_database(self, template: str = TEMPLATE) -> str:
        """A fresh database (a copy of ``template``) and its URL."""
        name = "t_" + uuid.uuid4().hex[:16]
        self.sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def password_role(self, name: str, password: str) -> str:
        """A role that must give ``password`` (SCRAM) over TCP, owning an empty database of its own
        (the ledger's tables are made by that role, as on a team's server); returns the database's
        name.  The rest of the cluster stays ``trust``: the line goes before the others."""
        self.sql(f"SET password_encryption = 'scram-sha-256'; CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'")
        database = f"db_{name}"
        self.sql(f'CREATE DATABASE "{database}" OWNER "{name}" TEMPLATE template0')
        hba = self.data / "pg_hba.conf"
        rule = f"host all {name} 127.0.0.1/32 scram-sha-256\n"
        lines = hba.read_text().splitlines(keepends=True)
        hba.write_text(rule + "".join(lines))  # first matching line wins
        self.sql("SELECT pg_reload_conf()")
        return database

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_for_tests() -> Cluster:
    """The session's cluster, with the template every test's database is copied from."""
    cluster = Cluster()
    try:
        cluster.sql(f'CREATE DATABASE "{TEMPLATE}" TEMPLATE template0')
        from batch_payouts.payout.ledger import Ledger

        Ledger(cluster.url(TEMPLATE)).close()  # the tables, once
    except BaseException:
        cluster.stop()
        raise
    return cluster
