"""Benchmarks 2, 3 and issue 17 goal 1: sending rows, ours against a bare Session loop.

Every send figure counts only rows whose status is ``created`` in our results
sheet (a row that fails fast must not look like speed), and after every run
the server is asked how many payout orders it holds: it must be exactly that
many (the loop's likewise: one per row).  Each figure is taken ``--repeats``
times (3 by default), each time with a fresh server and a fresh ledger; the
table shows median and minimum and goals are judged on the median.

The baseline everywhere is a *bare Session loop*: a subprocess that reads the
CSV with the csv module and, for each row, POSTs a customer then a payout
order through one ``requests.Session`` (connections reused), sequentially, the
same bodies and headers as ours, no ledger, no retries.

Servers (the table names the one behind each figure):

* ``sandbox``: the Conekta emulator of ``batch_payouts.sandbox`` with 50 ms
  latency and a 100 req/s token bucket -- what a real account feels like.
  throughput: ours (``run --workers 8 --rate-limit 98``) against the ideal
  100 req/s / 2 requests per row = 50 rows/s; goal >= 85%.  The loop runs on
  ``--naive-rows`` rows for reference (it runs at ~1/latency).
* ``stand-in``: ``standin.StandIn``, canned JSON in microseconds, so the
  client is what is measured (the sandbox spends several times the
  stand-in's CPU per request and is the bottleneck above ~700 req/s on 2
  cores).
  - overhead (0 ms): ours ``--workers 1`` >= 0.70x the loop's rows/s (the
    ledger and safety cost <= 30%, like for like: both sequential);
  - goal 1 (0 ms): ours ``--workers 8`` >= 80% of the loop's rows/s, and
    client CPU per created row (the process's user + system time / rows)
    <= 1.3x the loop's;
  - scaling (5 ms latency): ours ``--workers 8`` >= 2x ``--workers 1``.

All timings are wall-clock of the whole command (start-up, read, validate,
ledger, results sheet included).  The servers run in this process (threads);
every client is a separate process.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DEFAULT_REPEATS, PYTHON, ROOT, base_env, beneficiaries, cli, goal_row, print_rows, read_sheet, run_measured, show,
    spread, write_csv,
)
from standin import StandIn  # noqa: E402

from batch_payouts.sandbox import Faults, Sandbox  # noqa: E402

API_KEY = "key_test_benchmark_throughput"

LOOP = r"""
import csv, itertools, json, sys, time, requests
src, base, key, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
http = requests.Session()
http.auth = (key, "")
http.headers.update({"Accept": "application/vnd.conekta-v2.0.0+json", "Content-Type": "application/json"})
expires = int(time.time()) + 48 * 3600
with open(src, newline="", encoding="utf-8-sig") as f:
    rows = list(itertools.islice(csv.DictReader(f), limit))
for n, row in enumerate(rows, start=2):
    customer = http.post(f"{base}/customers", headers={"Idempotency-Key": f"loop-c-{n}"},
                         data=json.dumps({"name": row["nombre"], "email": row["correo"], "phone": row["telefono"]}))
    customer.raise_for_status()
    order = http.post(f"{base}/payout_orders", headers={"Idempotency-Key": f"loop-o-{n}"}, data=json.dumps({
        "currency": row["moneda"], "amount": int(row["monto"]), "reason": row["motivo"], "expires_at": expires,
        "customer_info": {"customer_id": customer.json()["id"]},
        "allowed_payout_methods": ["cashout"], "payout": {"payout_method": {"type": "cashout"}},
        "metadata": {"folio": row["folio"], "batch_id": "loop", "row_key": str(n)}}))
    order.raise_for_status()
"""

SANDBOX_50 = "sandbox (50 ms latency, 100 req/s limit)"


def standin_label(latency_ms: float) -> str:
    return f"stand-in ({latency_ms:g} ms latency)"


class Server:
    """A fresh server per sample, and how many payout orders it holds (the honesty check)."""

    def __init__(self, kind: str, latency_ms: float = 0.0, rate_limit: float | None = None) -> None:
        self.kind, self.latency_ms, self.rate_limit = kind, latency_ms, rate_limit

    def __enter__(self) -> Server:
        if self.kind == "sandbox":
            faults = Faults(latency_ms=self.latency_ms, rate_limit_rps=self.rate_limit) if self.rate_limit else \
                Faults(latency_ms=self.latency_ms)
            self._server = Sandbox(faults=faults).__enter__()
        else:
            self._server = StandIn(latency_ms=self.latency_ms).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    @property
    def url(self) -> str:
        return self._server.url

    def orders(self) -> int:
        if isinstance(self._server, StandIn):
            return self._server.orders
        return len(self._server.payout_orders(API_KEY))

    def rate_limited(self) -> int:
        if isinstance(self._server, StandIn):
            return 0
        return sum(1 for e in self._server.request_log if e["status"] == 429)


def ours(source: Path, work: Path, server: Server, name: str, *extra: str) -> dict:
    """One `batch-payouts run` in a folder of its own (fresh ledger, results sheet and audit log):
    created rows from the results sheet, checked against the orders the server holds."""
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))
    ledger = folder / "ledger.sqlite"
    out = folder / f"{name}.results.csv"
    env = base_env(CONEKTA_API_KEY=API_KEY, BATCH_PAYOUTS_LEDGER=str(ledger))
    run = run_measured(cli("run", str(source), "--api-base", server.url, "--output", str(out), "--ledger", str(ledger),
                           *extra), env=env, cwd=ROOT)
    if run.code not in (0, 1):
        raise SystemExit(f"run failed ({run.code}): {run.err}")
    sheet = read_sheet(out)
    status = [line[sheet[0].index("status")] for line in sheet[1:]]
    created = status.count("created")
    held = server.orders()
    if held != created:
        raise SystemExit(f"{name}: the results sheet says {created} rows created, the server holds {held} orders")
    return {"seconds": run.seconds, "cpu_s": run.cpu_s, "rows": len(status), "created": created,
            "429s": server.rate_limited(), "peak_rss_mib": run.peak_mib}


def loop(source: Path, server: Server, rows: int) -> dict:
    """The bare Session loop on the first ``rows`` rows; every row must have made exactly one order."""
    run = run_measured([PYTHON, "-c", LOOP, str(source), server.url, API_KEY, str(rows)])
    if run.code != 0:
        raise SystemExit(f"the Session loop failed: {run.err}")
    held = server.orders()
    if held != rows:
        raise SystemExit(f"the Session loop sent {rows} rows, the server holds {held} orders")
    return {"seconds": run.seconds, "cpu_s": run.cpu_s, "rows": rows, "created": rows, "429s": server.rate_limited()}


def sample(repeats: int, contenders: dict[str, Callable[[], dict]]) -> dict[str, list[dict]]:
    """Each contender ``repeats`` times, interleaved (a, b, c, a, b, c, ...) so load spikes hit all alike."""
    samples: dict[str, list[dict]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, measure in contenders.items():
            samples[name].append(measure())
    return samples


def rate(runs: list[dict]) -> dict[str, float]:
    """Created rows per second over the samples (min and median)."""
    return spread([r["created"] / r["seconds"] for r in runs])


def cpu_per_row(runs: list[dict]) -> dict[str, float]:
    """Client CPU milliseconds per created row (min and median)."""
    return spread([1000 * r["cpu_s"] / r["created"] for r in runs])


def throughput(rows: int, naive_rows: int, rate_limit: float, client_rate: float, workers: int, repeats: int,
               work: Path) -> list[dict]:
    source = write_csv(work / "lote.csv", beneficiaries(rows, invalid_every=0, seed=2))
    ideal = rate_limit / 2

    def fresh() -> Server:
        return Server("sandbox", latency_ms=50, rate_limit=rate_limit)

    def run_ours() -> dict:
        with fresh() as server:
            return ours(source, work, server, "throughput", "--workers", str(workers),
                        "--rate-limit", f"{client_rate:g}")

    def run_loop() -> dict:
        with fresh() as server:
            return loop(source, server, naive_rows)

    samples = sample(repeats, {"ours": run_ours, "loop": run_loop})
    o, n = rate(samples["ours"]), rate(samples["loop"])
    settings = f"--workers {workers} --rate-limit {client_rate:g}"
    return [
        goal_row(bench="throughput", server=SANDBOX_50, size=f"{rows:,} rows",
                 ours=f"{show(o, 'rows/s', 1)}; {settings}; {max(r['429s'] for r in samples['ours'])} x 429 at most",
                 baseline=f"ideal {ideal:g} rows/s (limit / 2 requests per row)",
                 figure=f"{100 * o['median'] / ideal:.1f}% of ideal", goal=">= 85% of ideal",
                 met=o["median"] / ideal >= 0.85, rows_per_s=o, ideal_rows_per_s=ideal),
        goal_row(bench="throughput, Session loop (reference)", server=SANDBOX_50, size=f"{naive_rows:,} rows",
                 ours="", baseline=f"Session loop {show(n, 'rows/s', 1)}",
                 figure=f"{100 * n['median'] / ideal:.0f}% of ideal", goal="", met=None, rows_per_s=n),
    ]


def fast_api(rows: int, repeats: int, work: Path) -> list[dict]:
    """Overhead and goal 1: the stand-in at 0 ms, ours (1 and 8 workers) against the Session loop."""
    source = write_csv(work / "lote-fast.csv", beneficiaries(rows, invalid_every=0, seed=3))

    def run(measure: Callable[[Server], dict]) -> Callable[[], dict]:
        def once() -> dict:
            with Server("standin") as server:
                return measure(server)
        return once

    samples = sample(repeats, {
        "loop": run(lambda s: loop(source, s, rows)),
        "w1": run(lambda s: ours(source, work, s, "fast1", "--workers", "1")),
        "w8": run(lambda s: ours(source, work, s, "fast8", "--workers", "8")),
    })
    loop_rate, w1, w8 = rate(samples["loop"]), rate(samples["w1"]), rate(samples["w8"])
    loop_cpu, w8_cpu = cpu_per_row(samples["loop"]), cpu_per_row(samples["w8"])
    server, size = standin_label(0), f"{rows:,} rows"
    baseline = f"Session loop {show(loop_rate, 'rows/s', 0)}"
    overhead = w1["median"] / loop_rate["median"]
    speed = w8["median"] / loop_rate["median"]
    cpu = w8_cpu["median"] / loop_cpu["median"]
    return [
        goal_row(bench="overhead (ledger and safety), --workers 1", server=server, size=size,
                 ours=show(w1, "rows/s", 0), baseline=baseline, figure=f"{overhead:.2f}x loop",
                 goal=">= 0.70x loop", met=overhead >= 0.70, ratio=round(overhead, 3), rows_per_s=w1,
                 loop_rows_per_s=loop_rate),
        goal_row(bench="goal 1: rows/s, --workers 8", server=server, size=size, ours=show(w8, "rows/s", 0),
                 baseline=baseline, figure=f"{100 * speed:.1f}% of loop", goal=">= 80% of loop", met=speed >= 0.80,
                 ratio=round(speed, 3), rows_per_s=w8, loop_rows_per_s=loop_rate),
        goal_row(bench="goal 1: client CPU per created row, --workers 8", server=server, size=size,
                 ours=show(w8_cpu, "ms/row"), baseline=f"Session loop {show(loop_cpu, 'ms/row')}",
                 figure=f"{cpu:.2f}x loop", goal="<= 1.3x loop", met=cpu <= 1.3, ratio=round(cpu, 3),
                 cpu_ms_per_row=w8_cpu, loop_cpu_ms_per_row=loop_cpu),
    ]


def scaling(rows: int, repeats: int, latency_ms: float, work: Path) -> list[dict]:
    """Goal 1 scaling: 8 workers against 1 on the stand-in with a little latency."""
    source = write_csv(work / "lote-scaling.csv", beneficiaries(rows, invalid_every=0, seed=6))

    def run(workers: int) -> Callable[[], dict]:
        def once() -> dict:
            with Server("standin", latency_ms=latency_ms) as server:
                return ours(source, work, server, f"scaling{workers}", "--workers", str(workers))
        return once

    samples = sample(repeats, {"w1": run(1), "w8": run(8)})
    w1, w8 = rate(samples["w1"]), rate(samples["w8"])
    ratio = w8["median"] / w1["median"]
    return [goal_row(bench="goal 1: scaling, --workers 8 vs --workers 1", server=standin_label(latency_ms),
                     size=f"{rows:,} rows", ours=f"8 workers {show(w8, 'rows/s', 0)}",
                     baseline=f"1 worker {show(w1, 'rows/s', 0)}", figure=f"{ratio:.2f}x", goal=">= 2x",
                     met=ratio >= 2, ratio=round(ratio, 3), rows_per_s=w8, one_worker_rows_per_s=w1)]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000, help="rows for throughput and the fast-API figures")
    parser.add_argument("--naive-rows", type=int, default=100, help="rows for the Session loop on the 50 ms sandbox")
    parser.add_argument("--scaling-rows", type=int, default=1_000)
    parser.add_argument("--scaling-latency", type=float, default=5.0, help="the stand-in's latency for scaling (ms)")
    parser.add_argument("--rate-limit", type=float, default=100.0, help="the sandbox's limit (req/s)")
    parser.add_argument("--client-rate", type=float, default=98.0, help="our --rate-limit (req/s)")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--only", choices=["throughput", "fast", "scaling"])
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="bp-bench-throughput-") as folder:
        work = Path(folder)
        if args.only in (None, "throughput"):
            results += throughput(args.rows, args.naive_rows, args.rate_limit, args.client_rate, args.workers,
                                  args.repeats, work)
        if args.only in (None, "fast"):
            results += fast_api(args.rows, args.repeats, work)
        if args.only in (None, "scaling"):
            results += scaling(args.scaling_rows, args.repeats, args.scaling_latency, work)
    print_rows(results)
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=1, ensure_ascii=False))
