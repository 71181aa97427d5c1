"""Talking to the sandbox as a Conekta client does: sessions, bodies, and error checks.

Shared by the sandbox's test modules (``from sandbox_client import ...``); the ``sb``
fixture is imported by name so pytest finds it in each module.
"""

from __future__ import annotations

import re

import pytest
import requests

from batch_payouts.sandbox import Sandbox

KEY = "key_test_SANDBOX_secret_0001"
OTHER_KEY = "key_test_SANDBOX_other_0002"
ACCEPT = "application/vnd.conekta-v2.0.0+json"
LOG_ID = re.compile(r"^[0-9a-f]{24}$")


@pytest.fixture
def sb():
    with Sandbox() as server:
        yield server


def session(key: str | None = KEY, *, bearer: bool = False, lang: str | None = None,
            accept: str | None = ACCEPT) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    if key is not None:
        if bearer:
            s.headers["Authorization"] = f"Bearer {key}"
        else:
            s.auth = (key, "")
    if accept is not None:
        s.headers["Accept"] = accept
    if lang:
        s.headers["Accept-Language"] = lang
    return s


def new_customer(sb, s=None, **overrides) -> dict:
    body = {"name": "Ana Núñez", "email": "ana@ejemplo.mx", "phone": "5512345678", **overrides}
    r = (s or session()).post(sb.url + "/customers", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def order_body(customer_id: str, **overrides) -> dict:
    body = {
        "currency": "MXN",
        "amount": 3000,
        "customer_info": {"customer_id": customer_id},
        "allowed_payout_methods": ["cashout"],
        "payout": {"payout_method": {"type": "cashout"}},
        "reason": "Apoyo semanal",
        "metadata": {"row_key": "rk-0001"},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def new_order(sb, s=None, customer_id=None, key=None, **overrides) -> requests.Response:
    s = s or session()
    customer_id = customer_id or new_customer(sb, s)["id"]
    headers = {"Idempotency-Key": key} if key else {}
    return s.post(sb.url + "/payout_orders", json=order_body(customer_id, **overrides), headers=headers)


def assert_error(r: requests.Response, status: int, type_: str, param: str | None = "unset", code: str = "") -> dict:
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    body = r.json()
    assert body["object"] == "error" and body["type"] == type_
    assert LOG_ID.match(body["log_id"])
    assert body["details"], body
    for detail in body["details"]:
        assert set(detail) == {"code", "param", "message", "debug_message"}
        assert detail["message"] and detail["debug_message"]
    if param != "unset":
        assert param in [d["param"] for d in body["details"]], body
    if code:
        assert any(code in d["code"] for d in body["details"]), body
    return body
