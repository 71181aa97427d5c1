"""Where the ledger is: a SQLite file (a path or ``sqlite:///path``, the default) or a PostgreSQL
database (``postgresql://user@host:port/dbname``) that several hosts and web instances share.

One place reads the ``--ledger`` option, ``BATCH_PAYOUTS_LEDGER`` and the config file's
``ledger`` the same way, and one place masks a password written in a URL, so no message, log
or ``show`` output ever prints it.  Standard library only: the command line reads an address
without loading SQLAlchemy (tests/test_import_cost.py).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import click

LEDGER_ENV = "BATCH_PAYOUTS_LEDGER"
_SERVER_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")
_SQLITE_SCHEME = "sqlite:///"
# user:password@ in the authority, and password=... in a query string or a key=value conninfo
_URL_PASSWORD = re.compile(r"(?P<head>://[^/@:?#]*:)(?P<secret>[^/@?#]*)(?P<tail>@)")
_PARAM_PASSWORD = re.compile(r"(?P<head>(?:^|[?&\s])password=)(?P<secret>[^&\s]*)", re.IGNORECASE)

Location = Path | str  # a SQLite file's path, or a PostgreSQL URL (a str)


def is_server(location: Location | None) -> bool:
    """Whether this names a PostgreSQL database rather than a SQLite file."""
    return isinstance(location, str) and location.lower().startswith(_SERVER_SCHEMES)


def resolve(value: str | Path | None) -> Location:
    """The ledger a command uses: the option's value, else ``BATCH_PAYOUTS_LEDGER``, else the
    file in the user's data folder.  A PostgreSQL URL is kept as text (libpq reads it, with
    PGPASSWORD, ~/.pgpass and PGSERVICE); ``sqlite:///path`` and a bare path are a file."""
    if value is None or (isinstance(value, str) and not value.strip()):
        value = os.environ.get(LEDGER_ENV, "").strip() or None
    if value is None:
        from platformdirs import user_data_path

        return user_data_path("batch-payouts", appauthor=False) / "ledger.sqlite"
    if isinstance(value, Path):
        return value.expanduser()
    text = value.strip()
    if text.lower().startswith(_SERVER_SCHEMES):
        return "postgresql://" + text.split("://", 1)[1]  # libpq's own spelling, whatever was typed
    if text.lower().startswith(_SQLITE_SCHEME):
        return Path(text[len(_SQLITE_SCHEME) - 1:]).expanduser()  # sqlite:////abs and sqlite:///rel
    return Path(text).expanduser()


def exists(location: Location) -> bool:
    """A file ledger exists once a run wrote it; a database is assumed there (opening it says
    clearly when it is not)."""
    return True if is_server(location) else Path(location).exists()


def masked(text: object) -> str:
    """``text`` with any password written in a connection string replaced by ``***``."""
    out = _URL_PASSWORD.sub(lambda m: m["head"] + "***" + m["tail"], str(text))
    return _PARAM_PASSWORD.sub(lambda m: m["head"] + "***", out)


def display(location: Location) -> str:
    """How messages name the ledger: the file's path, or the URL without its password."""
    return masked(location)


def shown(location: Location) -> Location:
    """A file stays its path; a URL becomes its masked text (what results and summaries carry)."""
    return location if isinstance(location, Path) else display(location)


def local_anchor(location: Location) -> Path:
    """A path on this host that stands for the ledger, for the files kept beside it (the
    ``--sandbox`` emulator's state).  A database gets one per URL in the user's data folder."""
    if not is_server(location):
        return Path(location)
    from platformdirs import user_data_path

    tag = hashlib.sha256(masked(location).encode()).hexdigest()[:12]
    return user_data_path("batch-payouts", appauthor=False) / f"postgresql-{tag}.ledger"


class LedgerParam(click.ParamType):
    """``--ledger``: a file path, ``sqlite:///path`` or ``postgresql://user@host:port/dbname``."""

    name = "LEDGER"

    def convert(self, value, param, ctx):  # noqa: ANN001 - click's signature
        if value is None or isinstance(value, Path):
            return value
        return resolve(str(value))

    def get_metavar(self, param, ctx=None):  # noqa: ANN001 - click's signature
        return "PATH|URL"
