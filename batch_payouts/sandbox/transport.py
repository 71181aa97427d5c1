"""The sandbox's wire: HTTP/1.1 connections, bodies, and the headers a request carries.

Split from ``server`` (the ``Sandbox``: what Conekta would do with a request) because
this part is about bytes on a socket -- keep-alive, chunked bodies, answers written
head and body at once, a connection dropped on purpose -- and is the same for every
route.  ``Handler`` hands each request to its server's ``Sandbox`` and offers it
``send_json``, ``send_bytes`` and ``drop``; ``parse_json`` and ``key_from_header``
read a request the way Conekta does.
"""

from __future__ import annotations

import base64
import binascii
import json
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from batch_payouts.sandbox import rules
from batch_payouts.sandbox.rules import fail

if TYPE_CHECKING:
    from batch_payouts.sandbox.server import Sandbox

JSON_TYPE = "application/json; charset=utf-8"


class BadBody(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    """One connection; a thin shell that hands each request to the ``Sandbox``."""

    protocol_version = "HTTP/1.1"
    server_version = "conekta-sandbox"
    sys_version = ""
    timeout = 300  # an idle keep-alive connection is closed after this
    disable_nagle_algorithm = True  # small answers must not wait ~40 ms for a delayed ACK

    def version_string(self) -> str:
        return self.server_version

    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr logging
        pass

    def setup(self) -> None:
        super().setup()
        self.server.sandbox._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.sandbox._track(self.connection, False)

    def _dispatch(self) -> None:
        try:
            self.server.sandbox._handle(self)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed request lines etc.: answer JSON like everything else, then close."""
        self.close_connection = True
        body = rules.error_body(rules.PARAMETER if code < 500 else rules.API_ERROR,
                                [(rules.rule(f"sandbox.http.{code}", None, message or "", message or ""), {})], "en")
        try:
            self.send_json(code, body, close=True)
        except OSError:
            pass

    # -- reading and writing -------------------------------------------------
    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";")[0].strip() or b"x", 16)
                except ValueError:
                    raise BadBody from None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError:
            raise BadBody from None
        if size < 0:
            raise BadBody
        return self.rfile.read(size)

    def send_bytes(self, status: int, payload: bytes, content_type: str = JSON_TYPE,
                   headers: dict[str, str] | None = None, close: bool = False, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload) if length is None else length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        # Head and body in one write: a client never sees half an answer by accident.
        self._headers_buffer.append(b"\r\n" + payload)
        self.flush_headers()

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None, close: bool = False) -> None:
        self.send_bytes(status, encode(body), headers=headers, close=close)

    def drop(self) -> None:
        """Close the socket without a byte of answer (the request was carried out)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    sandbox: Sandbox

    def handle_error(self, request: Any, client_address: Any) -> None:
        """No tracebacks on stderr for clients that hang up; the sandbox stays quiet."""


def encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def parse_json(raw: bytes) -> Any:
    """The request body as a JSON object, or 400 (malformed) / 422 (not an object)."""
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, ValueError):
        raise fail(400, rules.PARAMETER, rules.MALFORMED_JSON) from None
    if not isinstance(body, dict):
        raise fail(422, rules.PARAMETER, rules.NOT_AN_OBJECT)
    return body


def key_from_header(header: str | None) -> str | None:
    """The key from ``Basic base64(key:)`` or ``Bearer key``."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None
