"""Shared fixtures: a real sandbox on loopback, an isolated ledger, and the real CLI."""

from __future__ import annotations

import csv
import signal
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from batch_payouts.cli.main import main
from batch_payouts.sandbox import Sandbox

API_KEY = "key_test_RECOGNIZABLE_e2e_secret_4242"


@pytest.fixture
def sandbox():
    with Sandbox() as server:
        yield server


@pytest.fixture
def env(tmp_path, monkeypatch):
    """The environment a user sets: the key, and a ledger of this test's own."""
    monkeypatch.setenv("CONEKTA_API_KEY", API_KEY)
    monkeypatch.setenv("BATCH_PAYOUTS_LEDGER", str(tmp_path / "ledger.sqlite"))
    monkeypatch.delenv("CONEKTA_API_BASE", raising=False)
    monkeypatch.delenv("BATCH_PAYOUTS_LANG", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL cluster for the whole session (tests/pg_cluster.py); skips without one."""
    from pg_cluster import start_for_tests

    cluster = start_for_tests()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_engine(request):
    """Run the test once per ledger engine."""
    return request.param


@pytest.fixture
def ledger_location(ledger_engine, tmp_path, request):
    """This test's own ledger on the engine of ``ledger_engine``: a file path, or the URL of a
    fresh PostgreSQL database (with its tables) in the session's cluster."""
    if ledger_engine == "sqlite":
        return tmp_path / "ledger.sqlite"
    return request.getfixturevalue("pg_cluster").new_database()


@pytest.fixture
def engine_env(env, ledger_location, monkeypatch):
    """``env`` with its ledger on each engine in turn: ``BATCH_PAYOUTS_LEDGER`` names
    ``ledger_location`` (a file in the test's folder, or a fresh PostgreSQL database), which is returned."""
    monkeypatch.setenv("BATCH_PAYOUTS_LEDGER", str(ledger_location))
    return ledger_location


def another_systems_order(sandbox):
    """An order of the same account that no batch of this ledger created (say, another system's)."""
    from batch_payouts.payout.conekta import ClientConfig, ConektaClient

    with ConektaClient(ClientConfig(api_key=API_KEY, api_base=sandbox.url)) as client:
        customer = client.create_customer({"name": "Otra Persona", "email": "otra@ejemplo.mx",
                                           "phone": "5511112222"}, "other-customer")
        order = client.create_payout_order({
            "currency": "MXN", "amount": 5000, "customer_info": {"customer_id": customer["id"]},
            "allowed_payout_methods": ["cashout"], "payout": {"payout_method": {"type": "cashout"}},
            "reason": "Otro sistema", "metadata": {"row_key": "not-ours"}}, "other-order")
    return order


def ledger_select(location, sql: str, params: tuple = ()) -> list[dict]:
    """What a command wrote, read back on either engine (``?`` placeholders): a list of dicts."""
    from batch_payouts.payout.ledger import Ledger

    with Ledger(location) as ledger:
        return [dict(r) for r in ledger._query(sql, params)]


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def new_ledger(request):
    """A maker of fresh ledgers on one engine, ``new_ledger(folder)``, for tests that need several
    (a property test's examples: hypothesis wants no function-scoped fixture)."""
    if request.param == "sqlite":
        return lambda folder: Path(folder) / "ledger.sqlite"
    cluster = request.getfixturevalue("pg_cluster")
    return lambda folder: cluster.new_database()


@pytest.fixture
def cli():
    """Run the real CLI in-process (click's runner); HTTP still goes over loopback."""

    def invoke(*args: str):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


def write_csv(path: Path, rows: list[dict], *, encoding="utf-8", delimiter=",") -> Path:
    with open(path, "w", newline="", encoding=encoding) as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_xlsx(path: Path) -> list[dict]:
    sheet = openpyxl.load_workbook(path).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    return [dict(zip(header, values)) for values in rows[1:]]


def write_workbook(path: Path, sheets: list[tuple[str, list[list[object]], str]]) -> Path:
    """An .xlsx with the given (title, rows, state) sheets, in order; state is "visible", "hidden"
    or "veryHidden" (how a workbook hides the sheet the payouts are on)."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows, state in sheets:
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
        sheet.sheet_state = state
    workbook.save(path)
    return path


def beneficiary(n: int, **overrides) -> dict:
    row = {
        "nombre": f"Beneficiaria Núñez {n}",
        "correo": f"persona{n}@ejemplo.mx",
        "telefono": f"55{n:08d}",
        "monto": str(10000 + 100 * n),
        "motivo": f"Apoyo {n}",
    }
    row.update(overrides)
    return row


# The first row of a one-worker run (POST 1 creates its customer): the answer to its order (POST 2)
# is lost after the order was created, and the lookup that could settle it (a search) fails:
# nobody can tell whether it exists, so the row ends ``unknown`` and is not sent again.
FIRST_ORDER_IN_DOUBT = {"script": {2: "drop_after_commit"}, "search_error_rate": 1.0}


def run_with_a_row_in_doubt(sandbox, folder: Path, ledger_path: Path):
    """A real run over HTTP whose row 2 (the first data row) may exist at Conekta (``unknown``) and row 3 is created.

    Returns the ``JobResult``; the sandbox's faults are cleared afterwards."""
    from batch_payouts.jobs.load import RunOptions
    from batch_payouts.jobs.run import run_job
    from batch_payouts.sandbox import Faults

    source = write_csv(folder / "pagos.csv", [beneficiary(1), beneficiary(2)])
    sandbox.set_faults(Faults(**FIRST_ORDER_IN_DOUBT))
    try:
        result = run_job(
            RunOptions(input_path=source, ledger_path=ledger_path, api_base=sandbox.url, workers=1,
                       initial_backoff=0.001, max_retries=4),
            environ={"CONEKTA_API_KEY": API_KEY},
        )
    finally:
        sandbox.set_faults(Faults())
    assert list(result.frame["status"]) == ["unknown", "created"]
    assert len(sandbox.payout_orders()) == 2  # the order in doubt does exist: "failed" would invite paying twice
    return result


def all_at_once(count: int, work) -> list[BaseException]:
    """Run ``work(0)`` .. ``work(count - 1)`` on ``count`` threads released together (a barrier), as
    workers racing for one ledger or one file do; returns what they raised, none lost."""
    import threading

    barrier, errors = threading.Barrier(count), []

    def run(n: int) -> None:
        try:
            barrier.wait()
            work(n)
        except BaseException as exc:  # noqa: BLE001 - returned to the test, which asserts on it
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def free_socket():
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class WebServer:
    """The web app under a real uvicorn on a free loopback port, in a thread of the test."""

    def __init__(self, settings) -> None:
        import threading

        import uvicorn

        from batch_payouts.web import create_app

        self.app = create_app(settings)
        self.web = self.app.state.web
        self._socket = free_socket()
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="on"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> "WebServer":
        import time

        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the web server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()


@pytest.fixture
def web_settings(tmp_path, sandbox):
    """Settings of a web app that pays through this test's sandbox with a test key."""
    from batch_payouts.web import WebSettings

    return WebSettings(
        data_dir=tmp_path / "web-data", ledger_path=tmp_path / "ledger.sqlite", api_base=sandbox.url,
        environ={"CONEKTA_API_KEY": API_KEY}, workers=4,
    )


# Folders and modules whose every test is slow: subprocesses killed mid-run, property runs,
# a real browser, whole web sessions and fuzzed subprocesses.  `make test` runs them all.
_SLOW_PLACES = (
    "e2e", "test_web_browser.py", "test_web.py", "test_web_finance.py", "test_security.py", "test_web_team.py", "test_web_browser_team.py",
    "test_web_browser_after.py",
    "test_web_instances.py",
    "test_input_fuzz.py", "test_sandbox_serve.py", "test_disk_full.py",
)
# Single slow tests in otherwise quick modules (pandera's full-depth checks over every kind of cell).
_SLOW_TESTS = ("test_the_table_normalize_builds_passes_pandera_schema_level_checks",)


def pytest_collection_modifyitems(items):
    """Mark the slow places so `pytest -m "not slow"` is the quick inner loop (under a minute)."""
    for item in items:
        if item.originalname in _SLOW_TESTS or any(part in _SLOW_PLACES for part in Path(str(item.fspath)).parts):
            item.add_marker(pytest.mark.slow)


def ctrl_c_reaches_the_child() -> None:
    """``preexec_fn`` for a child a test will send SIGINT (Ctrl-C) to: a shell's background job
    starts with SIGINT ignored, the child would inherit that and never see the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
