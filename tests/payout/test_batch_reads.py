"""The batch's ledger reads made once (``batch_reads``): the same answers as the per-row reads,
customer intents durable ahead of their requests, and a repeat guard that another process
writing to the ledger meanwhile cannot fool."""

from __future__ import annotations

import time

import pytest

from batch_payouts.payout.batch_reads import CHUNK, STALE, BatchReads, customer_key
from batch_payouts.payout.conekta import ClientConfig, ConektaClient
from batch_payouts.payout.identity import payout_fingerprint
from batch_payouts.payout.ledger import Ledger
from batch_payouts.payout.row_executor import BatchSettings, RowExecutor, customer_body
from conftest import API_KEY, write_csv


def _fields(n: int, email: str | None = None) -> tuple:
    """A row's ``batch_reads.FIELDS``: email, name, phone, customer_id, amount, currency, reason."""
    return (email or f"p{n}@ejemplo.mx", f"Persona {n}", f"55{n:08d}", None, 10000 + 100 * n, "MXN", f"Apoyo {n}")


def _row(n: int, email: str | None = None) -> dict:
    email, name, phone, customer_id, amount, currency, reason = _fields(n, email)
    return {"email": email, "name": name, "phone": phone, "customer_id": customer_id, "amount": amount,
            "currency": currency, "reason": reason, "metadata": {}}


def _start(ledger: Ledger, batch_id: str) -> None:
    ledger.record_batch_start(batch_id=batch_id, input_name=f"{batch_id}.csv", input_sha256="0" * 64, key_fp="kf",
                              api_base="http://127.0.0.1", rows_total=1)


def _created_by_another_process(location, batch_id: str, row_key: str, n: int) -> None:
    """Another connection (as another process would) records a created payout of row ``n``'s payment."""
    email, _, _, _, amount, currency, reason = _fields(n)
    with Ledger(location) as other:
        _start(other, batch_id)
        other.ensure_row(batch_id=batch_id, row_key=row_key, row_number=2, email=email, amount=amount,
                         currency=currency, reason=reason,
                         payout_fingerprint=payout_fingerprint(email, amount, currency, reason))
        other.record_created(batch_id=batch_id, row_key=row_key, idempotency_key=None,
                             order={"id": f"ord_{batch_id}", "reference": "9300000000001", "status": "pending_payment"})


def _fingerprint(n: int) -> str:
    email, _, _, _, amount, currency, reason = _fields(n)
    return payout_fingerprint(email, amount, currency, reason)


def _eventually(answer, expected, seconds: float = 10.0):
    """``answer()`` once it is ``expected``, or its last value after ``seconds``: on PostgreSQL the
    notice of another connection's commit arrives a moment after it (``ledger_notices``)."""
    deadline = time.monotonic() + seconds
    while (value := answer()) is not expected and value != expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return value


def test_the_preloaded_repeat_guard_answers_as_the_query_and_a_write_by_another_process_makes_it_ask(
        ledger_location):
    location = ledger_location
    _created_by_another_process(location, "lunes", "h:uno.1", 1)
    with Ledger(location) as ledger:
        _start(ledger, "martes")
        reads = BatchReads(ledger, BatchSettings(batch_id="martes", key_fp="kf"),
                           [("h:uno.1", _fields(1)), ("h:dos.1", _fields(2))], {}, customer_body)
        assert reads.earlier(_fingerprint(1), "h:uno.1", since=0).batch_id == "lunes"
        assert reads.earlier(_fingerprint(1), "h:uno.1", since=2e9) is None  # outside the window
        assert reads.earlier(_fingerprint(2), "h:dos.1", since=0) is None
        ledger.set_livemode("martes", False)  # this process's own writes leave the preload valid
        assert reads.earlier(_fingerprint(2), "h:dos.1", since=0) is None
        _created_by_another_process(location, "miercoles", "h:dos.1", 2)
        assert _eventually(lambda: reads.earlier(_fingerprint(2), "h:dos.1", since=0), STALE) is STALE  # so it asks
        assert ledger.earlier_payout(payout_fingerprint=_fingerprint(2), row_key="h:dos.1", key_fp="kf", since=0,
                                     exclude_batch="martes").batch_id == "miercoles"


def test_a_folio_paid_in_another_batch_is_found_by_the_preload_whenever_it_was_paid(ledger_location):
    location = ledger_location
    _created_by_another_process(location, "enero", "x:F-7", 7)
    with Ledger(location) as ledger:
        _start(ledger, "julio")
        reads = BatchReads(ledger, BatchSettings(batch_id="julio", key_fp="kf"), [("x:F-7", _fields(8))], {},
                           customer_body)
        assert reads.earlier(_fingerprint(8), "x:F-7", since=2e9).batch_id == "enero"


def test_the_watch_counts_payouts_created_by_other_connections_not_the_ledgers_own(ledger_location):
    """What keeps the preload trusted (``Ledger.watch_changes``): the ledger's own created rows
    leave the count alone; another connection's change it (PostgreSQL: its notice, which arrives
    after the commits before it, so the count settles at exactly one more)."""
    with Ledger(ledger_location) as ledger:
        _start(ledger, "propio")
        watch = ledger.watch_changes()
        try:
            before = watch.count()
            ledger.ensure_row(batch_id="propio", row_key="h:p.1", row_number=2, email="p@ejemplo.mx", amount=100,
                              currency="MXN", reason="r", payout_fingerprint="fp-propio")
            ledger.record_created(batch_id="propio", row_key="h:p.1", idempotency_key=None,
                                  order={"id": "ord_p", "reference": "9300000000002", "status": "pending_payment"})
            ledger.flush()  # committed now, not deferred to a later step
            assert ledger.row("propio", "h:p.1").state == "created" and watch.count() == before
            _created_by_another_process(ledger_location, "ajeno", "h:a.1", 3)
            assert _eventually(watch.count, before + 1) == before + 1
            time.sleep(0.05)
            assert watch.count() == before + 1
        finally:
            watch.close()


@pytest.fixture
def client(sandbox):
    with ConektaClient(ClientConfig(api_key=API_KEY, api_base=sandbox.url)) as conekta:
        yield conekta


def _executor(ledger: Ledger, client, batch_id: str, rows: dict[str, dict]) -> RowExecutor:
    _start(ledger, batch_id)
    executor = RowExecutor(client, ledger, BatchSettings(batch_id=batch_id, key_fp="kf"))
    executor.preload()
    fields = ("email", "name", "phone", "customer_id", "amount", "currency", "reason")
    executor.prepare([(key, tuple(row[f] for f in fields)) for key, row in rows.items()])
    return executor


def test_a_repeat_created_by_another_process_after_the_preload_is_still_refused(ledger_location, sandbox, client):
    location = ledger_location
    with Ledger(location) as ledger:
        executor = _executor(ledger, client, "martes", {"h:uno.1": _row(1)})
        _created_by_another_process(location, "lunes", "h:otro.1", 1)  # the same payment, paid meanwhile
        _eventually(lambda: executor._reads.earlier(_fingerprint(1), "h:uno.1", since=0), STALE)
        outcome = executor.process(2, _row(1), "h:uno.1")
        assert executor.release() is None
    assert outcome.status == "duplicate" and outcome.error_code == "repeat_payout"
    assert sandbox.request_log == []  # nothing was sent for it


def test_customer_intents_are_committed_ahead_and_those_never_sent_are_settled_failed(ledger_location, sandbox, client):
    location = ledger_location
    rows = {f"h:{n}.1": _row(n) for n in range(1, CHUNK + 10)}
    rows["h:same.1"] = _row(99, email="p1@ejemplo.mx")  # the same person as row 1: one customer, one intent
    with Ledger(location) as ledger:
        executor = _executor(ledger, client, "lote", rows)
        first = executor.process(2, rows["h:1.1"], "h:1.1")
        states = ledger._query("SELECT state FROM intents WHERE operation='customer'")
        assert len(states) == CHUNK and {s["state"] for s in states} == {"in_flight", "succeeded"}  # durable ahead
        second = executor.process(3, rows["h:2.1"], "h:2.1")
        again = executor.process(4, rows["h:same.1"], "h:same.1")
        assert executor.release() is None  # the batch stops here: the rest are never sent
        customers = {r["idempotency_key"]: r["state"]
                     for r in ledger._query("SELECT idempotency_key, state FROM intents WHERE operation='customer'")}
    assert [o.status for o in (first, second, again)] == ["created", "created", "created"]
    assert again.customer_id == first.customer_id
    sent = {customer_key("lote", "p1@ejemplo.mx"), customer_key("lote", "p2@ejemplo.mx")}
    assert {key for key, state in customers.items() if state == "succeeded"} == sent
    assert set(customers.values()) == {"succeeded", "failed"} and len(customers) == CHUNK  # never in doubt
    posts = [r for r in sandbox.request_log if r["method"] == "POST" and r["path"] == "/customers"]
    assert len(posts) == 2


def test_a_run_stopped_by_a_refused_key_leaves_no_customer_in_doubt_and_the_rerun_looks_nothing_up(
        sandbox, cli, env, engine_env):
    from batch_payouts.sandbox import Faults
    from conftest import beneficiary

    source = write_csv(env / "pagos.csv", [beneficiary(n) for n in range(1, 21)])
    sandbox.set_faults(Faults(revoke_after_requests=7))
    assert cli("run", source, "--api-base", sandbox.url, "--workers", "1").exit_code == 2
    with Ledger(engine_env) as ledger:
        states = [r["state"] for r in ledger._query("SELECT state FROM intents WHERE operation='customer'")]
    assert len(states) > 4 and "in_flight" not in states
    sandbox.set_faults(Faults())
    before = len(sandbox.request_log)
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    rerun = sandbox.request_log[before:]
    assert not [r for r in rerun if r["method"] == "GET" and r["path"].startswith("/customers")]
    orders = [o["metadata"]["row_key"] for o in sandbox.payout_orders(API_KEY)]
    assert len(orders) == len(set(orders)) == 20


def test_a_batch_with_several_workers_lets_their_intents_gather_in_one_commit_while_it_runs(tmp_path, client):
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        _start(ledger, "lote")
        alone = RowExecutor(client, ledger, BatchSettings(batch_id="lote", key_fp="kf", workers=1))
        alone.preload()
        assert not ledger.gather_intents  # one worker: nobody else's intent to wait for
        alone.release()
        several = RowExecutor(client, ledger, BatchSettings(batch_id="lote", key_fp="kf", workers=8))
        several.preload()
        assert ledger.gather_intents
        ledger.begin_intent(batch_id="lote", row_key="x:1", operation="customer", idempotency_key="k-1", body={})
        assert ledger.intent("k-1").state == "in_flight"  # still durable before it returns
        several.release()
        assert not ledger.gather_intents


def test_the_watch_asks_the_ledger_at_most_every_fresh_for_seconds(ledger_location, monkeypatch):
    """Asking is a read of its own before every row (on SQLite a read transaction): the watch
    asks at most every ``FRESH_FOR`` seconds, and another connection's payout shows once that
    has passed."""
    from batch_payouts.payout.ledger import _AskedSeldom

    monkeypatch.setattr(_AskedSeldom, "FRESH_FOR", 3600.0)
    with Ledger(ledger_location) as ledger:
        _start(ledger, "propio")
        watch = ledger.watch_changes()
        try:
            asked, ask = [], watch._ask
            watch._ask = lambda: asked.append(1) or ask()
            before = watch.count()
            _created_by_another_process(ledger_location, "ajeno", "h:a.1", 3)
            time.sleep(0.2)  # PostgreSQL's notice is on its way meanwhile
            assert [watch.count() for _ in range(100)] == [before] * 100 and asked == []
            monkeypatch.setattr(_AskedSeldom, "FRESH_FOR", 0.0)
            assert _eventually(watch.count, before + 1) == before + 1 and asked
        finally:
            watch.close()
