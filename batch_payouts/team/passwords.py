"""Password hashes: scrypt, memory-hard, so a stolen ledger or config file is slow to brute-force.

The same format the ``[web.users]`` table of the config file has always used
(``scrypt$N$r$p$salt$hash``), so those users move into the ledger unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# scrypt's cost: ~50 ms and 16 MiB per check.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SCHEME = "scrypt"


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"{SCHEME}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check; a malformed stored hash never matches (and never raises)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected),
            maxmem=256 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# Checked against when the user name is unknown, so a wrong name costs as long as a wrong password.
# It is ``hash_password("timing-equaliser", salt=b"\0" * 16)`` written out: computing it at import
# cost every command (``run`` included, through the approval check) one scrypt, ~35 ms of start-up.
# A test recomputes it, so a change of cost parameters cannot leave it behind.
TIMING_EQUALISER = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$F166YLasXyTXFgv0hPatNM9XlWMhByy6cgtw9Cw6fLA="
