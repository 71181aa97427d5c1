"""The client against the real HTTP sandbox: typed errors, and no POST resent before a lookup.

An account that ignores the Idempotency-Key creates a second order for every
resent POST, so the only safe retry of a POST that may have executed is the
one a lookup allows.  Each test counts the orders the sandbox really holds and
reads its request log to see what the client sent.
"""

from __future__ import annotations

import pytest

from batch_payouts.payout.conekta import (
    ClientConfig,
    ConektaClient,
    OutcomeUnknown,
    RateLimited,
    Refused,
    Unavailable,
)
from batch_payouts.sandbox import Faults, Sandbox
from conftest import API_KEY, free_socket

ROW = {"batch_id": "b-1", "row_key": "h:abc.1"}


def client(url: str, **config) -> ConektaClient:
    settings = {"initial_backoff": 0.001, "read_timeout": 2.0, "max_retries": 4, **config}
    return ConektaClient(ClientConfig(api_key=API_KEY, api_base=url, **settings), sleep=lambda _s: None)


def order_body(customer_id: str, **metadata) -> dict:
    return {
        "currency": "MXN", "amount": 10_000, "customer_info": {"customer_id": customer_id},
        "allowed_payout_methods": ["cashout"], "payout": {"payout_method": {"type": "cashout"}},
        "reason": "Apoyo", "metadata": {**ROW, **metadata},
    }


def posts(sandbox: Sandbox, path: str = "/payout_orders") -> list[dict]:
    return [r for r in sandbox.request_log if r["method"] == "POST" and r["path"] == path]


def searches(sandbox: Sandbox, path: str = "/payout_orders") -> list[dict]:
    return [r for r in sandbox.request_log if r["method"] == "GET" and r["path"] == path]


@pytest.fixture
def sandbox():
    with Sandbox() as server:
        yield server


@pytest.fixture
def customer_id(sandbox):
    with client(sandbox.url) as c:
        return c.create_customer({"name": "Ana", "email": "ana@ejemplo.mx"}, "cus-key")["id"]


@pytest.mark.parametrize("fault", ["drop_after_commit", "error_500_after_commit", "truncated_json", "conflict_409"])
def test_a_post_that_may_have_executed_is_looked_up_not_resent(sandbox, customer_id, fault):
    sandbox.set_faults(Faults(ignore_idempotency_key=True, script={1: fault}))
    with client(sandbox.url) as c:
        order = c.create_payout_order(order_body(customer_id), "order-key")
    [stored] = sandbox.payout_orders()
    assert order["id"] == stored["id"]
    assert len(posts(sandbox)) == 1  # found by the lookup: never sent a second time
    assert len(searches(sandbox)) == 1


def test_a_stalled_answer_is_looked_up_not_resent(sandbox, customer_id):
    sandbox.set_faults(Faults(ignore_idempotency_key=True, script={1: "stall_after_commit"}, stall_seconds=1.0))
    with client(sandbox.url, read_timeout=0.2) as c:
        order = c.create_payout_order(order_body(customer_id), "order-key")
    assert [o["id"] for o in sandbox.payout_orders()] == [order["id"]]
    assert len(posts(sandbox)) == 1


def test_when_the_lookup_cannot_answer_the_post_ends_in_doubt_and_is_not_resent(sandbox, customer_id):
    sandbox.set_faults(Faults(ignore_idempotency_key=True, script={1: "drop_after_commit"}, search_error_rate=1.0))
    with client(sandbox.url) as c, pytest.raises(OutcomeUnknown) as raised:
        c.create_payout_order(order_body(customer_id), "order-key")
    error = raised.value
    assert (error.operation, error.idempotency_key) == ("payout_order", "order-key")  # set when built
    assert error.in_doubt and not error.stops_batch
    assert len(posts(sandbox)) == 1 and len(sandbox.payout_orders()) == 1


def test_a_5xx_before_anything_is_resent_once_the_lookup_says_it_does_not_exist(sandbox, customer_id):
    sandbox.set_faults(Faults(ignore_idempotency_key=True, script={1: "error_503"}))
    with client(sandbox.url) as c:
        order = c.create_payout_order(order_body(customer_id), "order-key")
    assert [o["id"] for o in sandbox.payout_orders()] == [order["id"]]
    kinds = [(r["method"], r["status"]) for r in sandbox.request_log if r["path"] == "/payout_orders"]
    assert kinds == [("POST", 503), ("GET", 200), ("POST", 200)]


def test_a_429_is_resent_without_a_lookup(sandbox, customer_id):
    sandbox.set_faults(Faults(ignore_idempotency_key=True, script={1: "throttle"}, retry_after_seconds=0))
    with client(sandbox.url) as c:
        c.create_payout_order(order_body(customer_id), "order-key")
    assert [(r["method"], r["status"]) for r in sandbox.request_log if r["path"] == "/payout_orders"] == [
        ("POST", 429), ("POST", 200)]


def test_every_5xx_is_in_doubt_after_the_budget_and_the_last_lookup(sandbox, customer_id):
    sandbox.set_faults(Faults(script={n: "error_500" for n in range(1, 10)}))
    with client(sandbox.url, max_retries=2) as c, pytest.raises(OutcomeUnknown):
        c.create_payout_order(order_body(customer_id), "order-key")
    assert sandbox.payout_orders() == []
    assert len(posts(sandbox)) == 3 and len(searches(sandbox)) == 3  # a lookup before each resend and at the end


def test_a_customer_whose_answer_was_lost_is_found_by_email(sandbox):
    sandbox.set_faults(Faults(ignore_idempotency_key=True, script={1: "drop_after_commit"}))
    with client(sandbox.url) as c:
        customer = c.create_customer({"name": "Ana", "email": "Ana@Ejemplo.mx"}, "cus-key")
    assert [x["id"] for x in sandbox.customers()] == [customer["id"]]
    assert len(posts(sandbox, "/customers")) == 1


def test_a_refusal_is_typed_with_conekta_code_param_and_message(sandbox, customer_id):
    body = {**order_body(customer_id), "amount": 10_050}  # not whole pesos
    with client(sandbox.url, lang="en") as c, pytest.raises(Refused) as raised:
        c.create_payout_order(body, "order-key")
    error = raised.value
    assert (error.http_status, error.type, error.param) == (422, "parameter_validation_error", "amount")
    assert error.code and error.message and error.log_id and error.operation == "payout_order"
    assert len(posts(sandbox)) == 1 and not error.in_doubt


def test_a_refused_connection_is_unavailable_not_in_doubt():
    sock = free_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()  # nobody listens there: the connection is refused
    with client(url, max_retries=1) as c, pytest.raises(Unavailable) as raised:
        c.create_payout_order(order_body("cus_x"), "order-key")
    assert not raised.value.in_doubt and not isinstance(raised.value, RateLimited)


def _self_signed(folder) -> tuple[str, str]:
    """A certificate for localhost that no CA vouches for (cryptography, a dependency already)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_an_untrusted_certificate_is_unavailable_before_anything_is_sent(tmp_path):
    """The certificate is always verified (urllib3's pool with certifi's bundle): a server no CA
    vouches for fails in the handshake, before the request leaves, so it is not in doubt."""
    import socket
    import ssl
    import threading

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*_self_signed(tmp_path))
    server = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    received.append(tls.recv(1024))
            except (ssl.SSLError, OSError):
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        with client(f"https://localhost:{server.getsockname()[1]}", max_retries=1) as c, \
                pytest.raises(Unavailable) as raised:
            c.create_payout_order(order_body("cus_x"), "order-key")
    finally:
        server.close()
    assert raised.value.type == "tls_error" and not raised.value.in_doubt and not received


def test_an_order_answered_without_reference_is_read_again_until_it_has_one(sandbox, customer_id):
    sandbox.set_faults(Faults(script={1: "null_reference"}, reference_delay_gets=1))
    with client(sandbox.url) as c:
        order = c.create_payout_order(order_body(customer_id), "order-key")
        assert order["reference"] is None
        settled = c.await_reference(order, tries=3)
    assert settled["reference"] == sandbox.payout_orders()[0]["reference"]
    assert len([r for r in sandbox.request_log if r["path"] == f"/payout_orders/{order['id']}"]) == 2


def test_a_post_leaves_in_one_send_headers_and_body_together(sandbox):
    """Fewer system calls per request (issue 17): the headers and the JSON body go out in one
    ``send``; the server reads the same request as before (a customer made from the body)."""
    sends: list[bytes] = []
    with client(sandbox.url) as c:
        base = c._pool.ConnectionCls

        class Counting(base):  # the connection the client really uses, its sends recorded
            def send(self, data):
                sends.append(bytes(data))
                return super().send(data)

        c._pool.ConnectionCls = Counting
        made = c.create_customer({"name": "Ana Núñez", "email": "ana@ejemplo.mx"}, "cus-key")
        assert c.get_customer(made["id"])["name"] == "Ana Núñez"
    assert len(sends) == 2, "one send for the POST, one for the GET"
    head, _, body = sends[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /customers HTTP/1.1\r\n")
    assert f"Content-Length: {len(body)}".encode() in head and b"Idempotency-Key: cus-key" in head
    lines = head.split(b"\r\n")[1:]  # every header once: the fixed ones (encoded once), then the request's own
    assert sorted(line.split(b":")[0] for line in lines) == sorted([
        b"Host", b"Accept", b"Accept-Encoding", b"Content-Type", b"Accept-Language", b"User-Agent", b"Authorization",
        b"Idempotency-Key", b"Content-Length"])
    assert body.decode() == '{"name":"Ana Núñez","email":"ana@ejemplo.mx"}'
    assert [r["method"] for r in sandbox.request_log] == ["POST", "GET"]


def test_an_intents_stored_text_is_the_body_sent_as_it_is(sandbox, tmp_path):
    """A run sends an intent's stored text (``Intent.request_text``), not the body encoded again:
    the bytes of the first request are those of every resend."""
    from batch_payouts.payout.ledger import Ledger

    sends: list[bytes] = []
    with Ledger(tmp_path / "ledger.sqlite") as ledger, client(sandbox.url) as c:
        ledger.record_batch_start(batch_id="b1", input_name="in.csv", input_sha256="0" * 64, key_fp="k",
                                  api_base=sandbox.url, rows_total=1)
        ledger.ensure_row(batch_id="b1", row_key="x:1", row_number=2, email="ana@ejemplo.mx", amount=1,
                          currency="MXN", reason="r", payout_fingerprint="fp")
        intent = ledger.begin_intent(batch_id="b1", row_key="x:1", operation="customer", idempotency_key="cus-k",
                                     body={"name": "Ana Núñez", "email": "ana@ejemplo.mx"})
        base = c._pool.ConnectionCls

        class Counting(base):
            def send(self, data):
                sends.append(bytes(data))
                return super().send(data)

        c._pool.ConnectionCls = Counting
        c.create_customer(intent.request_body, "cus-k", intent.request_text)
        stored = ledger._query("SELECT request_body FROM intents WHERE idempotency_key='cus-k'")[0][0]
    assert intent.request_text == stored == '{"email":"ana@ejemplo.mx","name":"Ana Núñez"}'
    assert sends[0].partition(b"\r\n\r\n")[2] == stored.encode()


def test_a_sockets_timeout_is_set_only_when_it_changes(sandbox):
    """Two POSTs on one kept connection set the socket's timeout once (its first answer's read
    timeout): ``settimeout`` is a system call even when nothing changes (issue 17)."""
    import socket

    from batch_payouts.payout.one_send import _quiet_timeouts

    changes: list[float | None] = []
    with client(sandbox.url) as c:
        base = c._pool.ConnectionCls

        class Watching(base):  # the client's own connection class; its socket's timeouts recorded
            def connect(self):
                super().connect()
                quiet = type(self.sock)

                class Recording(quiet):
                    __slots__ = ()

                    def settimeout(self, value):
                        if value != self.gettimeout():
                            changes.append(value)
                        super().settimeout(value)

                self.sock.__class__ = Recording

        c._pool.ConnectionCls = Watching
        made = c.create_customer({"name": "Ana", "email": "ana@ejemplo.mx"}, "cus-1")
        c.create_customer({"name": "Bea", "email": "bea@ejemplo.mx"}, "cus-2")
        assert changes == [c.config.read_timeout], "once; the connect timeout was the new socket's own"
        assert c.get_customer(made["id"])["name"] == "Ana"  # a GET goes urllib3's usual way
    assert [r["method"] for r in sandbox.request_log] == ["POST", "POST", "GET"]
    with socket.socket() as plain:
        _quiet_timeouts(plain)
        plain.settimeout(2.5)
        assert isinstance(plain, socket.socket) and plain.gettimeout() == 2.5
        plain.settimeout(None)
        assert plain.gettimeout() is None


@pytest.mark.parametrize("block", [
    b"Content-Type: application/json; charset=utf-8\r\nContent-Length: 12\r\n\r\n",
    b"Date: Wed, 02 Dec 2026 13:00:00 GMT\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Trailing:  two  \r\n\r\n",
    b"Retry-After:3\nX-Empty:\n\n",
    b"X-Latin: caf\xe9 \x85 end\r\n\r\n",  # \x85 is a line break to str.splitlines, not to HTTP
    b"X-Folded: one\r\n two\r\nNext: 1\r\n\r\n",  # folded: the email parser's way
    b"Not a header line\r\nContent-Length: 1\r\n\r\n",
    b"Space Name: x\r\n\r\n",
    b"\r\n",
    b"Cut-Short: yes\r\n",  # the stream ended before the blank line
])
def test_the_lean_header_parser_builds_what_http_client_builds(block):
    import http.client
    import io

    from batch_payouts.payout.one_send import _lean_parse_headers

    ours, theirs = _lean_parse_headers(io.BytesIO(block)), http.client.parse_headers(io.BytesIO(block))
    assert type(ours) is type(theirs)
    assert ours.items() == theirs.items() and ours.get_payload() == theirs.get_payload()
    assert [type(d) for d in ours.defects] == [type(d) for d in theirs.defects]


def test_prepared_headers_are_checked_as_http_client_checks_them():
    from batch_payouts.payout.one_send import PreparedHeaders

    prepared = PreparedHeaders.of({"Accept": "application/json", "User-Agent": "x/1"})
    assert prepared.lines == b"Accept: application/json\r\nUser-Agent: x/1" and dict(prepared) == {
        "Accept": "application/json", "User-Agent": "x/1"}
    assert dict(prepared.plus({"Idempotency-Key": "k"})) == {**prepared, "Idempotency-Key": "k"}
    copied = prepared.plus({"Idempotency-Key": "k"}).copy()  # what urllib3's urlopen does with them
    assert copied.lines == prepared.lines and copied.extra == {"Idempotency-Key": "k"} and not copied.changed
    copied.update({})
    assert not copied.changed
    copied.update({"Proxy-Authorization": "x"})  # a proxy's headers: no longer what ``lines`` says
    assert copied.changed and copied["Proxy-Authorization"] == "x"
    with pytest.raises(ValueError):
        PreparedHeaders.of({"Accept": "a\r\nInjected: yes"})
    with pytest.raises(ValueError):
        PreparedHeaders.of({"Bad:Name": "a"})
