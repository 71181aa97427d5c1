"""A small real HTTP server that receives the sandbox's webhook deliveries, for the tests.

It keeps every delivery (headers and the raw body bytes, as signed) and answers with the
statuses it is told, in turn (then 200); ``hold`` keeps it from answering until released,
to show the sandbox's API does not wait for it.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, answers: list[int] | None = None) -> None:
        self.answers = list(answers or [])
        self.deliveries: list[dict] = []
        self.hold = threading.Event()
        self.hold.set()  # set: answer at once
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._arrived:
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    receiver.deliveries.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                                "answered": status})
                    receiver._arrived.notify_all()
                receiver.hold.wait(30)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/conekta"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.hold.set()
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout: float = 30) -> list[dict]:
        """The deliveries once at least ``count`` arrived (AssertionError if they never do)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.deliveries) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.deliveries)} deliveries arrived, expected {count}"
                self._arrived.wait(left)
            return list(self.deliveries)

    def events(self) -> list[dict]:
        with self._lock:
            return [json.loads(d["body"]) for d in self.deliveries]


def verify(public_pem: str, body: bytes, digest: str) -> bool:
    """Conekta's signature as the contract pins it: RSA PKCS#1 v1.5 SHA-256 over the raw body, base64."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    key = serialization.load_pem_public_key(public_pem.encode("ascii"))
    try:
        key.verify(base64.b64decode(digest), body, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
