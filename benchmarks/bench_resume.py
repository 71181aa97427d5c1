"""Benchmark 4 (and 5b): rerunning a finished batch sends nothing and costs little.

A N-row batch (default 10,000, CSV, unique emails) is run to completion
against a zero-latency sandbox (not timed), then the same command is run
again.  Reported: API requests during the rerun (from the sandbox's
request_log; must be 0 -- a read-only balance check counts too), the rerun's
wall time against `batch-payouts validate` of the same file (both the real CLI
as subprocesses), and the rerun's peak RSS.  At 100,000 rows the first run
alone takes several minutes on 2 cores, so ``make bench`` uses 10,000; pass
``--rows`` to measure more.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, base_env, beneficiaries, cli, run_measured, write_csv  # noqa: E402

from batch_payouts.sandbox import Sandbox  # noqa: E402

API_KEY = "key_test_benchmark_resume"


def measure(rows: int, work: Path) -> dict:
    source = write_csv(work / "lote.csv", beneficiaries(rows, invalid_every=0, seed=5))
    ledger = work / "ledger.sqlite"
    env = base_env(CONEKTA_API_KEY=API_KEY, BATCH_PAYOUTS_LEDGER=str(ledger))
    with Sandbox(starting_balance=10**13) as sandbox:  # enough for 100k rows: the balance guard is not what is measured
        command = cli("run", str(source), "--api-base", sandbox.url, "--output", str(work / "run.results.csv"),
                      "--workers", "8")
        first_s, code, first_rss, err = run_measured(command, env=env, cwd=ROOT)
        if code != 0:
            raise SystemExit(f"first run failed ({code}): {err}")
        sent = len(sandbox.request_log)
        rerun_s, code, rerun_rss, err = run_measured(command, env=env, cwd=ROOT)
        if code != 0:
            raise SystemExit(f"rerun failed ({code}): {err}")
        rerun_requests = sandbox.request_log[sent:]
    validate_s, code, validate_rss, err = run_measured(
        cli("validate", str(source), "--output", str(work / "v.results.csv")), env=base_env(), cwd=ROOT
    )
    if code != 0:
        raise SystemExit(f"validate failed ({code}): {err}")
    calls = len(rerun_requests)
    kinds = sorted({f"{e['method']} {e['path']}" for e in rerun_requests})
    return {
        "bench": "resume", "rows": rows, "first_run_s": round(first_s, 1), "first_run_requests": sent,
        "rerun_s": round(rerun_s, 2), "validate_s": round(validate_s, 2), "ratio": round(rerun_s / validate_s, 2),
        "rerun_api_calls": calls, "rerun_call_kinds": kinds, "goal": "0 API calls", "ok": calls == 0,
        "rerun_peak_rss_mib": rerun_rss, "first_run_peak_rss_mib": first_rss, "validate_peak_rss_mib": validate_rss,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bp-bench-resume-") as folder:
        result = measure(args.rows, Path(folder))
    print(result)
    return [result]


if __name__ == "__main__":
    main()
