"""The second factor: TOTP codes (RFC 6238, pyotp) and one-time recovery codes.

The secret is shown once, at enrolment, as a QR code (segno writes it as SVG, pure Python)
and as text; it is stored in the ledger because the server must check codes, and it never
appears in an output, a log or the event trail.  Recovery codes are stored as SHA-256 hashes
(they are long random strings, so a fast hash is enough) and each works once.
"""

from __future__ import annotations

import hashlib
import io
import secrets

import pyotp

ISSUER = "batch-payouts"
RECOVERY_CODES = 10


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, name: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as an inline SVG document (no image file is ever written)."""
    import segno

    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, xmldecl=False, svgns=True)
    return out.getvalue().decode()


def code_ok(secret: str | None, code: object) -> bool:
    """A six-digit code of this or the neighbouring 30-second step (clocks drift)."""
    text = "".join(str(code or "").split())
    return bool(secret) and text.isdigit() and len(text) == 6 and pyotp.TOTP(secret).verify(text, valid_window=1)


def new_recovery_codes() -> list[str]:
    return [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]


def recovery_hash(code: str) -> str:
    return hashlib.sha256(("batch-payouts recovery\0" + code.strip().lower()).encode()).hexdigest()


def current_code(secret: str) -> str:
    """The code an authenticator app shows now (tests and the CLI's self-check)."""
    return pyotp.TOTP(secret).now()
