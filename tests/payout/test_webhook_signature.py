"""The one function that says whether a webhook delivery was signed by Conekta's key."""

from batch_payouts.payout.webhook_signature import signature_valid
from conekta_events import OTHER_KEY, public_pem, sign

BODY = b'{"id":"evt_1","type":"cashout.confirmed"}'


def test_a_delivery_signed_with_the_key_is_valid():
    assert signature_valid(BODY, sign(BODY), public_pem())


def test_a_changed_body_another_key_or_no_signature_is_refused():
    assert not signature_valid(BODY + b" ", sign(BODY), public_pem())
    assert not signature_valid(BODY, sign(BODY, OTHER_KEY), public_pem())
    assert not signature_valid(BODY, None, public_pem())
    assert not signature_valid(BODY, "", public_pem())
    assert not signature_valid(BODY, "not base64 !!", public_pem())
    assert not signature_valid(BODY, sign(BODY), "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n")
