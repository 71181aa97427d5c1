"""A PostgreSQL transaction sent as one message (``ledger_script``): what the group commit of
intents travels as.  Real PostgreSQL (the session's throwaway cluster)."""

from __future__ import annotations

import pytest

from batch_payouts.payout import ledger_script
from batch_payouts.payout.ledger import Ledger
from batch_payouts.payout.ledger_script import Script, _numbered


@pytest.fixture
def ledger(pg_cluster):
    with Ledger(pg_cluster.new_database()) as opened:
        opened.record_batch_start(batch_id="b1", input_name="in.csv", input_sha256="0" * 64, key_fp="k1",
                                  api_base="http://127.0.0.1", rows_total=3)
        yield opened


INSERT = ("INSERT INTO customers (key_fingerprint, email, customer_id, created_at) VALUES (?,?,?,?) "
          "RETURNING email, customer_id")


def _run(ledger, statements, durable=True):
    with ledger._db.session() as conn:
        script = Script()
        results = [script.execute(sql, params) for sql, params in statements]
        script.run(conn, durable)
        return results, dict(conn.prepared)


def test_a_script_returns_each_statements_rows_and_prepares_each_statement_once(ledger):
    awkward = "o'Brien\\%?;\n«ñ» --x"
    results, prepared = _run(ledger, [
        (INSERT, ("k1", "a@x.mx", awkward, 1.5)),
        ("UPDATE customers SET created_at=? WHERE email=?", (2.25, "a@x.mx")),
        (INSERT, ("k1", "b@x.mx", "cus_b", 3)),
    ])
    assert [[tuple(r) for r in result.fetchall()] for result in results] == [
        [("a@x.mx", awkward)], [], [("b@x.mx", "cus_b")]]
    assert results[0].fetchall()[0]["customer_id"] == awkward
    assert sorted(prepared) == sorted({INSERT, "UPDATE customers SET created_at=? WHERE email=?"})
    again, prepared_again = _run(ledger, [(INSERT, ("k1", "c@x.mx", "cus_c", 4)),  # no PREPARE the second time
                                          ("UPDATE customers SET created_at=? WHERE email=?", (9, None))])
    assert prepared_again == prepared and [tuple(r) for r in again[0].fetchall()] == [("c@x.mx", "cus_c")]
    stored = ledger._query("SELECT email, customer_id, created_at FROM customers ORDER BY email")
    assert [tuple(r) for r in stored] == [("a@x.mx", awkward, 2.25), ("b@x.mx", "cus_b", 3.0), ("c@x.mx", "cus_c", 4.0)]


def test_a_failing_statement_undoes_the_whole_script_and_the_connection_starts_afresh(ledger):
    _run(ledger, [(INSERT, ("k1", "a@x.mx", "cus_a", 1))])
    with pytest.raises(Exception, match="customers_pkey|duplicate key"):
        _run(ledger, [(INSERT, ("k1", "z@x.mx", "cus_z", 1)),
                      ("UPDATE customers SET created_at=? WHERE email=?", (5, "a@x.mx")),
                      (INSERT, ("k1", "a@x.mx", "cus_again", 1))])  # the same key: refused
    assert [tuple(r) for r in ledger._query("SELECT email, created_at FROM customers")] == [("a@x.mx", 1.0)]
    results, prepared = _run(ledger, [(INSERT, ("k1", "b@x.mx", "cus_b", 2))])  # prepared again, as new
    assert [tuple(r) for r in results[0].fetchall()] == [("b@x.mx", "cus_b")] and list(prepared) == [INSERT]


def test_past_the_prepared_limit_a_statement_travels_unprepared(ledger, monkeypatch):
    monkeypatch.setattr(ledger_script, "MAX_PREPARED", 1)
    results, prepared = _run(ledger, [(INSERT, ("k1", "a@x.mx", "cus_a", 1)),
                                      ("SELECT email FROM customers WHERE email=?", ("a@x.mx",))])
    assert list(prepared) == [INSERT] and [tuple(r) for r in results[1].fetchall()] == [("a@x.mx",)]


def test_a_group_commit_on_postgresql_travels_as_a_script(ledger):
    """The intents of a group, with the steps their threads deferred, go through ``ledger_script``
    (the statements it prepared are kept by the connection)."""
    ledger.ensure_row(batch_id="b1", row_key="x:1", row_number=2, email="a@x.mx", amount=100, currency="MXN",
                      reason="r", payout_fingerprint="fp", later=True)
    intent = ledger.begin_intent(batch_id="b1", row_key="x:1", operation="payout_order", idempotency_key="k-1",
                                 body={"amount": 100}, customer_id="cus_1")
    assert intent.request_body == {"amount": 100} and ledger.row("b1", "x:1").state == "in_flight"
    with ledger._db.session() as conn:
        assert any(sql.startswith("INSERT INTO intents") for sql in conn.prepared)


def test_placeholders_are_numbered_outside_quotes_and_percent_signs_stay():
    assert _numbered("SELECT '?%' || ?, ? LIKE 'a%'") == "SELECT '?%' || $1, $2 LIKE 'a%'"
