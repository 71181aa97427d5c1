"""Benchmarks 2 and 3: sending rows to the sandbox, ours against a naive loop.

throughput: N rows (default 2,000, unique emails, so 2 requests per row: a
customer and a payout order) against the sandbox with 50 ms latency and a
100 req/s token-bucket rate limit.  Ideal = rate limit / requests per row =
50 rows/s.  Ours: the real CLI as a subprocess (`run IN --api-base URL
--workers 8 --rate-limit R`), timed end to end (start-up, read, validate,
ledger, results sheet included).  Naive: a subprocess doing what a user's first
script does -- pandas.read_csv, then for each row requests.post a customer and
a payout order, sequentially, no ledger, no retries -- on the first
``--naive-rows`` rows only (it runs at ~1/latency, so 2,000 rows would take
minutes); rows/s is what matters.

overhead: the same batch against a zero-latency sandbox: our rows/s with
--workers 1 (like for like: sequential) and with --workers 8, against the
naive loop (requests.post per row, and with a requests.Session).

The sandbox runs in this process (threads); the clients are subprocesses.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PYTHON, ROOT, base_env, beneficiaries, cli, run_measured, write_csv  # noqa: E402

from batch_payouts.sandbox import Faults, Sandbox  # noqa: E402

API_KEY = "key_test_benchmark_throughput"

NAIVE = r"""
import json, sys, pandas as pd, requests
src, base, key, limit, session = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "session"
http = requests.Session() if session else requests
headers = {"Authorization": f"Bearer {key}", "Accept": "application/vnd.conekta-v2.0.0+json",
           "Content-Type": "application/json"}
frame = pd.read_csv(src, dtype=str, keep_default_na=False).head(limit)
for row in frame.itertuples(index=False):
    customer = http.post(f"{base}/customers", headers=headers,
                         data=json.dumps({"name": row.nombre, "email": row.correo, "phone": row.telefono}))
    customer.raise_for_status()
    order = http.post(f"{base}/payout_orders", headers=headers, data=json.dumps({
        "currency": "MXN", "amount": int(row.monto), "reason": row.motivo,
        "customer_info": {"customer_id": customer.json()["id"]},
        "allowed_payout_methods": ["cashout"], "payout": {"payout_method": {"type": "cashout"}},
        "metadata": {"folio": row.folio}}))
    order.raise_for_status()
"""


def _ours(source: Path, work: Path, sandbox: Sandbox, name: str, *extra: str) -> dict:
    before = len(sandbox.request_log)
    ledger = work / f"ledger-{name}.sqlite"
    out = work / f"{name}.results.csv"
    env = base_env(CONEKTA_API_KEY=API_KEY, BATCH_PAYOUTS_LEDGER=str(ledger))
    elapsed, code, rss, err = run_measured(
        cli("run", str(source), "--api-base", sandbox.url, "--output", str(out), "--ledger", str(ledger), *extra),
        env=env, cwd=ROOT,
    )
    log = sandbox.request_log[before:]
    if code not in (0, 1):
        raise SystemExit(f"run failed ({code}): {err}")
    import pandas as pd

    status = pd.read_csv(out, dtype=str, keep_default_na=False)["status"]
    return {"seconds": elapsed, "rows": len(status), "created": int((status == "created").sum()),
            "requests": len(log), "429s": sum(1 for e in log if e["status"] == 429), "peak_rss_mib": rss}


def _naive(source: Path, sandbox: Sandbox, rows: int, mode: str) -> dict:
    before = len(sandbox.request_log)
    elapsed, code, _, err = run_measured([PYTHON, "-c", NAIVE, str(source), sandbox.url, API_KEY, str(rows), mode])
    if code != 0:
        raise SystemExit(f"naive loop failed: {err}")
    log = sandbox.request_log[before:]
    return {"seconds": elapsed, "rows": rows, "requests": len(log), "429s": sum(1 for e in log if e["status"] == 429)}


def throughput(rows: int, naive_rows: int, rate_limit: float, client_rate: float, workers: int, work: Path) -> list[dict]:
    source = write_csv(work / "lote.csv", beneficiaries(rows, invalid_every=0, seed=2))
    ideal = rate_limit / 2
    with Sandbox(faults=Faults(latency_ms=50, rate_limit_rps=rate_limit)) as sandbox:
        ours = _ours(source, work, sandbox, "throughput", "--workers", str(workers), "--rate-limit", str(client_rate))
    with Sandbox(faults=Faults(latency_ms=50, rate_limit_rps=rate_limit)) as sandbox:
        naive = _naive(source, sandbox, naive_rows, "post")
    ours_rate = ours["created"] / ours["seconds"]
    naive_rate = naive["rows"] / naive["seconds"]
    return [
        {"bench": "throughput ours", "rows": rows, "seconds": round(ours["seconds"], 1), "rows_per_s": round(ours_rate, 1),
         "ideal_rows_per_s": ideal, "of_ideal": round(ours_rate / ideal, 3), "goal": ">= 85% of ideal",
         "ok": ours_rate / ideal >= 0.85, "requests": ours["requests"], "429s": ours["429s"],
         "created": ours["created"], "settings": f"--workers {workers} --rate-limit {client_rate:g}"},
        {"bench": "throughput naive", "rows": naive["rows"], "seconds": round(naive["seconds"], 1),
         "rows_per_s": round(naive_rate, 1), "ideal_rows_per_s": ideal, "of_ideal": round(naive_rate / ideal, 3),
         "requests": naive["requests"], "429s": naive["429s"], "settings": "sequential requests.post"},
    ]


def overhead(rows: int, work: Path) -> list[dict]:
    source = write_csv(work / "lote-overhead.csv", beneficiaries(rows, invalid_every=0, seed=3))
    results = {}
    for name, runner in (
        ("naive", lambda sb: _naive(source, sb, rows, "post")),
        ("naive session", lambda sb: _naive(source, sb, rows, "session")),
        ("ours workers=1", lambda sb: _ours(source, work, sb, "overhead1", "--workers", "1")),
        ("ours workers=8", lambda sb: _ours(source, work, sb, "overhead8", "--workers", "8")),
    ):
        with Sandbox() as sandbox:  # a fresh, zero-latency sandbox for each
            results[name] = runner(sandbox)
    naive_rate = rows / results["naive"]["seconds"]
    out = []
    for name, r in results.items():
        rate = r["rows"] / r["seconds"]
        entry = {"bench": f"overhead {name}", "rows": rows, "seconds": round(r["seconds"], 2),
                 "rows_per_s": round(rate, 1), "vs_naive": round(rate / naive_rate, 2)}
        if name == "ours workers=1":
            entry.update({"goal": "cost <= 30% (>= 0.70x naive)", "ok": rate / naive_rate >= 0.70})
        out.append(entry)
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000)
    parser.add_argument("--naive-rows", type=int, default=300)
    parser.add_argument("--rate-limit", type=float, default=100.0, help="the sandbox's limit (req/s)")
    parser.add_argument("--client-rate", type=float, default=98.0, help="our --rate-limit (req/s)")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--only", choices=["throughput", "overhead"])
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="bp-bench-throughput-") as folder:
        if args.only != "overhead":
            results += throughput(args.rows, args.naive_rows, args.rate_limit, args.client_rate, args.workers, Path(folder))
        if args.only != "throughput":
            results += overhead(args.rows, Path(folder))
    for r in results:
        print(r)
    return results


if __name__ == "__main__":
    main()
