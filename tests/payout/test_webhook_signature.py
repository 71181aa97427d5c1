"""The one function that says whether a webhook delivery was signed by Conekta's key.

Signed here by the sandbox's own code (``sandbox.webhooks``: the key pair it publishes in
``GET /webhook_keys`` and the ``digest`` it sends), so the two halves are checked against each other."""

from batch_payouts.payout.webhook_signature import signature_valid
from batch_payouts.sandbox.webhooks import new_key_pair, sign

BODY = b'{"id":"evt_1","type":"cashout.confirmed"}'
KEY, PRIVATE = new_key_pair()
_OTHER, OTHER_PRIVATE = new_key_pair()
PUBLIC = KEY["public_key"]


def test_a_delivery_signed_with_the_key_is_valid():
    assert signature_valid(BODY, sign(BODY, PRIVATE), PUBLIC)
    assert signature_valid(BODY, "sha-256=" + sign(BODY, PRIVATE), PUBLIC.encode())


def test_a_changed_body_another_key_or_no_signature_is_refused():
    assert not signature_valid(BODY + b" ", sign(BODY, PRIVATE), PUBLIC)
    assert not signature_valid(BODY, sign(BODY, OTHER_PRIVATE), PUBLIC)
    assert not signature_valid(BODY, None, PUBLIC)
    assert not signature_valid(BODY, "", PUBLIC)
    assert not signature_valid(BODY, "not base64 !!", PUBLIC)
    assert not signature_valid(BODY, sign(BODY, PRIVATE), "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n")
