"""``expires_at`` is always sent (the newest API requires it): 48 hours by default, ``--expires-in``
to change it, and a row's own ``expires_at`` column wins.  Real CLI, real HTTP to the sandbox."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime, timezone

from conftest import beneficiary, write_csv


def _sent_bodies(ledger_path) -> list[dict]:
    """The payout-order bodies exactly as sent (the ledger keeps each intent's request body)."""
    with sqlite3.connect(ledger_path) as conn:
        found = conn.execute("SELECT request_body FROM intents WHERE operation='payout_order'").fetchall()
    return [json.loads(body) for (body,) in found]


def test_expires_at_is_always_sent_48_hours_ahead_by_default(sandbox, env, cli):
    source = write_csv(env / "pagos.csv", [beneficiary(n) for n in range(1, 3)])
    before = time.time()
    result = cli("run", source, "--api-base", sandbox.url)
    after = time.time()
    assert result.exit_code == 0, result.output
    bodies = _sent_bodies(env / "ledger.sqlite")
    assert len(bodies) == 2
    for body in bodies:
        assert int(before) + 48 * 3600 <= body["expires_at"] <= int(after) + 48 * 3600
    assert sorted(o["expires_at"] for o in sandbox.payout_orders()) == sorted(b["expires_at"] for b in bodies)


def test_expires_in_changes_it_and_the_files_column_wins(sandbox, env, cli):
    rows = [beneficiary(1, vence=""), beneficiary(2, vence="2031-03-15")]
    source = write_csv(env / "pagos.csv", rows)
    before = time.time()
    result = cli("run", source, "--api-base", sandbox.url, "--expires-in", "2d")
    after = time.time()
    assert result.exit_code == 0, result.output
    by_email = {o["customer_info"]["email"]: o for o in sandbox.payout_orders()}
    own = by_email[rows[0]["correo"]]["expires_at"]
    assert int(before) + 2 * 86400 <= own <= int(after) + 2 * 86400
    from_file = datetime.fromtimestamp(by_email[rows[1]["correo"]]["expires_at"], timezone.utc)
    assert (from_file.year, from_file.month) == (2031, 3)


def test_expires_in_accepts_hours_and_refuses_nonsense(sandbox, env, cli):
    source = write_csv(env / "pagos.csv", [beneficiary(1)])
    before = time.time()
    assert cli("run", source, "--api-base", sandbox.url, "--expires-in", "36").exit_code == 0
    (order,) = sandbox.payout_orders()
    assert order["expires_at"] >= int(before) + 36 * 3600
    for bad in ("0", "mañana", "-3h", "2w"):
        refused = cli("run", source, "--api-base", sandbox.url, "--expires-in", bad, "--lang", "en")
        assert refused.exit_code == 2, refused.output
        assert f"--expires-in '{bad}' is not valid" in refused.output and "Traceback" not in refused.output
    assert len(sandbox.payout_orders()) == 1
