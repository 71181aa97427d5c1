"""Is this webhook delivery really from Conekta?  One small function, on purpose.

Conekta signs each delivery with the private half of the account's webhook key and sends
the signature in the ``digest`` header: base64 of an RSA PKCS#1 v1.5 signature, SHA-256,
over the exact raw body bytes.  The public half is ``public_key`` (PEM, SubjectPublicKeyInfo)
of ``GET /webhook_keys``.  The header's exact format is the part most likely to need
adjusting against Conekta's current documentation, so it is read here and nowhere else.
"""

from __future__ import annotations

import base64
import binascii


def signature_valid(raw_body: bytes, digest_header: str | None, public_key_pem: str | bytes) -> bool:
    """True only when ``digest_header`` is a valid RSA-SHA256 signature of ``raw_body`` by the key.

    Anything else -- no header, bad base64, a key that is not RSA, a wrong signature -- is False,
    never an exception: the receiver answers 401 and changes nothing.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    if not digest_header:
        return False
    value = digest_header.strip()
    if value.lower().startswith("sha-256="):  # RFC 3230 style, should Conekta prefix the algorithm
        value = value[len("sha-256="):]
    try:
        signature = base64.b64decode(value, validate=True)
        pem = public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
        key = serialization.load_pem_public_key(pem)
    except (binascii.Error, ValueError, TypeError):
        return False
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(signature, raw_body, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
