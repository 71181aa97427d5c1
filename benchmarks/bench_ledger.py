"""Issue 14's benchmark: the ledger on PostgreSQL against the ledger on SQLite.

Two figures, each a comparison within the same run (the engines interleaved, a fresh ledger
per sample, 3 samples, goals judged on the median):

* **ledger cost per row** (server: none, 0 ms API latency): the ledger calls a created row
  makes in ``row_executor`` -- ensure the row, the repeat guard's query, the customer lookup,
  the customer's intent (durable) and its record, the row's customer, the order's intent
  (durable), the created order and the row read back -- replayed by 8 threads on one ``Ledger``
  (as ``--workers 8`` share it), with no HTTP at all.  Wall milliseconds per row, for SQLite
  (a file in ``$TMPDIR``) and for PostgreSQL (a throwaway local cluster, **fsync on**).
  Goal: <= 2 ms per row on PostgreSQL.
* **run rows/s** (server: the sandbox, 0 ms latency): ``batch-payouts run --workers 8`` end to
  end (a subprocess; created rows counted in the results sheet and checked against the
  orders the sandbox holds) with ``--ledger`` a SQLite file, then a PostgreSQL database.
  Goal: PostgreSQL's rows/s within 15% of SQLite's.

PostgreSQL comes from Debian's ``postgresql`` package (``scripts/ensure-postgresql``), run by
``tests/pg_cluster.py`` in a temporary directory on a free port (as the ``postgres`` user under
root).  Without it the figures say "not measured".
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from bench_throughput import Server, sample  # noqa: E402
from common import (  # noqa: E402
    DEFAULT_REPEATS, ROOT, base_env, beneficiaries, cli, goal_row, print_rows, read_sheet, run_measured, show, spread,
    write_csv,
)

API_KEY = "key_test_benchmark_throughput"  # bench_throughput.Server counts this key's orders
SANDBOX_0 = "sandbox (0 ms latency)"
PG_SERVER = "PostgreSQL (local throwaway cluster, fsync on)"


class Engines:
    """A fresh ledger per sample: a file in ``work``, or a database copied from a migrated template."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.cluster = None
        self.why_not = ""

    def __enter__(self) -> Engines:
        try:
            from pg_cluster import TEMPLATE, Cluster

            self.cluster = Cluster(fsync=True)
            self.cluster.sql(f'CREATE DATABASE "{TEMPLATE}" TEMPLATE template0')
            from batch_payouts.payout.ledger import Ledger

            Ledger(self.cluster.url(TEMPLATE)).close()
        except BaseException as error:  # pytest.skip (no PostgreSQL here) is a BaseException
            if isinstance(error, KeyboardInterrupt):
                raise
            self.why_not = str(error) or type(error).__name__
            if self.cluster is not None:
                self.cluster.stop()
                self.cluster = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cluster is not None:
            self.cluster.stop()

    def fresh(self, engine: str) -> str:
        if engine == "sqlite":
            return str(Path(tempfile.mkdtemp(prefix="ledger-", dir=self.work)) / "ledger.sqlite")
        return self.cluster.new_database()


def replay(location: str, rows: int, workers: int) -> dict:
    """The ledger calls of ``rows`` created rows, ``workers`` threads on one Ledger; wall seconds."""
    from batch_payouts.payout.ledger import Ledger, key_fingerprint

    key_fp = key_fingerprint(API_KEY)
    batch_id = "b" * 64
    with Ledger(location) as ledger:
        ledger.acquire_lock(batch_id)
        ledger.record_batch_start(batch_id=batch_id, input_name="lote.csv", input_sha256="0" * 64, key_fp=key_fp,
                                  api_base="http://127.0.0.1:1", rows_total=rows)
        numbers = iter(range(rows))
        take = threading.Lock()

        def row(n: int) -> None:
            row_key, email = f"x:F{n:07d}", f"persona{n}@ejemplo.mx"
            fingerprint = f"fp-{n}"
            ledger.ensure_row(batch_id=batch_id, row_key=row_key, row_number=n + 2, email=email, amount=10_000 + n,
                              currency="MXN", reason=f"Apoyo {n}", payout_fingerprint=fingerprint)
            ledger.earlier_payout(payout_fingerprint=fingerprint, row_key=row_key, key_fp=key_fp,
                                  since=time.time() - 86400, exclude_batch=batch_id)
            ledger.customer_for(key_fp, email)
            ledger.begin_intent(batch_id=batch_id, row_key=row_key, operation="customer", idempotency_key=f"c-{n}",
                                body={"name": f"Persona {n}", "email": email, "phone": f"55{n:08d}"})
            ledger.record_customer(idempotency_key=f"c-{n}", key_fp=key_fp, email=email, customer_id=f"cus_{n}")
            ledger.set_row_customer(batch_id, row_key, f"cus_{n}")
            ledger.begin_intent(batch_id=batch_id, row_key=row_key, operation="payout_order", idempotency_key=f"o-{n}",
                                body={"amount": 10_000 + n, "currency": "MXN", "reason": f"Apoyo {n}",
                                      "customer_info": {"customer_id": f"cus_{n}"}})
            ledger.record_created(batch_id=batch_id, row_key=row_key, idempotency_key=f"o-{n}",
                                  order={"id": f"ord_{n}", "reference": f"{n:016d}", "status": "pending",
                                         "expires_at": 1_900_000_000, "customer_info": {"id": f"cus_{n}"}})
            ledger.row(batch_id, row_key)

        def worker() -> None:
            while True:
                with take:
                    n = next(numbers, None)
                if n is None:
                    return
                row(n)

        started = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        created = sum(1 for state in ledger.row_states(batch_id).values() if state == "created")
        ledger.release_lock(batch_id)
    if created != rows:
        raise SystemExit(f"ledger replay on {location}: {created} rows created of {rows}")
    return {"seconds": seconds, "rows": rows}


def run_rows(source: Path, work: Path, location: str, workers: int) -> dict:
    """One ``batch-payouts run`` with ``--ledger location`` on a fresh sandbox: created rows/s, checked."""
    folder = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    out = folder / "lote.results.csv"
    with Server("sandbox", latency_ms=0) as server:
        run = run_measured(cli("run", str(source), "--api-base", server.url, "--output", str(out), "--ledger", location,
                               "--workers", str(workers)),
                           env=base_env(CONEKTA_API_KEY=API_KEY), cwd=folder)
        if run.code not in (0, 1):
            raise SystemExit(f"run on {location} failed ({run.code}): {run.err}")
        sheet = read_sheet(out)
        created = [line[sheet[0].index("status")] for line in sheet[1:]].count("created")
        held = server.orders()
    if held != created:
        raise SystemExit(f"run on {location}: the results sheet says {created} created, the sandbox holds {held}")
    return {"seconds": run.seconds, "created": created}


def ms_per_row(runs: list[dict]) -> dict[str, float]:
    return spread([1000 * r["seconds"] / r["rows"] for r in runs])


def rows_per_s(runs: list[dict]) -> dict[str, float]:
    return spread([r["created"] / r["seconds"] for r in runs])


def not_measured(bench: str, server: str, size: str, goal: str, why: str) -> dict:
    return goal_row(bench=bench, server=server, size=size, ours="not measured", baseline="",
                    figure=f"no PostgreSQL here: {why[:120]}", goal=goal, met=None)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000, help="rows of the ledger replay")
    parser.add_argument("--run-rows", type=int, default=1_000, help="rows of the end-to-end run on the sandbox")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--only", choices=["ledger", "run"])
    args = parser.parse_args(argv)
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bp-bench-ledger-") as folder, Engines(Path(folder)) as engines:
        work = Path(folder)
        if engines.cluster is None:
            if args.only in (None, "ledger"):
                results.append(not_measured("ledger cost per row", "none (0 ms API)", f"{args.rows:,} rows",
                                            "<= 2 ms/row on PostgreSQL", engines.why_not))
            if args.only in (None, "run"):
                results.append(not_measured("run rows/s, PostgreSQL vs SQLite ledger", SANDBOX_0, f"{args.run_rows:,} rows",
                                            "within 15% of SQLite", engines.why_not))
            print_rows(results)
            return results
        if args.only in (None, "ledger"):
            measure: dict[str, Callable[[], dict]] = {
                engine: (lambda e=engine: replay(engines.fresh(e), args.rows, args.workers))
                for engine in ("sqlite", "postgresql")}
            samples = sample(args.repeats, measure)
            pg, lite = ms_per_row(samples["postgresql"]), ms_per_row(samples["sqlite"])
            results.append(goal_row(
                bench=f"ledger cost per row, --workers {args.workers}", server=f"none (0 ms API); {PG_SERVER}",
                size=f"{args.rows:,} rows", ours=f"PostgreSQL {show(pg, 'ms/row')}",
                baseline=f"SQLite {show(lite, 'ms/row')}",
                figure=f"{pg['median']:.2f} ms/row; {pg['median'] / lite['median']:.2f}x SQLite",
                goal="<= 2 ms/row on PostgreSQL", met=pg["median"] <= 2.0, pg_ms_per_row=pg, sqlite_ms_per_row=lite))
        if args.only in (None, "run"):
            source = write_csv(work / "lote.csv", beneficiaries(args.run_rows, invalid_every=0, seed=3))
            measure = {engine: (lambda e=engine: run_rows(source, work, engines.fresh(e), args.workers))
                       for engine in ("sqlite", "postgresql")}
            samples = sample(args.repeats, measure)
            pg, lite = rows_per_s(samples["postgresql"]), rows_per_s(samples["sqlite"])
            results.append(goal_row(
                bench=f"run rows/s, PostgreSQL vs SQLite ledger, --workers {args.workers}", server=SANDBOX_0,
                size=f"{args.run_rows:,} rows", ours=f"PostgreSQL {show(pg, 'rows/s', 1)}",
                baseline=f"SQLite {show(lite, 'rows/s', 1)}",
                figure=f"{100 * pg['median'] / lite['median']:.1f}% of SQLite", goal="within 15% of SQLite (>= 85%)",
                met=pg["median"] >= 0.85 * lite["median"], pg_rows_per_s=pg, sqlite_rows_per_s=lite))
    print_rows(results)
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=1, ensure_ascii=False))
