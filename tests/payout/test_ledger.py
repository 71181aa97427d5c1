"""The ledger on a real SQLite file and a real PostgreSQL database: states, intents, customers,
repeat guard, lock, foreign files, and the upgrade of ledgers written before Alembic."""

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from batch_payouts.errors import BatchError
from batch_payouts.payout.ledger import Ledger, key_fingerprint
from conftest import all_at_once


def _row(ledger, key="x:1", number=2, batch="b1"):
    return ledger.ensure_row(
        batch_id=batch, row_key=key, row_number=number, email="Ana@Example.com", amount=3000,
        currency="MXN", reason="Pago", payout_fingerprint="fp1",
    )


@pytest.fixture
def ledger(ledger_location):
    with Ledger(ledger_location) as opened:
        opened.record_batch_start(batch_id="b1", input_name="in.csv", input_sha256="0" * 64, key_fp="k1",
                                  api_base="http://127.0.0.1", rows_total=1)
        yield opened


def test_new_row_is_pending_and_ensure_is_idempotent(ledger):
    assert _row(ledger).state == "pending"
    assert _row(ledger).state == "pending"
    assert len(ledger.rows("b1")) == 1


def test_intent_is_committed_before_send_and_keeps_the_first_body(ledger, ledger_location):
    _row(ledger)
    first = ledger.begin_intent(batch_id="b1", row_key="x:1", operation="payout_order", idempotency_key="k-1", body={"amount": 3000})
    assert first.request_body == {"amount": 3000}
    # Another connection sees the intent: it is committed, not merely pending in memory.
    with Ledger(ledger_location) as other:
        assert other._query("SELECT state FROM rows")[0]["state"] == "in_flight"
    again = ledger.begin_intent(batch_id="b1", row_key="x:1", operation="payout_order", idempotency_key="k-1", body={"amount": 9999})
    assert again.request_body == {"amount": 3000}, "a resend must be byte-for-byte the first request"
    assert ledger.row("b1", "x:1").attempts == 2


def test_intents_asked_for_together_are_committed_together_each_with_its_own_body(ledger, ledger_location):
    """Group commit: sixteen threads begin intents at once; each gets its own stored body back,
    every intent and its row's customer are committed, and a resend still gets the first body."""
    for n in range(16):
        _row(ledger, key=f"x:{n}", number=n + 2)
    results = {}

    def begin(n: int) -> None:
        results[n] = ledger.begin_intent(batch_id="b1", row_key=f"x:{n}", operation="payout_order",
                                         idempotency_key=f"k-{n}", body={"amount": 100 + n}, customer_id=f"cus_{n}")

    errors = all_at_once(16, begin)
    assert not errors
    assert {n: r.request_body for n, r in results.items()} == {n: {"amount": 100 + n} for n in range(16)}
    with Ledger(ledger_location) as other:  # on disk, seen by another connection
        rows = {r.row_key: r for r in other.rows("b1")}
        assert all(rows[f"x:{n}"].state == "in_flight" and rows[f"x:{n}"].customer_id == f"cus_{n}" for n in range(16))
        assert len(other._query("SELECT idempotency_key FROM intents")) == 16
    again = ledger.begin_intent(batch_id="b1", row_key="x:3", operation="payout_order", idempotency_key="k-3", body={"amount": 1})
    assert again.request_body == {"amount": 103}


def test_a_group_of_intents_new_retried_and_twice_the_same_key_is_stored_as_one_by_one(ledger):
    """A group commit (on PostgreSQL one INSERT for the whole group, or one by one when a key
    comes twice) stores what separate commits would: new intents as given, a retry's
    body as first stored, payout orders' rows in flight with their customer."""
    from batch_payouts.payout.intent_journal import _IntentTicket, request_text

    for n in (1, 2, 3):
        _row(ledger, key=f"x:{n}", number=n + 1)
    ledger.begin_intent(batch_id="b1", row_key="x:2", operation="payout_order", idempotency_key="o-2",
                        body={"amount": 1}, customer_id="cus_2")

    def ticket(key, row_key, operation, body, customer_id=None):
        return _IntentTicket((key, "b1", row_key, operation, request_text(body)), customer_id, [])

    group = [ticket("c-1", "x:1", "customer", {"email": "a@b.mx"}),
             ticket("o-1", "x:1", "payout_order", {"amount": 10}, "cus_1"),
             ticket("o-2", "x:2", "payout_order", {"amount": 999}),  # a retry: the stored body wins
             ticket("o-3", "x:3", "payout_order", {"amount": 30}, "cus_3")]
    ledger._commit_intents(group)
    assert [(t.stored.idempotency_key, t.stored.request_body, t.stored.state) for t in group] == [
        ("c-1", {"email": "a@b.mx"}, "in_flight"), ("o-1", {"amount": 10}, "in_flight"),
        ("o-2", {"amount": 1}, "in_flight"), ("o-3", {"amount": 30}, "in_flight")]
    rows = {r.row_key: r for r in ledger.rows("b1")}
    assert [(rows[k].state, rows[k].customer_id, rows[k].attempts) for k in ("x:1", "x:2", "x:3")] == [
        ("in_flight", "cus_1", 1), ("in_flight", "cus_2", 2), ("in_flight", "cus_3", 1)]
    twice = [ticket("o-3", "x:3", "payout_order", {"amount": 30}, "cus_3"),
             ticket("o-3", "x:3", "payout_order", {"amount": 30}, "cus_3")]
    ledger._commit_intents(twice)
    assert [t.stored.request_body for t in twice] == [{"amount": 30}] * 2
    assert ledger.row("b1", "x:3").attempts == 3


def test_postgresql_group_commits_find_their_rows_by_key_however_the_table_grew(pg_cluster):
    """A batch's group commits, from its first rows to its 300th, never read the rows table
    through.  The rows once went ``in_flight`` in one ``UPDATE ... FROM (VALUES ...)``, whose plan,
    prepared while the table was still small, stayed a scan of the whole table for the rest of
    the run: each group read every row written so far (4.1 million rows read for 6,000)."""
    from batch_payouts.payout.intent_journal import _IntentTicket, request_text

    url = pg_cluster.new_database()
    with Ledger(url) as ledger:
        ledger.record_batch_start(batch_id="b1", input_name="in.csv", input_sha256="0" * 64, key_fp="k1",
                                  api_base="http://127.0.0.1", rows_total=300)
        for n in range(300):
            _row(ledger, key=f"x:{n}", number=n + 2)
            if n % 2:
                ledger._commit_intents([
                    _IntentTicket((f"o-{k}", "b1", f"x:{k}", "payout_order", request_text({"amount": k})), f"cus_{k}", [])
                    for k in (n - 1, n)])
        assert {(r.state, r.attempts) for r in ledger.rows("b1")} == {("in_flight", 1)}
    database = url.rsplit("/", 1)[1]
    deadline = time.monotonic() + 30
    while True:  # a server process reports its table statistics as it ends: soon after the ledger closes
        (scans, read, updated), = pg_cluster.sql(
            "SELECT seq_scan, seq_tup_read, n_tup_upd FROM pg_stat_user_tables WHERE relname = 'rows'", database)
        if updated >= 300 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert updated >= 300
    assert read < 300, f"{scans} scans of the rows table read {read} rows"


def test_a_failed_group_commit_fails_every_intent_in_it_and_none_is_stored(ledger):
    _row(ledger)

    def full_disk() -> None:
        raise OSError(28, "No space left on device")

    ledger.before_intents(full_disk)
    with pytest.raises(OSError):
        ledger.begin_intent(batch_id="b1", row_key="x:1", operation="payout_order", idempotency_key="k-1", body={})
    assert ledger.intent("k-1") is None and ledger.row("b1", "x:1").state == "pending"


def test_a_step_after_the_commit_runs_before_the_intent_is_returned_and_its_error_fails_it(ledger):
    """What a ``before_intents`` step returns runs once the commit is durable (the audit log's fsync,
    begun beside the commit): the intent is stored, but the caller gets the error, so its request
    is never sent; a rerun finds the intent in flight and looks the row up first."""
    _row(ledger)
    calls = []

    def begun():
        calls.append("before")

        def finish():
            calls.append(("after", ledger.intent("k-1").state))
            raise OSError(28, "No space left on device")
        return finish

    ledger.before_intents(begun)
    with pytest.raises(OSError):
        ledger.begin_intent(batch_id="b1", row_key="x:1", operation="payout_order", idempotency_key="k-1", body={})
    assert calls == ["before", ("after", "in_flight")]
    assert ledger.row("b1", "x:1").state == "in_flight"


def test_created_and_failure_states(ledger):
    _row(ledger)
    _row(ledger, key="x:2", number=3)
    ledger.record_created(batch_id="b1", row_key="x:1", idempotency_key=None,
                          order={"id": "po1", "reference": "1234567890123456", "expires_at": 5, "customer_info": {"id": "cus_1"}})
    ledger.record_failure(batch_id="b1", row_key="x:2", idempotency_key=None, state="failed",
                          error_code="conekta.errors.amount", error_message="no", http_status=422, log_id="L1")
    rows = {r.row_key: r for r in ledger.rows("b1")}
    assert (rows["x:1"].state, rows["x:1"].reference, rows["x:1"].customer_id) == ("created", "1234567890123456", "cus_1")
    assert (rows["x:2"].state, rows["x:2"].http_status, rows["x:2"].log_id) == ("failed", 422, "L1")


def test_deferred_steps_ride_in_the_next_transaction_in_order_and_reads_see_them(ledger, ledger_location):
    """A batch defers the steps that only settle what an intent started: they are written, in the
    order they were deferred, by the next transaction (here the next intent's durable commit),
    and a read through the ledger writes them first.  Both engines (on PostgreSQL the steps are
    the thread's own: see the next tests)."""
    entry = ledger.ensure_row(batch_id="b1", row_key="x:1", row_number=2, email="Ana@Example.com", amount=3000,
                              currency="MXN", reason="Pago", payout_fingerprint="fp1", later=True)
    assert (entry.state, entry.row_number, entry.amount) == ("pending", 2, 3000)
    with Ledger(ledger_location) as other:
        assert other._query("SELECT count(*) FROM rows")[0][0] == 0, "deferred: not written yet"
    ledger.begin_intent(batch_id="b1", row_key="x:1", operation="customer", idempotency_key="c-1", body={})
    ledger.record_customer(idempotency_key="c-1", key_fp="k1", email="Ana@Example.com", customer_id="cus_1", later=True)
    assert ledger.customer_for("k1", "ana@example.com", settled=False) is None  # only the deferring caller asks so
    ledger.begin_intent(batch_id="b1", row_key="x:1", operation="payout_order", idempotency_key="o-1", body={},
                        customer_id="cus_1")
    with Ledger(ledger_location) as other:  # the row's insert and the customer came with the order's intent
        assert other.customer_for("k1", "ana@example.com") == "cus_1"
        assert other.intent("c-1").state == "succeeded" and other.row("b1", "x:1").state == "in_flight"
    ledger.record_created(batch_id="b1", row_key="x:1", idempotency_key="o-1", order={"id": "po1", "reference": "1" * 16},
                          later=True)
    assert ledger.row("b1", "x:1").state == "created"  # a read writes them first
    with Ledger(ledger_location) as other:
        assert other.row("b1", "x:1").state == "created" and other.intent("o-1").state == "succeeded"


def test_postgresql_writes_a_threads_deferred_steps_only_in_that_threads_transactions(ledger, ledger_location):
    """On PostgreSQL each worker has a connection of its own: a step written by another worker's
    transaction could commit after this worker's next step on the same row.  So another thread's
    steps, intents and reads leave this thread's deferred steps alone; its own intent takes them."""
    import threading

    if not ledger.postgresql:
        pytest.skip("SQLite has one connection: any transaction writes every deferred step (test above)")
    ledger.ensure_row(batch_id="b1", row_key="x:1", row_number=2, email="a@b.mx", amount=3000, currency="MXN",
                      reason="Pago", payout_fingerprint="fp1", later=True)

    def another_worker() -> None:
        ledger.ensure_row(batch_id="b1", row_key="x:2", row_number=3, email="c@d.mx", amount=3000, currency="MXN",
                          reason="Pago", payout_fingerprint="fp2")
        ledger.begin_intent(batch_id="b1", row_key="x:2", operation="payout_order", idempotency_key="o-2", body={})
        assert ledger.row("b1", "x:1") is None
        ledger.flush()

    worker = threading.Thread(target=another_worker)
    worker.start()
    worker.join()
    with Ledger(ledger_location) as other:
        assert other.row("b1", "x:1") is None, "another thread wrote this thread's deferred step"
        assert other.row("b1", "x:2").state == "in_flight"
    ledger.begin_intent(batch_id="b1", row_key="x:1", operation="payout_order", idempotency_key="o-1", body={},
                        customer_id="cus_1")
    with Ledger(ledger_location) as other:  # inserted, then marked in flight, in one transaction
        found = other.row("b1", "x:1")
        assert (found.state, found.customer_id, found.attempts) == ("in_flight", "cus_1", 1)


def test_racing_workers_each_deferred_row_lands_before_its_own_intent(ledger):
    """Workers that defer a new row and then commit its order's intent together: whichever thread
    commits the group, every row ends ``in_flight`` with one attempt -- never an intent's update
    that found no row (both engines)."""
    def work(n: int) -> None:
        for round_ in range(20):
            key = f"x:{n}:{round_}"
            ledger.ensure_row(batch_id="b1", row_key=key, row_number=n * 10 + round_, email=f"{n}@b.mx", amount=100,
                              currency="MXN", reason="r", payout_fingerprint=key, later=True)
            ledger.begin_intent(batch_id="b1", row_key=key, operation="payout_order", idempotency_key=f"o-{key}",
                                body={}, customer_id="cus_1")
            ledger.record_created(batch_id="b1", row_key=key, idempotency_key=f"o-{key}", order={"id": f"po-{key}"},
                                  later=True)
        ledger.flush()  # a worker's last act (``RowExecutor.worker_done``)

    assert all_at_once(8, work) == []
    rows = ledger.rows("b1")
    assert len(rows) == 160
    assert {(r.state, r.attempts) for r in rows} == {("created", 1)}


def test_deferred_steps_survive_a_failed_transaction_and_are_written_by_the_next_or_on_close(ledger_location):
    with Ledger(ledger_location) as ledger:
        ledger.record_batch_start(batch_id="b1", input_name="in.csv", input_sha256="0" * 64, key_fp="k1",
                                  api_base="http://127.0.0.1", rows_total=1)
        ledger.ensure_row(batch_id="b1", row_key="x:1", row_number=2, email="a@b.mx", amount=1, currency="MXN",
                          reason="r", payout_fingerprint="fp", later=True)
        with pytest.raises(RuntimeError):
            with ledger._transaction():
                raise RuntimeError("the step failed: rolled back, the deferred insert with it")
        assert ledger.row("b1", "x:1").state == "pending"  # put back, and written by the read's flush
        ledger.record_created(batch_id="b1", row_key="x:1", idempotency_key=None, order={"id": "po1"}, later=True)
    with Ledger(ledger_location) as reopened:  # closing wrote what was still deferred
        assert reopened.row("b1", "x:1").state == "created"


def test_customers_are_remembered_per_key_and_email_case_insensitively(ledger):
    _row(ledger)
    ledger.begin_intent(batch_id="b1", row_key="x:1", operation="customer", idempotency_key="c-1", body={})
    ledger.record_customer(idempotency_key="c-1", key_fp="k1", email="Ana@Example.com", customer_id="cus_1")
    assert ledger.customer_for("k1", "ana@example.com") == "cus_1"
    assert ledger.customer_for("k2", "ana@example.com") is None


def test_earlier_payout_in_another_batch_within_window(ledger):
    _row(ledger)
    ledger.record_created(batch_id="b1", row_key="x:1", idempotency_key=None, order={"id": "po1", "reference": "1" * 16})
    def earlier(fp="fp1", key="h:other.1", key_fp="k1", since=time.time() - 60, exclude="b2"):
        return ledger.earlier_payout(payout_fingerprint=fp, row_key=key, key_fp=key_fp, since=since, exclude_batch=exclude)

    found = earlier()
    assert found is not None and found.reference == "1" * 16 and found.row_number == 2
    assert earlier(exclude="b1") is None
    assert earlier(key_fp="other", since=0) is None
    assert earlier(since=time.time() + 60) is None  # outside the window
    # the same folio is the same payment whenever it was paid, whatever its content
    assert earlier(fp="different", key="x:1", since=time.time() + 60) is not None
    assert earlier(fp="different", key="h:1", since=0) is None


def test_lock_refuses_a_live_holder_and_takes_over_a_dead_one(ledger_location):
    path = ledger_location
    Ledger(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys,time; from batch_payouts.payout.ledger import Ledger; l=Ledger(sys.argv[1]); l.acquire_lock('b1');"
         "print('locked', flush=True); time.sleep(60)", str(path)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with Ledger(path) as mine, pytest.raises(BatchError) as info:
            mine.acquire_lock("b1")
        assert str(holder.pid) in info.value.message("es")
        assert info.value.exit_code == 75  # "try later", not a bad file (2)
        with Ledger(path) as mine, pytest.raises(BatchError):
            mine.acquire_lock("b1", wait=0.3)  # waited, still held: refused all the same
    finally:
        holder.kill()
        holder.wait()
    with Ledger(path) as mine:
        mine.acquire_lock("b1")  # the holder died (kill -9): its lock is stale, not forever


def test_foreign_and_corrupt_files_are_refused_and_left_untouched(tmp_path):
    foreign = tmp_path / "other.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(os.urandom(4096))
    for path in (foreign, garbage):
        before = path.read_bytes()
        with pytest.raises(BatchError):
            Ledger(path)
        assert path.read_bytes() == before


def test_key_fingerprint_is_one_way_and_stable():
    fp = key_fingerprint("key_secret_value_123")
    assert fp == key_fingerprint("key_secret_value_123")
    assert "secret" not in fp and len(fp) == 16
    assert fp != key_fingerprint("key_other")


def test_batches_are_found_by_id_prefix_and_results_path(ledger, tmp_path):
    out = tmp_path / "pagos.results.xlsx"
    out.write_text("x")
    ledger.set_output("b1", out, "2.0.0")
    assert ledger.find_batch("b1").batch_id == "b1"
    assert ledger.find_batch(str(out)).batch_id == "b1"
    assert ledger.find_batch("nope") is None
    ledger.record_batch_start(batch_id="abcdef123456", input_name="x.csv", input_sha256="1" * 64, key_fp="k1",
                              api_base="http://127.0.0.1", rows_total=1)
    assert ledger.find_batch("abcdef").batch_id == "abcdef123456"


def test_batch_listing_counts_and_status_updates(ledger):
    _row(ledger)
    _row(ledger, key="x:2", number=3)
    ledger.record_created(batch_id="b1", row_key="x:1", idempotency_key=None, order={"id": "po1", "reference": "1" * 16})
    (listing,) = ledger.batches()
    # the row never sent is "pending" (not sent), no longer counted as failed; nothing is unconfirmed
    assert (listing.counts.created, listing.counts.failed, listing.counts.pending) == (1, 0, 1)
    assert listing.totals_created == {"MXN": 3000} and listing.amount_created == 3000
    assert listing.counts.unconfirmed == listing.counts.as_json()["unknown"] == 0
    ledger.update_order_status("b1", "x:1", "cancelled", cancelled=True)
    row = ledger.row("b1", "x:1")
    assert row.order_status == "cancelled" and row.cancelled_at and row.status_checked_at
    assert [p["payout_order_id"] for p in ledger.payouts_between(0, time.time() + 1)] == ["po1"]
    assert ledger.payouts_between(time.time() + 10, time.time() + 20) == []


def test_a_batch_is_a_typed_read_only_record_with_its_mode_and_totals_per_currency(ledger):
    import dataclasses

    for key, number, amount, currency in (("x:1", 2, 150000, "MXN"), ("x:2", 3, 2000, "USD"), ("x:3", 4, 500, "MXN")):
        ledger.ensure_row(batch_id="b1", row_key=key, row_number=number, email=f"{number}@ejemplo.mx", amount=amount,
                          currency=currency, reason="Pago", payout_fingerprint=f"fp{number}")
        ledger.record_created(batch_id="b1", row_key=key, idempotency_key=None, order={"id": key, "reference": "1" * 16})
    assert ledger.batch("b1").livemode is None
    ledger.set_livemode("b1", False)
    batch = ledger.batch("b1")
    assert (batch.batch_id, batch.input_name, batch.rows_total, batch.runs, batch.livemode) == ("b1", "in.csv", 1, 1, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        batch.livemode = True  # type: ignore[misc]
    (listing,) = ledger.batches()
    assert listing.totals_created == {"MXN": 150500, "USD": 2000}  # pesos and dollars never added together
    assert listing.counts.created == 3 and listing.livemode is False


def old_ledger(path, steps: int):
    """A ledger as a version that knew only the first ``steps`` migrations left it."""
    import batch_payouts.payout.ledger_schema as module

    saved = module.MIGRATIONS
    try:
        module.MIGRATIONS = saved[:steps]
        Ledger(path).close()
    finally:
        module.MIGRATIONS = saved
    return path


def test_migrations_upgrade_an_older_ledger(tmp_path):
    import batch_payouts.payout.ledger_schema as module

    path = old_ledger(tmp_path / "old.sqlite", steps=1)
    with Ledger(path) as upgraded:
        assert upgraded._query("PRAGMA user_version")[0][0] == len(module.MIGRATIONS)
        assert upgraded.batches() == []


def test_a_ledger_from_before_error_params_opens_and_keeps_its_failures(tmp_path):
    """Step 3 adds the nullable ``error_params``: a failure stored before it keeps its message, and
    new failures keep the parameters the message is rendered from."""
    path = old_ledger(tmp_path / "v2.sqlite", steps=2)
    with sqlite3.connect(path) as conn:  # a failure written by the version before step 3
        conn.execute("INSERT INTO batches (batch_id, input_name, input_sha256, key_fingerprint, api_base, rows_total,"
                     " operator, host, first_run_at, last_run_at) VALUES ('b1','in.csv','0','k1','x',2,'op','h',0,0)")
        conn.execute("INSERT INTO rows (batch_id, row_key, row_number, email, amount, currency, reason,"
                     " payout_fingerprint, state, error_code, error_message, updated_at)"
                     " VALUES ('b1','x:1',2,'a@b.mx',3000,'MXN','Pago','fp1','failed','conekta.errors.x',"
                     " 'Conekta rechazó la orden',0)")
    with Ledger(path) as upgraded:
        entry = upgraded.row("b1", "x:1")
        assert (entry.error_message, entry.error_params) == ("Conekta rechazó la orden", None)
        _row(upgraded, key="x:2", number=3)
        params = {"text": "refused", "what": "payout_order", "http_status": 422, "message": "Monto inválido"}
        upgraded.record_failure(batch_id="b1", row_key="x:2", idempotency_key=None, state="failed",
                                error_code="conekta.errors.y", error_message="…", error_params=params)
        assert upgraded.row("b1", "x:2").error_params == params


FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("version", [1, 2, 3])
def test_a_ledger_written_before_alembic_upgrades_in_place_with_its_history(tmp_path, version):
    """The committed ledgers were written by the SQLite-only ledger (fixtures/make_legacy_ledgers.py):
    opened now, each is stamped at its PRAGMA user_version, upgraded, and keeps every record."""
    import shutil

    from batch_payouts.payout import ledger_schema

    path = shutil.copy(FIXTURES / f"legacy-v{version}.sqlite", tmp_path / "old.sqlite")
    batch = "a" * 64
    with Ledger(path) as upgraded:
        assert upgraded._query("SELECT version_num FROM alembic_version")[0][0] == ledger_schema.head_revision()
        assert upgraded._query("PRAGMA user_version")[0][0] == len(ledger_schema.MIGRATIONS)
        rows = {r.row_key: r for r in upgraded.rows(batch)}
        assert {k: r.state for k, r in rows.items()} == {"x:F-2": "created", "x:F-3": "failed", "x:F-4": "in_flight"}
        assert rows["x:F-2"].reference == "0123456789012345" and rows["x:F-3"].error_message == "Monto inválido"
        assert upgraded.customer_for("kf1", "ana@ejemplo.mx") == "cus_ana"
        assert upgraded.intent("ik-o-2").request_body == {"amount": 150000, "currency": "MXN", "note": "añadido"}
        assert upgraded.batch(batch).livemode is False and upgraded.batch(batch).input_name == "pagos-marzo.csv"
        if version >= 2:
            assert upgraded.audit_head(__import__("pathlib").Path("/srv/pagos/pagos-marzo.audit.jsonl"))["lines"] == 7
        # the stale lock row of a dead holder on another host is still shown, and new work goes on
        _row(upgraded, key="x:F-9", number=9, batch=batch)
        upgraded.record_failure(batch_id=batch, row_key="x:F-9", idempotency_key=None, state="failed",
                                error_code="e", error_message="m", error_params={"a": 1})
        assert upgraded.row(batch, "x:F-9").error_params == {"a": 1}
    with Ledger(path) as again:  # up to date now: opened without another upgrade
        assert len(again.rows(batch)) == 4


def test_every_migration_step_is_an_alembic_revision():
    """A step appended to MIGRATIONS needs its revision file (docs/DEVELOPMENT.md says how)."""
    from alembic.script import ScriptDirectory

    from batch_payouts.payout import ledger_schema

    script = ScriptDirectory.from_config(ledger_schema.alembic_config())
    assert script.get_current_head() == ledger_schema.head_revision(), (
        f"add batch_payouts/payout/migrations/versions/{ledger_schema.head_revision()}.py running "
        f"run_step({len(ledger_schema.MIGRATIONS)})")


def test_postgresql_types_are_fixed_and_placeholders_translated():
    from batch_payouts.payout.ledger_db import _to_psycopg
    from batch_payouts.payout.ledger_schema import step_statements

    (create,) = step_statements("CREATE TABLE t (id INTEGER PRIMARY KEY, at REAL NOT NULL, n INTEGER);", "postgresql")
    assert create == "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, at DOUBLE PRECISION NOT NULL, n BIGINT)"
    assert step_statements("CREATE TABLE t (at REAL)", "sqlite") == ["CREATE TABLE t (at REAL)"]
    assert _to_psycopg("SELECT * FROM t WHERE a=? AND b LIKE '50%?' AND c=?") == \
        "SELECT * FROM t WHERE a=%s AND b LIKE '50%%?' AND c=%s"



def test_a_steps_postgresql_only_statement_and_a_function_body_keep_together():
    from batch_payouts.payout.ledger_schema import POSTGRESQL_ONLY, step_statements

    sql = f"""CREATE TABLE t (n INTEGER);
    {POSTGRESQL_ONLY} CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
    CREATE INDEX t_n ON t (n);"""
    assert step_statements(sql, "sqlite") == ["CREATE TABLE t (n INTEGER)", "CREATE INDEX t_n ON t (n)"]
    assert step_statements(sql, "postgresql") == [
        "CREATE TABLE t (n BIGINT)", "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
        "CREATE INDEX t_n ON t (n)"]

def test_an_empty_postgresql_database_gets_the_tables_and_a_foreign_one_is_refused(pg_cluster):
    from batch_payouts.payout import ledger_schema

    url = pg_cluster.new_database(template="template0")
    with Ledger(url) as fresh:
        assert fresh._query("SELECT version_num FROM alembic_version")[0][0] == ledger_schema.head_revision()
        assert fresh.batches() == []
    foreign = pg_cluster.new_database(template="template0")
    pg_cluster.sql("CREATE TABLE batches (x int)", foreign.rsplit("/", 1)[1])
    with pytest.raises(BatchError) as info:
        Ledger(foreign)
    assert info.value.exit_code == 2
    assert pg_cluster.sql("SELECT count(*) FROM batches", foreign.rsplit("/", 1)[1]) == [(0,)]


def test_an_unreachable_server_is_a_clear_message_without_the_password(pg_cluster):
    url = f"postgresql://postgres:S3cretPw@127.0.0.1:{pg_cluster.port}/no_such_db"
    with pytest.raises(BatchError) as info:
        Ledger(url)
    message = info.value.message("en")
    assert "no_such_db" in message and "S3cretPw" not in message and "***" in message


def test_rows_read_in_bulk_are_the_rows_read_one_by_one(ledger):
    """``rows``/``outcome_rows`` convert by position (a rerun reads every row): the same records
    ``from_row`` builds by column name, every field; outcome rows keep defaults for what they skip."""
    from dataclasses import fields

    from batch_payouts.payout.records import LedgerRow

    _row(ledger)
    _row(ledger, key="x:2", number=3)
    ledger.record_failure(batch_id="b1", row_key="x:2", idempotency_key=None, state="failed",
                          error_code="e", error_message="m", error_params={"a": 1})
    one_by_one = {r["row_key"]: LedgerRow.from_row(r) for r in ledger._query("SELECT * FROM rows WHERE batch_id='b1'")}
    assert {r.row_key: r for r in ledger.rows("b1")} == one_by_one
    outcomes = ledger.outcome_rows("b1")
    assert outcomes["x:2"].error_params == {"a": 1} and outcomes["x:2"].batch_id == "b1"
    for key, row in outcomes.items():
        for f in fields(LedgerRow):
            expected = getattr(one_by_one[key], f.name)
            assert getattr(row, f.name) in (expected, f.default), (key, f.name)


def test_batch_wide_reads_and_settling_cross_the_500_value_chunks(ledger):
    """``customers_of`` and ``settle_unsent`` take more values than one statement may (chunks of 500)."""
    _row(ledger)
    for n in range(0, 1200, 7):
        ledger.record_customer(idempotency_key=f"c-{n}", key_fp="k1", email=f"P{n}@x.mx", customer_id=f"cus_{n}")
    found = ledger.customers_of("k1", [f"p{n}@X.mx" for n in range(1200)])
    assert found == {f"p{n}@x.mx": f"cus_{n}" for n in range(0, 1200, 7)}
    keys = [f"u-{n}" for n in range(1200)]
    ledger.begin_intents(batch_id="b1", operation="customer", requests=[("x:1", key, {}) for key in keys])
    ledger.settle_unsent(keys)
    assert {ledger.intent(key).state for key in keys} == {"failed"}
