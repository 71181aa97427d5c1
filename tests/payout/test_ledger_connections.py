"""The ledger's connections: on PostgreSQL each thread's step has a connection of its own (a small
pool), so workers overlap; on both engines a step is one transaction that reads its own writes,
and a step that fails leaves nothing behind and does not spoil the next one."""

import threading

import pytest

from batch_payouts.payout import ledger_db
from batch_payouts.payout.ledger import Ledger
from conftest import all_at_once


def _start(ledger: Ledger, batch: str = "b1", rows: int = 1) -> None:
    ledger.record_batch_start(batch_id=batch, input_name="in.csv", input_sha256="0" * 64, key_fp="k1",
                              api_base="http://127.0.0.1", rows_total=rows)


def _row(ledger: Ledger, n: int, batch: str = "b1") -> None:
    ledger.ensure_row(batch_id=batch, row_key=f"x:{n}", row_number=n + 2, email=f"p{n}@ejemplo.mx", amount=1000 + n,
                      currency="MXN", reason="Pago", payout_fingerprint=f"fp{n}")


def _state(ledger: Ledger, n: int) -> str:
    return ledger.row("b1", f"x:{n}").state


def test_on_postgresql_a_step_of_one_worker_does_not_wait_for_another_workers_open_step(pg_cluster):
    """Worker A opens a step and holds it; worker B's whole step (and its reads) completes meanwhile,
    without seeing A's uncommitted write.  With one connection behind one lock B would wait for A."""
    with Ledger(pg_cluster.new_database()) as ledger:
        _start(ledger, rows=2)
        _row(ledger, 1)
        _row(ledger, 2)
        a_inside, b_done, errors = threading.Event(), threading.Event(), []

        def worker_a() -> None:
            try:
                with ledger._transaction() as conn:
                    conn.execute("UPDATE rows SET state='failed' WHERE row_key=?", ("x:1",))
                    a_inside.set()
                    assert b_done.wait(60), "B's step waited for A's"
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        a = threading.Thread(target=worker_a)
        a.start()
        assert a_inside.wait(60)
        ledger.record_duplicate(batch_id="b1", row_key="x:2", message="repetido")
        seen_by_b = _state(ledger, 1)
        b_done.set()
        a.join()
        assert errors == []
        assert seen_by_b == "pending"  # A had not committed yet
        assert (_state(ledger, 1), _state(ledger, 2)) == ("failed", "duplicate")


def test_a_read_inside_a_step_sees_what_the_step_wrote(ledger_location):
    with Ledger(ledger_location) as ledger:
        _start(ledger)
        _row(ledger, 1)
        with ledger._transaction() as conn:
            conn.execute("UPDATE rows SET state='failed' WHERE row_key=?", ("x:1",))
            assert _state(ledger, 1) == "failed"  # the same connection, inside the same transaction
            assert conn.execute("SELECT state FROM rows WHERE row_key=?", ("x:1",)).fetchone()["state"] == "failed"


@pytest.mark.parametrize("failure", ["sql", "python", "together"])
def test_a_step_that_fails_commits_nothing_and_the_next_step_works(ledger_location, failure):
    """A plain step (PostgreSQL: pipelined between BEGIN and COMMIT) and a ``together`` step
    (PostgreSQL: its writes sent as one statement) are all-or-nothing."""
    with Ledger(ledger_location) as ledger:
        _start(ledger)
        _row(ledger, 1)
        with pytest.raises(Exception) as raised:
            with ledger._transaction(together=failure == "together") as conn:
                conn.execute("UPDATE rows SET state='failed' WHERE row_key=?", ("x:1",))
                if failure in ("sql", "together"):  # the same batch again: its primary key refuses it
                    conn.execute("INSERT INTO batches (batch_id, input_name, input_sha256, key_fingerprint, api_base, "
                                 "rows_total, operator, host, first_run_at, last_run_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                                 ("b1", "x", "0", "k", "a", 1, "o", "h", 0, 0))
                else:
                    raise ValueError("a step that stops half-way")
                if failure != "together":
                    conn.execute("UPDATE rows SET state='created' WHERE row_key=?", ("x:1",))
        assert failure == "python" or not isinstance(raised.value, ValueError)
        assert _state(ledger, 1) == "pending"
        ledger.record_duplicate(batch_id="b1", row_key="x:1", message="repetido")
        assert _state(ledger, 1) == "duplicate"


def test_more_workers_than_the_pool_holds_all_get_their_steps_done(pg_cluster, monkeypatch):
    """Twelve workers on a pool of three connections: each waits for a free one, none is lost,
    and the ledger never opens more than three."""
    monkeypatch.setattr(ledger_db, "POOL_SIZE", 3)
    with Ledger(pg_cluster.new_database()) as ledger:
        _start(ledger, rows=12)
        def worker(n: int) -> None:
            _row(ledger, n)
            ledger.begin_intent(batch_id="b1", row_key=f"x:{n}", operation="payout_order",
                                idempotency_key=f"o-{n}", body={"amount": 1000 + n})
            ledger.record_created(batch_id="b1", row_key=f"x:{n}", idempotency_key=f"o-{n}",
                                  order={"id": f"ord_{n}", "reference": f"{n:016d}"})

        assert all_at_once(12, worker) == []
        assert set(ledger.row_states("b1").values()) == {"created"}
        assert ledger._db._opened <= 3


def test_a_connection_the_server_dropped_fails_one_step_then_is_replaced(pg_cluster):
    """A server restart or an idle timeout ends a pooled connection: the step that meets it fails
    (and says so), the connection leaves the pool, and the next step opens a fresh one."""
    import psycopg

    url = pg_cluster.new_database()
    with Ledger(url) as ledger:
        _start(ledger)
        _row(ledger, 1)
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        with pytest.raises(psycopg.OperationalError):
            ledger.record_duplicate(batch_id="b1", row_key="x:1", message="repetido")
        ledger.record_duplicate(batch_id="b1", row_key="x:1", message="repetido")
        assert _state(ledger, 1) == "duplicate"
