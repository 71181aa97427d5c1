"""Exactly once, as a property: any batch, any mix of API faults.

Hypothesis generates a small batch (some rows sharing an email, some with a
folio, sometimes an invalid row) and a fault schedule for the sandbox (5xx,
429, HTML 502 pages, answers dropped / stalled / truncated / answered 500 or
409 *after* the order was created, orders answered with ``reference: null``,
an account that ignores the Idempotency-Key, and a script placing faults on
exact POSTs), with a seed.  The real job runs in-process against the real HTTP
sandbox; rows left in doubt (or not sent, or without a reference) are rerun
without the transient faults (an account that ignores the key keeps ignoring
it), at most twice: three runs in all.  Then the sandbox's own record is the
judge:

* exactly one payout order per valid row, none for invalid rows;
* each order carries the row's amount, currency, reason and customer email;
* the results sheet, the ledger and the server agree on every payout order
  id, reference and amount.

Every row carries a ``meta_fila`` column (sent as ``metadata.fila``), so an
order can be traced back to its row without trusting the tool's own row keys.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_payouts.errors import BatchError
from batch_payouts.jobs.load import RunOptions
from batch_payouts.jobs.run import run_job
from batch_payouts.payout.ledger import Ledger
from batch_payouts.sandbox import FAULT_KINDS, Faults, Sandbox
from conftest import API_KEY, read_xlsx, write_csv

ENV = {"CONEKTA_API_KEY": API_KEY}
EMAILS = ["ana@ejemplo.mx", "beto@ejemplo.mx", "Carla.Diaz@ejemplo.mx", "dani@ejemplo.mx"]
RETRYABLE = {"api_unavailable", "not_sent", "outcome_unknown"}
MAX_RERUNS = 2
# More examples when hunting bugs locally: RELIABILITY_EXAMPLES=500 pytest tests/test_reliability_property.py
EXAMPLES = int(os.environ.get("RELIABILITY_EXAMPLES", "25"))

rates = st.sampled_from([0.0, 0.0, 0.05, 0.15, 0.3])


@st.composite
def batches(draw):
    """Rows that are valid by construction (unique reasons), plus optionally one invalid row."""
    count = draw(st.integers(1, 6))
    with_folio = draw(st.booleans())
    rows = []
    for i in range(count):
        row = {
            "nombre": f"Beneficiaria {i}",
            "correo": EMAILS[draw(st.integers(0, len(EMAILS) - 1))],
            "monto": str(100 * draw(st.integers(1, 50_000))),
            "moneda": "MXN",
            "motivo": f"Apoyo {i}",
            "folio": f"F-{i:03d}" if with_folio and draw(st.booleans()) else "",
            "meta_fila": str(i),
        }
        rows.append(row)
    invalid_at = draw(st.none() | st.integers(0, count))
    if invalid_at is not None:  # not a multiple of 100: refused by validation, never sent
        rows.insert(invalid_at, {"nombre": "Mal Monto", "correo": "mal@ejemplo.mx", "monto": "1050",
                                 "moneda": "MXN", "motivo": "Invalido", "folio": "", "meta_fila": "bad"})
    return rows


@st.composite
def fault_schedules(draw):
    return Faults(
        error_rate=draw(rates),
        html_502_rate=draw(rates),
        throttle_rate=draw(st.sampled_from([0.0, 0.0, 0.0, 0.03])),  # each 429 pauses every worker >= 1 s
        drop_after_commit_rate=draw(rates),
        truncated_json_rate=draw(rates),
        stall_after_commit_rate=draw(st.sampled_from([0.0, 0.05, 0.15])),
        stall_seconds=0.25,
        error_after_commit_rate=draw(rates),
        conflict_rate=draw(rates),
        null_reference_rate=draw(rates),
        reference_delay_gets=draw(st.integers(0, 5)),  # more than the run's re-reads: settled by a rerun
        ignore_idempotency_key=draw(st.booleans()),
        script=draw(st.dictionaries(st.integers(1, 14), st.sampled_from(FAULT_KINDS), max_size=4)),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def _run(folder: Path, source: Path, output: Path, url: str, workers: int, lang: str = "es", ledger=None):
    options = RunOptions(
        input_path=source, output_path=output, ledger_path=ledger or folder / "ledger.sqlite", api_base=url,
        workers=workers, initial_backoff=0.001, read_timeout=0.12, max_retries=4, lang=lang,
    )
    try:
        return run_job(options, environ=ENV)
    except BatchError as error:  # e.g. the balance could not be read: nothing sent, rerun
        assert error.exit_code == 2
        return None


def _read_output(path: Path) -> list[dict]:
    if path.suffix == ".xlsx":
        return [{k: ("" if v is None else str(v)) for k, v in row.items()} for row in read_xlsx(path)]
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _needs_rerun(result) -> bool:
    if result is None:
        return True
    return any(
        status == "unknown" or (status == "failed" and code in RETRYABLE) or code == "reference_pending"
        for status, code in zip(result.frame["status"], result.frame["error_code"])
    )


def check_exactly_once(sandbox: Sandbox, rows: list[dict], output: Path, ledger_path: Path, batch_id: str) -> None:
    valid = [r for r in rows if r["meta_fila"] != "bad"]
    orders = sandbox.payout_orders()
    by_fila = Counter(o["metadata"].get("fila") for o in orders)
    assert all(n == 1 for n in by_fila.values()), f"paid twice: {by_fila}"
    assert sorted(by_fila) == sorted(r["meta_fila"] for r in valid), "an order missing, or sent for an invalid row"
    keys = Counter(o["metadata"]["row_key"] for o in orders)
    assert all(n == 1 for n in keys.values())
    order_of = {o["metadata"]["fila"]: o for o in orders}

    sheet = _read_output(output)
    assert len(sheet) == len(rows)
    with Ledger(ledger_path) as ledger:
        ledger_rows = {r.row_number: r for r in ledger.rows(batch_id)}
    assert len(ledger_rows) == len(valid)
    for number, (row, line) in enumerate(zip(rows, sheet), start=2):
        assert line["row"] == str(number)
        if row["meta_fila"] == "bad":
            assert line["status"] == "invalid"
            assert number not in ledger_rows
            continue
        order = order_of[row["meta_fila"]]
        assert line["status"] == "created", line
        assert order["amount"] == int(row["monto"])
        assert order["currency"] == row["moneda"]
        assert order["reason"] == row["motivo"]
        assert order["customer_info"]["email"].lower() == row["correo"].lower()
        assert order["metadata"]["batch_id"] == batch_id
        if row["folio"]:
            assert order["metadata"]["row_key"] == f"x:{row['folio']}"
        entry = ledger_rows[number]
        assert entry.state == "created"
        assert entry.row_key == order["metadata"]["row_key"]
        assert line["payout_order_id"] == entry.payout_order_id == order["id"]
        assert line["reference"] == entry.reference == order["reference"]
        assert len(order["reference"]) == 16 and order["reference"].isdigit()
        assert entry.amount == order["amount"]
        assert line["customer_id"] == entry.customer_id == order["customer_info"]["id"]


def _run_then_rerun_without_faults(sandbox, folder: Path, source: Path, output: Path, workers: int, ledger=None):
    """One run under the sandbox's faults, then reruns without them until nothing is left to settle.
    An account that ignores the Idempotency-Key is an account, not a fault: it keeps ignoring it."""
    result = _run(folder, source, output, sandbox.url, workers, ledger=ledger)
    sandbox.set_faults(Faults(ignore_idempotency_key=sandbox.faults.ignore_idempotency_key))
    for _ in range(MAX_RERUNS):
        if not _needs_rerun(result):
            break
        result = _run(folder, source, output, sandbox.url, workers, ledger=ledger)
    return result


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=batches(), faults=fault_schedules(), workers=st.sampled_from([1, 8]),
       output_ext=st.sampled_from([".csv", ".xlsx"]))
def test_any_batch_under_any_faults_is_paid_exactly_once(new_ledger, rows, faults, workers, output_ext):
    """On both ledger engines (``new_ledger``: a file, or a fresh PostgreSQL database per example)."""
    with tempfile.TemporaryDirectory() as name, Sandbox(faults=faults) as sandbox:
        folder = Path(name)
        ledger = new_ledger(folder)
        source = write_csv(folder / "pagos.csv", rows)
        output = folder / f"pagos.results{output_ext}"
        result = _run_then_rerun_without_faults(sandbox, folder, source, output, workers, ledger=ledger)
        assert result is not None and not _needs_rerun(result), list(zip(result.frame["status"], result.frame["error_code"]))
        check_exactly_once(sandbox, rows, output, ledger, result.batch_id)
        assert result.exit_code == (1 if any(r["meta_fila"] == "bad" for r in rows) else 0)


@settings(max_examples=6, deadline=None)
@given(rows=batches(), workers=st.sampled_from([1, 8]), seed=st.integers(0, 1000))
def test_every_first_answer_lost_still_pays_once(new_ledger, rows, workers, seed):
    """The worst single fault: every write is carried out and its answer lost on the first try."""
    posts = 2 * len(rows) + 2
    script = {n: "drop_after_commit" for n in range(1, posts + 1, 2)}
    with tempfile.TemporaryDirectory() as name, Sandbox(faults=Faults(script=script, seed=seed)) as sandbox:
        folder = Path(name)
        source = write_csv(folder / "pagos.csv", rows)
        output = folder / "pagos.results.csv"
        ledger = new_ledger(folder)
        result = _run_then_rerun_without_faults(sandbox, folder, source, output, workers, ledger=ledger)
        check_exactly_once(sandbox, rows, output, ledger, result.batch_id)


def test_an_order_in_doubt_is_resolved_by_the_reruns_lookup_not_resent():
    """The order POST is carried out and its answer lost, and the search that could settle it
    fails: the row is ``unknown`` and the POST is not sent again; the rerun finds the order by its
    row_key and sends nothing."""
    rows = [_row(0)]
    faults = Faults(script={2: "drop_after_commit"}, search_error_rate=1.0)  # POST 1: customer; 2: the order
    with tempfile.TemporaryDirectory() as name, Sandbox(faults=faults) as sandbox:
        folder = Path(name)
        source = write_csv(folder / "pagos.csv", rows)
        output = folder / "pagos.results.csv"
        first = _run(folder, source, output, sandbox.url, 1)
        assert list(first.frame["status"]) == ["unknown"]
        assert len(sandbox.payout_orders()) == 1
        assert sum(1 for r in sandbox.request_log if r["method"] == "POST") == 2  # never resent
        sandbox.set_faults(Faults())
        posts_before = sum(1 for r in sandbox.request_log if r["method"] == "POST")
        second = _run(folder, source, output, sandbox.url, 1)
        assert list(second.frame["status"]) == ["created"]
        assert sum(1 for r in sandbox.request_log if r["method"] == "POST") == posts_before
        check_exactly_once(sandbox, rows, output, folder / "ledger.sqlite", second.batch_id)


@pytest.mark.parametrize("ignores_key", [False, True])
def test_a_customer_in_doubt_is_not_created_again_for_the_next_row_with_that_email(ignores_key):
    """Regression: the customer's Idempotency-Key was per row, so after a customer POST left in doubt
    the next row with the same email created a second customer for the same person.  An account may
    ignore the key, so the next row and the rerun search by email before sending it again; while the
    search is down the next row is not sent (nothing was done), and the rerun pays both rows."""
    rows = [_row(0, motivo="Uno"), _row(1, monto="20000", motivo="Dos")]
    faults = Faults(ignore_idempotency_key=ignores_key, script={1: "drop_after_commit"}, search_error_rate=1.0)
    with tempfile.TemporaryDirectory() as name, Sandbox(faults=faults) as sandbox:
        folder = Path(name)
        source = write_csv(folder / "pagos.csv", rows)
        output = folder / "pagos.results.csv"
        first = _run(folder, source, output, sandbox.url, 1)
        assert list(first.frame["status"]) == ["unknown", "failed"]
        assert list(first.frame["error_code"]) == ["outcome_unknown", "api_unavailable"]
        assert len(sandbox.customers()) == 1 and sandbox.payout_orders() == []
        sandbox.set_faults(Faults(ignore_idempotency_key=ignores_key))
        second = _run(folder, source, output, sandbox.url, 1)
        check_exactly_once(sandbox, rows, output, folder / "ledger.sqlite", second.batch_id)
        assert len(sandbox.customers()) == 1, [c["id"] for c in sandbox.customers()]


# -- issue 12: an account that ignores the Idempotency-Key, 409, reference null ---------------------
def _row(i: int, **overrides) -> dict:
    row = {"nombre": "Ana", "correo": "ana@ejemplo.mx", "monto": "10000", "moneda": "MXN",
           "motivo": "Apoyo", "folio": "", "meta_fila": str(i)}
    return {**row, **overrides}


def _many(count: int) -> list[dict]:
    return [_row(i, nombre=f"Persona {i}", correo=f"p{i}@ejemplo.mx", monto=str(100 * (100 + i)),
                 motivo=f"Apoyo {i}") for i in range(count)]


@pytest.mark.parametrize(
    ("count", "faults"),
    [
        (150, Faults(ignore_idempotency_key=True, drop_after_commit_rate=0.15, seed=12)),
        (60, Faults(ignore_idempotency_key=True, error_after_commit_rate=0.2, seed=13)),
        (60, Faults(ignore_idempotency_key=True, truncated_json_rate=0.15, error_rate=0.1, seed=14)),
    ],
    ids=["commit-then-drop", "commit-then-500", "truncated-and-5xx"],
)
def test_an_account_that_ignores_the_key_is_paid_exactly_once_in_one_run(count, faults):
    """Every lost or failed answer after commit is settled in the same run by a lookup, never by
    resending: exactly one order (and one customer) per row after ONE run."""
    rows = _many(count)
    with tempfile.TemporaryDirectory() as name, Sandbox(faults=faults) as sandbox:
        folder = Path(name)
        source = write_csv(folder / "pagos.csv", rows)
        output = folder / "pagos.results.csv"
        result = _run(folder, source, output, sandbox.url, 8)
        assert sum(1 for r in sandbox.request_log if r["fault"]) >= count // 20  # the faults did happen
        assert len(sandbox.payout_orders()) == count
        assert len(sandbox.customers()) == count
        check_exactly_once(sandbox, rows, output, folder / "ledger.sqlite", result.batch_id)
        assert result.exit_code == 0


def test_a_409_on_the_order_is_in_doubt_then_settled_never_refused(env, cli):
    """409 "same key still in progress": the order exists.  The run waits, looks it up and records
    it created; no message says Conekta refused it, and reconcile finds no orphan."""
    rows = [_row(0), _row(1, correo="beto@ejemplo.mx", motivo="Otro")]
    with Sandbox(faults=Faults(script={2: "conflict_409", 4: "conflict_409"})) as sandbox:
        source = write_csv(env / "pagos.csv", rows)
        output = env / "pagos.results.csv"
        result = _run(env, source, output, sandbox.url, 1)
        assert [r["status"] for r in sandbox.request_log if r["method"] == "POST"] == [200, 409, 200, 409]
        assert list(result.frame["status"]) == ["created", "created"]
        check_exactly_once(sandbox, rows, output, env / "ledger.sqlite", result.batch_id)
        reconcile = cli("reconcile", result.batch_id, "--api-base", sandbox.url, "--json")
        assert reconcile.exit_code == 0, reconcile.output
        assert json.loads(reconcile.output.strip().splitlines()[-1])["orphans"] == []


def test_a_409_that_cannot_be_settled_is_unknown_never_failed():
    rows = [_row(0)]
    faults = Faults(script={n: "conflict_409" for n in range(2, 12)}, search_error_rate=1.0)
    with tempfile.TemporaryDirectory() as name, Sandbox(faults=faults) as sandbox:
        folder = Path(name)
        source = write_csv(folder / "pagos.csv", rows)
        output = folder / "pagos.results.csv"
        result = _run(folder, source, output, sandbox.url, 1)
        [line] = _read_output(output)
        assert (line["status"], line["error_code"]) == ("unknown", "outcome_unknown")
        assert "rechaz" not in line["error_message"].lower()
        assert sum(1 for r in sandbox.request_log if r["method"] == "POST") == 2  # the order sent once
        sandbox.set_faults(Faults())
        second = _run(folder, source, output, sandbox.url, 1)
        assert list(second.frame["status"]) == ["created"]
        check_exactly_once(sandbox, rows, output, folder / "ledger.sqlite", second.batch_id)


def test_an_order_answered_without_reference_is_read_again_in_the_run():
    rows = _many(3)
    with tempfile.TemporaryDirectory() as name, Sandbox(faults=Faults(null_reference_rate=1.0,
                                                                       reference_delay_gets=1)) as sandbox:
        folder = Path(name)
        source = write_csv(folder / "pagos.csv", rows)
        output = folder / "pagos.results.csv"
        result = _run(folder, source, output, sandbox.url, 1)
        assert [r["fault"] for r in sandbox.request_log if r["path"] == "/payout_orders"] == ["null_reference"] * 3
        assert result.exit_code == 0
        check_exactly_once(sandbox, rows, output, folder / "ledger.sqlite", result.batch_id)


def test_an_order_still_without_reference_is_created_pending_and_status_fills_it_in(env, cli):
    rows = _many(2)
    with Sandbox(faults=Faults(script={2: "null_reference"}, reference_delay_gets=50)) as sandbox:
        source = write_csv(env / "pagos.csv", rows)
        output = env / "pagos.results.csv"
        result = _run(env, source, output, sandbox.url, 1)
        assert list(result.frame["status"]) == ["created", "created"]  # it exists: never failed, never resent
        assert result.exit_code == 1
        first, second = _read_output(output)
        order = sandbox.payout_orders()[0]
        assert (first["reference"], first["error_code"], first["payout_order_id"]) == ("", "reference_pending", order["id"])
        assert order["id"] in first["error_message"] and "status" in first["error_message"]
        assert second["reference"] and second["error_code"] == ""
        assert len(sandbox.payout_orders()) == 2

        sandbox.set_faults(Faults())  # Conekta has assigned it now
        status = cli("status", output, "--api-base", sandbox.url)
        assert status.exit_code == 0, status.output
        with Ledger(env / "ledger.sqlite") as ledger:
            assert {r.row_number: r.reference for r in ledger.rows(result.batch_id)}[2] == order["reference"]
        refreshed = _read_output(output)[0]
        assert (refreshed["reference"], refreshed["error_code"]) == (order["reference"], "")
        check_exactly_once(sandbox, rows, output, env / "ledger.sqlite", result.batch_id)


def test_a_failure_recorded_in_spanish_is_shown_in_english_when_resumed_with_lang_en():
    """The ledger keeps a failure's code and parameters, not only its Spanish sentence: a rerun with
    --lang en renders the rows it resumes in English (Conekta's own message stays data)."""
    rows = [{**_row(0), "customer_id": "cus_doesnotexist0001"}, {**_row(1, correo="beto@ejemplo.mx", motivo="Otro"),
                                                                  "customer_id": ""}]
    with tempfile.TemporaryDirectory() as name, Sandbox() as sandbox:
        folder = Path(name)
        source = write_csv(folder / "pagos.csv", rows)
        output = folder / "pagos.results.csv"
        first = _run(folder, source, output, sandbox.url, 1)
        assert list(first.frame["status"]) == ["failed", "created"]
        assert first.frame["error_message"].iloc[0].startswith("Conekta rechazó la orden de pago: HTTP 404")
        posts = sum(1 for r in sandbox.request_log if r["method"] == "POST")
        second = _run(folder, source, output, sandbox.url, 1, lang="en")
        assert list(second.frame["status"]) == ["failed", "created"]
        assert second.frame["error_message"].iloc[0].startswith("Conekta refused the payout order: HTTP 404")
        assert first.frame["error_code"].iloc[0] == second.frame["error_code"].iloc[0]
        assert sum(1 for r in sandbox.request_log if r["method"] == "POST") == posts  # resumed, not resent
