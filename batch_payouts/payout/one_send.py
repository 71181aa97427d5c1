"""urllib3 connections that send a request's headers and its body in one ``send``.

http.client sends the headers, then the body, in two system calls (each with the socket's
``poll`` before it, as the socket has a timeout): two TCP segments for every POST of a few
hundred bytes.  A batch makes two POSTs per row, so the second call is ~4 system calls per
row, each one letting the other workers' threads take the interpreter lock in between (issue 17).
Here a ``bytes`` body is held back and sent together with the headers; anything else (no body,
a stream) goes the usual way.  The bytes on the wire are exactly those http.client would send.
"""

from __future__ import annotations

from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection


class _OneSend:
    _held: bytes | None = None

    def request(self, method: str, url: str, body: Any = None, headers: Any = None, **options: Any) -> None:
        if isinstance(body, bytes) and body:
            headers = {**(headers or {}), "Content-Length": str(len(body))}
            self._held, body = body, None
        try:
            super().request(method, url, body=body, headers=headers, **options)  # type: ignore[misc]
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
