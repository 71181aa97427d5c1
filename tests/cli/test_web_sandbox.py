"""The emulator `web --sandbox` starts: its webhooks go to the app's own receiver, and
`--sandbox-auto-*` (what `make web` turns on) cashes and expires references by themselves."""

from __future__ import annotations

import time

import pytest

from batch_payouts.cli.web import WEBHOOK_PATH, _built_in_sandbox
from batch_payouts.errors import BatchError
from batch_payouts.jobs.endpoint import SANDBOX_KEY, sandbox_state_path

from sandbox.sandbox_client import new_order, session  # noqa: E402


def test_the_built_in_sandbox_delivers_to_the_apps_receiver_and_settles_orders_by_itself(tmp_path):
    state = sandbox_state_path(tmp_path / "ledger.sqlite")
    with _built_in_sandbox(state, "0.0.0.0", 8123, 1.0, 0.0, 0, 5) as sb:
        assert sb.webhook_urls == [f"http://127.0.0.1:8123{WEBHOOK_PATH}"]
        assert WEBHOOK_PATH == "/webhooks/conekta"
        order = new_order(sb, session(SANDBOX_KEY)).json()
        deadline = time.monotonic() + 30  # (its deliveries to a port nobody listens on go on retrying)
        while not sb.auto_settled and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sb.payout_orders()[0]["status"] == "cashed" and sb.auto_settled[0]["order_id"] == order["id"]
    assert state.is_file()


@pytest.mark.parametrize("cash, expire, after", [(1.2, 0, 60), (0.6, 0.6, 60), (0.5, 0.2, -5)])
def test_bad_automatic_settings_are_refused_with_a_message(tmp_path, cash, expire, after):
    with pytest.raises(BatchError) as refused:
        _built_in_sandbox(tmp_path / "s.sqlite", "127.0.0.1", 8000, cash, expire, after, None)
    assert "--sandbox-auto-*" in refused.value.message("es")
