"""Security promises: the key stays secret, no live formulas, no clear-text key on a network,
and TLS verification cannot be switched off from outside."""

from __future__ import annotations

import base64
import csv
import http.server
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import openpyxl
import pytest

from batch_payouts.payout.conekta import ClientConfig, ConektaClient, ConektaError
from batch_payouts.sandbox import Faults, Sandbox
from conftest import API_KEY, beneficiary, write_csv

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
SECRET_FORMS = [API_KEY.encode(), base64.b64encode(f"{API_KEY}:".encode()), API_KEY.encode("utf-16-le")]


def _cli(*args, env_extra=None, cwd=None, timeout=120):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONEKTA_", "BATCH_PAYOUTS_"))}
    env.update({"CONEKTA_API_KEY": API_KEY, **(env_extra or {})})
    return subprocess.run([sys.executable, "-m", "batch_payouts", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def _start(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONEKTA_", "BATCH_PAYOUTS_"))}
    env.update({"CONEKTA_API_KEY": API_KEY, **(env_extra or {})})
    return subprocess.Popen([sys.executable, "-m", "batch_payouts", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _assert_no_secret(text_or_bytes, where):
    data = text_or_bytes.encode() if isinstance(text_or_bytes, str) else text_or_bytes
    for form in SECRET_FORMS:
        assert form not in data, f"the API key leaked into {where}"


def _assert_no_secret_in_files(folder: Path):
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    for path in files:
        _assert_no_secret(path.read_bytes(), path)


# -- the key never leaks ---------------------------------------------------------------
def test_api_key_never_appears_in_output_sheets_ledger_wal_audit_or_sandbox_state(tmp_path):
    state = tmp_path / "sandbox-state.sqlite"
    ledger = tmp_path / "ledger.sqlite"
    rows = [beneficiary(n) for n in range(1, 9)] + [beneficiary(9, correo="mal")]
    source = write_csv(tmp_path / "pagos.csv", rows)
    streams = []
    faults = Faults(error_rate=0.1, drop_after_commit_rate=0.1, html_502_rate=0.05, truncated_json_rate=0.05,
                    latency_ms=20, seed=3)
    with Sandbox(faults=faults, state_path=state) as sandbox:
        # 1) killed mid-batch: the ledger's -wal and -shm are left behind as a crash leaves them
        victim = _start("run", source, "--api-base", sandbox.url, "--workers", "2",
                        env_extra={"BATCH_PAYOUTS_LEDGER": str(ledger)})
        deadline = time.monotonic() + 60
        while not any(r["method"] == "POST" for r in sandbox.request_log) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        victim.send_signal(signal.SIGKILL)
        streams += list(victim.communicate())
        wal = Path(str(ledger) + "-wal")
        assert wal.exists() and wal.stat().st_size > 0, "expected a WAL left by the killed run"
        _assert_no_secret(wal.read_bytes(), wal)
        _assert_no_secret_in_files(tmp_path)
        # 2) reruns with every kind of output: xlsx, csv, JSON logs, JSON summary, dry run, validate
        for extra in (["--output", tmp_path / "r.xlsx"], ["--log-json", "--json"], ["--dry-run", "--json"]):
            done = _cli("run", source, "--api-base", sandbox.url, "--workers", "3", *extra,
                        env_extra={"BATCH_PAYOUTS_LEDGER": str(ledger)})
            streams += [done.stdout, done.stderr]
        validated = _cli("validate", source, "--log-json")
        streams += [validated.stdout, validated.stderr]
        # 3) the key refused mid-batch: error messages are the likeliest place to echo it
        sandbox.set_faults(Faults(revoke_after_requests=2))
        other = write_csv(tmp_path / "otros.csv", [beneficiary(n) for n in range(20, 24)])
        done = _cli("run", other, "--api-base", sandbox.url, "--log-json",
                    env_extra={"BATCH_PAYOUTS_LEDGER": str(ledger)})
        assert done.returncode == 2
        streams += [done.stdout, done.stderr]
        # 4) a malformed key the server refuses outright
        done = _cli("run", other, "--api-base", sandbox.url, env_extra={
            "BATCH_PAYOUTS_LEDGER": str(tmp_path / "l2.sqlite"), "CONEKTA_API_KEY": API_KEY + " x"})
        assert done.returncode == 2
        streams += [done.stdout, done.stderr]
        # 5) the sandbox's own view over HTTP
        import requests

        streams.append(requests.get(f"{sandbox.url}/_sandbox/state", timeout=5).text)
        streams.append(requests.get(f"{sandbox.url}/_sandbox/requests", timeout=5).text)
        assert len(sandbox.payout_orders()) == 8
    assert any("created" in s or "creadas" in s for s in streams)
    for number, text in enumerate(streams):
        _assert_no_secret(text, f"stream #{number}")
    assert (tmp_path / "r.xlsx").exists() and (tmp_path / "pagos.results.xlsx").exists()
    assert state.exists()
    _assert_no_secret_in_files(tmp_path)


def test_the_key_is_not_in_the_client_config_repr():
    config = ClientConfig(api_key=API_KEY, api_base="https://api.conekta.io")
    assert API_KEY not in repr(config)
    with ConektaClient(config) as client:
        assert API_KEY not in repr(client.__dict__.get("config"))


# -- no live formulas -------------------------------------------------------------------
HOSTILE = [
    "=HYPERLINK(\"http://evil.example\",\"clic\")",
    "+52 1 55 1234",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "=1+1",
]


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("out_ext", [".xlsx", ".csv"])
def test_cells_that_look_like_formulas_are_never_live_formulas(tmp_path, command, out_ext):
    rows = []
    for n, evil in enumerate(HOSTILE, start=1):
        rows.append(beneficiary(n, nombre=evil + f" {n}", motivo=(evil[:30] + f" {n}"), nota=evil,
                                meta_origen=evil))
    rows.append(beneficiary(50, correo="=cmd|' /C calc'!A0", monto="-1+1", nota="@x"))  # invalid: shown, not run
    source = write_csv(tmp_path / "pagos.csv", rows)
    output = tmp_path / f"resultados{out_ext}"
    with Sandbox() as sandbox:
        args = [command, source, "--output", output, "--log-json"]
        if command == "run":
            args += ["--api-base", sandbox.url]
        done = _cli(*args, env_extra={"BATCH_PAYOUTS_LEDGER": str(tmp_path / "ledger.sqlite")})
        assert done.returncode == 1, done.stdout + done.stderr
        if command == "run":
            assert len(sandbox.payout_orders()) == len(HOSTILE)
    if out_ext == ".xlsx":
        book = openpyxl.load_workbook(output)
        seen_hostile = 0
        for sheet in book.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", f"{sheet.title}!{cell.coordinate} is a formula: {cell.value!r}"
                    if isinstance(cell.value, str) and cell.value.startswith(FORMULA_PREFIXES):
                        assert cell.data_type == "s"
                        seen_hostile += 1
        assert seen_hostile >= 3 * len(HOSTILE) - 2  # name, reason, nota (CR becomes a line break)
        main_sheet = book.worksheets[0]
        header = [c.value for c in main_sheet[1]]
        notes = [main_sheet.cell(row=r, column=header.index("nota") + 1).value for r in range(2, len(HOSTILE) + 2)]
        assert notes[0] == HOSTILE[0] and notes[4] == "\t=1+1"
    else:
        with open(output, encoding="utf-8-sig", newline="") as handle:
            lines = list(csv.reader(handle))
        header = lines[0]
        for line in lines[1:]:
            for name, cell in zip(header, line):
                if cell.startswith(FORMULA_PREFIXES):
                    assert re.fullmatch(r"-?\d+", cell), f"{name}: live formula in CSV: {cell!r}"
        notes = [line[header.index("nota")] for line in lines[1:]]
        assert notes[: len(HOSTILE)] == ["'" + h for h in HOSTILE]
        assert lines[-1][header.index("monto")] == "'-1+1"


def test_formula_cells_of_an_xlsx_input_come_out_as_text(tmp_path, monkeypatch):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["nombre", "correo", "monto", "motivo", "nota"])
    sheet.append(["Ana", "ana@ejemplo.mx", 10000, "Pago", "=1+1"])
    sheet.append(["Beto", "mal", 10000, "Pago", '=HYPERLINK("http://evil.example")'])
    source = tmp_path / "pagos.xlsx"
    book.save(source)
    done = _cli("validate", source)
    assert done.returncode == 1, done.stderr
    out = openpyxl.load_workbook(tmp_path / "pagos.results.xlsx")
    for ws in out.worksheets:
        assert all(cell.data_type != "f" for row in ws.iter_rows() for cell in row)


# -- no clear text to a network -----------------------------------------------------------
def _outbound_ip() -> str | None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))  # no packet is sent: it only picks the interface
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.mark.parametrize("base", [
    "http://api.conekta.io", "http://10.255.255.1:9", "http://0.0.0.0:9", "http://127.0.0.1.nip.io",
    "http://localhost.example.com", "http://[::ffff:10.0.0.1]:9", "http://user:pw@api.conekta.io",
    "ftp://127.0.0.1", "file:///etc/passwd", "api.conekta.io", "http://",
])
def test_plain_http_to_a_non_loopback_host_is_refused_with_exit_2_before_any_request(tmp_path, base, cli, env):
    source = write_csv(tmp_path / "pagos.csv", [beneficiary(1)])
    started = time.monotonic()
    result = cli("run", source, "--api-base", base)
    assert result.exit_code == 2, result.output
    assert "https" in result.output
    assert time.monotonic() - started < 5  # refused, not timed out trying to connect
    assert not (tmp_path / "pagos.results.xlsx").exists()


def test_plain_http_to_this_machines_lan_address_sends_nothing(tmp_path, cli, env, monkeypatch):
    """A real server on the LAN address sees no request at all: the refusal comes before the network."""
    address = _outbound_ip()
    if address is None:
        pytest.skip("no non-loopback interface on this machine")
    with Sandbox(host="0.0.0.0") as sandbox:
        source = write_csv(tmp_path / "pagos.csv", [beneficiary(1)])
        url = f"http://{address}:{sandbox.port}"
        result = cli("run", source, "--api-base", url)
        assert result.exit_code == 2 and "https" in result.output
        monkeypatch.setenv("CONEKTA_API_BASE", url)  # the same through the environment variable
        result = cli("run", source)
        assert result.exit_code == 2 and "https" in result.output
        assert sandbox.request_log == []


# -- TLS verification cannot be switched off ------------------------------------------------
DISABLING_ENV = {
    "CURL_CA_BUNDLE": "", "REQUESTS_CA_BUNDLE": "", "PYTHONHTTPSVERIFY": "0",
    "HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "SSL_CERT_DIR": "",
}


def test_environment_variables_do_not_turn_off_verify(monkeypatch, tmp_path):
    """The client talks through urllib3's pool (issue 17), which reads no environment: no proxy, no CA
    bundle, no switch turns verification off; the certificate is always checked against certifi's."""
    import certifi

    rogue = tmp_path / "rogue.pem"  # a CA bundle path in the environment (a rogue CA) is not picked up
    rogue.write_text("not a CA", encoding="utf-8")
    for name, value in {**DISABLING_ENV, "REQUESTS_CA_BUNDLE": str(rogue), "SSL_CERT_FILE": str(rogue)}.items():
        monkeypatch.setenv(name, value)
    with ConektaClient(ClientConfig(api_key=API_KEY, api_base="https://api.conekta.io")) as client:
        pool = client._pool
        assert pool.scheme == "https" and pool.host == "api.conekta.io"
        assert pool.cert_reqs == "CERT_REQUIRED"
        assert pool.ca_certs == certifi.where()
        assert pool.proxy is None  # HTTPS_PROXY is not obeyed: the money goes straight to Conekta


def test_no_cli_option_or_config_key_disables_verification(cli, env, tmp_path, monkeypatch):
    run_help = cli("run", "--help").output.lower()
    for word in ("insecure", "verify", "no-verify", "ca-bundle", "cacert", "ssl", "tls", "certificate"):
        assert word not in run_help, word
    source = write_csv(tmp_path / "pagos.csv", [beneficiary(1)])
    for flag in ("--insecure", "--no-verify", "--verify=false", "-k", "--no-ssl-verify"):
        result = cli("run", source, flag)
        assert result.exit_code == 2 and "No such option" in result.output, flag
    config = tmp_path / "c.toml"
    for key in ("verify = false", "insecure = true", "[run]\nverify = false"):
        config.write_text(key + "\n", encoding="utf-8")
        result = cli("run", source, "--config", config, "--api-base", "https://127.0.0.1:9")
        assert result.exit_code == 2, result.output


@pytest.fixture
def self_signed_tls_server(tmp_path):
    """An HTTPS server on loopback with a self-signed certificate; records any request that gets through."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not available to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append(self.path)
            body = b'{"available": [{"amount": 999999999, "currency": "MXN"}], "object": "balance"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = Server(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_self_signed_certificate_is_refused_in_process(self_signed_tls_server, monkeypatch):
    url, seen = self_signed_tls_server
    for name, value in DISABLING_ENV.items():
        monkeypatch.setenv(name, value)
    with ConektaClient(ClientConfig(api_key=API_KEY, api_base=url, max_retries=0)) as client:
        with pytest.raises(ConektaError) as caught:
            client.get_balance()
    assert "TLS" in caught.value.message or "SSL" in caught.value.message
    assert seen == []


def test_a_self_signed_certificate_is_refused_by_the_cli_whatever_the_environment(self_signed_tls_server, tmp_path):
    url, seen = self_signed_tls_server
    source = write_csv(tmp_path / "pagos.csv", [beneficiary(1)])
    done = _cli("run", source, "--api-base", url, env_extra={
        **{k: v for k, v in DISABLING_ENV.items() if "proxy" not in k.lower()},
        "BATCH_PAYOUTS_LEDGER": str(tmp_path / "ledger.sqlite"),
    })
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert seen == [], "a request got through TLS with an untrusted certificate"
    _assert_no_secret(done.stdout + done.stderr, "output")


def test_a_tls_failure_is_not_retried(self_signed_tls_server):
    """A certificate that fails verification fails the same way every time: no retry budget spent on it."""
    url, _seen = self_signed_tls_server
    calls = []
    config = ClientConfig(api_key=API_KEY, api_base=url, max_retries=4)
    with ConektaClient(config, on_call=calls.append, sleep=lambda s: pytest.fail("slept before a retry")) as client:
        with pytest.raises(ConektaError) as caught:
            client.get_balance()
    assert caught.value.type == "tls_error"
    assert len(calls) == 1
