"""urllib3 connections that spend less per request: one ``send``, headers encoded once, lean parsing.

http.client sends the headers, then the body, in two system calls (each with the socket's
``poll`` before it, as the socket has a timeout): two TCP segments for every POST of a few
hundred bytes.  A batch makes two POSTs per row, so the second call is ~4 system calls per
row, each one letting the other workers' threads take the interpreter lock in between (issue 17).
Here a ``bytes`` body is held back and sent together with the headers; anything else (no body,
a stream) goes the usual way.

Two more costs of every request, measured at a fast API (issue 17: ~20% of the client's CPU per
request together): urllib3 and http.client check and encode the same eight headers one call at a
time for every request, and http.client reads the answer's headers with the ``email`` package's
general parser.  ``PreparedHeaders`` (the client's fixed headers) are checked and encoded once, by
http.client's own rules, and a POST with a body sends them as they are (the request's own headers,
such as its Idempotency-Key, and the Content-Length still go through ``putheader``): the same
header lines, in another order.  Answers' headers are read by ``_lean_parse_headers``, which builds
the same ``HTTPMessage`` when every line is a plain ``Name: value`` and hands anything else
(folded lines, a line without a colon) to the ``email`` parser exactly as http.client does.

And a system call fewer on each side of a request: urllib3 sets the socket's timeout before
sending (the connect timeout) and again before reading (the read timeout), and every
``settimeout`` is an ``ioctl`` even when nothing changes at the system's level (the socket
stays non-blocking).  Here a POST's few hundred bytes go under the timeout the socket already
has (the read timeout, after its first answer: a send into an empty socket buffer never waits),
and a socket's timeout is set only when it changes (``_QuietTimeouts``).
"""

from __future__ import annotations

import email.parser
import http.client
import re
import socket
import types
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection, _ResponseOptions


class PreparedHeaders(dict):
    """A client's fixed headers with their lines checked and encoded once, plus a request's own
    ones (``extra``).  Still a plain mapping of every header, for the usual path."""

    lines: bytes = b""
    extra: dict[str, str] = {}

    @classmethod
    def of(cls, headers: dict[str, str]) -> PreparedHeaders:
        prepared = cls(headers)
        encoded = []
        for name, value in headers.items():
            name_bytes, value_bytes = name.encode("ascii"), value.encode("latin-1")
            if not http.client._is_legal_header_name(name_bytes):  # type: ignore[attr-defined]
                raise ValueError(f"Invalid header name {name_bytes!r}")
            if http.client._is_illegal_header_value(value_bytes):  # type: ignore[attr-defined]
                raise ValueError(f"Invalid header value {value_bytes!r}")
            encoded.append(name_bytes + b": " + value_bytes)
        prepared.lines = b"\r\n".join(encoded)
        return prepared

    def plus(self, extra: dict[str, str]) -> PreparedHeaders:
        """These headers and ``extra`` (sent through ``putheader``, so checked as usual)."""
        combined = PreparedHeaders({**self, **extra})
        combined.lines, combined.extra = self.lines, extra
        return combined

    def copy(self) -> PreparedHeaders:  # urllib3's ``urlopen`` copies the headers it is given
        return self.plus(self.extra)

    def update(self, *args: Any, **more: Any) -> None:
        """A change (urllib3 would add a proxy's headers) makes them plain headers again: ``lines``
        would not say it."""
        if more or any(args):
            super().update(*args, **more)
            self.lines, self.extra = b"", {}
            self.changed = True

    changed = False


# A header block of plain lines: a name of visible characters but ":", a colon, a value without
# line breaks.  What the email parser reads as (name, value.lstrip(" \t")) with nothing else to do.
_PLAIN_HEADERS = re.compile(rb"(?:[\x21-\x39\x3b-\x7e]+:[^\r\n]*\r?\n)*")


def _lean_parse_headers(fp: Any, _class: type = http.client.HTTPMessage) -> http.client.HTTPMessage:
    """``http.client.parse_headers``: the same message, built directly for plain header lines."""
    headers = http.client._read_headers(fp)  # type: ignore[attr-defined]
    block = b"".join(headers[:-1])  # the last line is the empty one (or b"" at the end of the stream)
    if headers[-1] not in (b"\r\n", b"\n") or not _PLAIN_HEADERS.fullmatch(block):
        return email.parser.Parser(_class=_class).parsestr(b"".join(headers).decode("iso-8859-1"))
    message = _class()
    for line in block.split(b"\n")[:-1]:  # only at line feeds (str.splitlines also splits at \x85...)
        name, _, value = line.decode("iso-8859-1").partition(":")
        message._headers.append((name, value.lstrip(" \t").rstrip("\r")))  # compat32's header_source_parse
    message.set_payload("")
    return message


class _LeanResponse(http.client.HTTPResponse):
    pass


# http.client's own ``begin``, reading the headers with ``_lean_parse_headers``: no copy of its code.
_LeanResponse.begin = types.FunctionType(  # type: ignore[method-assign]
    http.client.HTTPResponse.begin.__code__, {**vars(http.client), "parse_headers": _lean_parse_headers},
    "begin", http.client.HTTPResponse.begin.__defaults__, http.client.HTTPResponse.begin.__closure__,
)


class _QuietTimeouts:
    """Mixed into a connected socket's own class: ``settimeout`` only when the value changes."""

    __slots__ = ()

    def settimeout(self, value: float | None) -> None:
        if value != self.gettimeout():  # type: ignore[attr-defined]
            super().settimeout(value)  # type: ignore[misc]


_QUIET_CLASSES: dict[type, type] = {}


def _quiet_timeouts(sock: socket.socket) -> None:
    """Give ``sock`` (a plain or a TLS socket) ``_QuietTimeouts``: the same object and layout, its
    class a subclass of its own."""
    kind = type(sock)
    quiet = _QUIET_CLASSES.get(kind)
    if quiet is None:
        quiet = _QUIET_CLASSES.setdefault(kind, type(f"Quiet{kind.__name__}", (_QuietTimeouts, kind), {"__slots__": ()}))
    sock.__class__ = quiet


class _OneSend:
    _held: bytes | None = None
    response_class = _LeanResponse

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        if isinstance(self.sock, socket.socket):  # type: ignore[attr-defined]
            _quiet_timeouts(self.sock)  # type: ignore[attr-defined]

    def request(self, method: str, url: str, body: Any = None, headers: Any = None, *, chunked: bool = False,
                preload_content: bool = True, decode_content: bool = True, enforce_content_length: bool = True
                ) -> None:
        options = {"chunked": chunked, "preload_content": preload_content, "decode_content": decode_content,
                   "enforce_content_length": enforce_content_length}
        if not (isinstance(body, bytes) and body) or chunked:
            super().request(method, url, body=body, headers=headers, **options)  # type: ignore[misc]
            return
        if not isinstance(headers, PreparedHeaders) or headers.changed:
            headers = {**(headers or {}), "Content-Length": str(len(body))}
            self._held, body = body, None
            try:
                super().request(method, url, body=body, headers=headers, **options)  # type: ignore[misc]
            finally:
                self._held = None
            return
        # urllib3's ``request`` for a POST with a body, its fixed headers already encoded, sent
        # under the socket's timeout as it is (module docstring); a new connection has its own.
        self._response_options = _ResponseOptions(
            request_method=method, request_url=url, preload_content=preload_content,
            decode_content=decode_content, enforce_content_length=enforce_content_length,
        )
        self.putrequest(method, url, skip_accept_encoding="Accept-Encoding" in headers)  # type: ignore[attr-defined]
        if headers.lines:
            self._buffer.append(headers.lines)  # type: ignore[attr-defined]
        for name, value in headers.extra.items():
            self.putheader(name, value)  # type: ignore[attr-defined]
        self.putheader("Content-Length", str(len(body)))  # type: ignore[attr-defined]
        self._held = body
        try:
            self.endheaders()  # type: ignore[attr-defined]
        finally:
            self._held = None

    def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
        held, self._held = self._held, None
        if held is None or message_body is not None:
            super()._send_output(message_body, encode_chunked=encode_chunked)  # type: ignore[misc]
            return
        buffer = self._buffer  # type: ignore[attr-defined] - http.client's header lines
        buffer.extend((b"", b""))
        head = b"\r\n".join(buffer)
        del buffer[:]
        self.send(head + held)  # type: ignore[attr-defined]


class OneSendHTTPConnection(_OneSend, HTTPConnection):
    pass


class OneSendHTTPSConnection(_OneSend, HTTPSConnection):
    pass


def use_one_send(pool: Any) -> None:
    """Make ``pool`` (an ``HTTPConnectionPool`` or ``HTTPSConnectionPool``) open such connections."""
    pool.ConnectionCls = OneSendHTTPSConnection if issubclass(pool.ConnectionCls, HTTPSConnection) else OneSendHTTPConnection
