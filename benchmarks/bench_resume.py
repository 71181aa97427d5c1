"""Benchmark 4 (and 5b): rerunning a finished batch sends nothing and costs little.

A N-row batch (default 10,000, CSV, unique emails) is run to completion
against a zero-latency sandbox (not timed), then the same command is run
again ``--repeats`` times (3 by default).  Reported: API requests during the
reruns (from the sandbox's request_log; must be 0 -- a read-only balance check
counts too), the reruns' median wall time against that of `batch-payouts
validate` of the same file (both the real CLI as subprocesses), and the
reruns' peak RSS.  The first run is checked to have left exactly N orders on
the sandbox, so "nothing sent" cannot come from a first run that did nothing.
At 100,000 rows the first run alone takes several minutes on 2 cores, so
``make bench`` uses 10,000; pass ``--rows`` to measure more.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DEFAULT_REPEATS, ROOT, base_env, beneficiaries, cli, goal_row, print_rows, run_measured, show, spread, write_csv,
)

from batch_payouts.sandbox import Sandbox  # noqa: E402

API_KEY = "key_test_benchmark_resume"


def measure(rows: int, repeats: int, work: Path) -> dict:
    source = write_csv(work / "lote.csv", beneficiaries(rows, invalid_every=0, seed=5))
    ledger = work / "ledger.sqlite"
    env = base_env(CONEKTA_API_KEY=API_KEY, BATCH_PAYOUTS_LEDGER=str(ledger))
    with Sandbox(starting_balance=10**13) as sandbox:  # enough for 100k rows: the balance guard is not what is measured
        command = cli("run", str(source), "--api-base", sandbox.url, "--output", str(work / "run.results.csv"),
                      "--workers", "8")
        first = run_measured(command, env=env, cwd=ROOT)
        if first.code != 0:
            raise SystemExit(f"first run failed ({first.code}): {first.err}")
        sent = len(sandbox.request_log)
        if len(sandbox.payout_orders(API_KEY)) != rows:
            raise SystemExit(f"the first run should have created {rows} orders, the sandbox holds "
                             f"{len(sandbox.payout_orders(API_KEY))}")
        reruns = []
        for _ in range(repeats):
            rerun = run_measured(command, env=env, cwd=ROOT)
            if rerun.code != 0:
                raise SystemExit(f"rerun failed ({rerun.code}): {rerun.err}")
            reruns.append(rerun)
        rerun_requests = sandbox.request_log[sent:]
    validations = []
    for _ in range(repeats):
        validation = run_measured(cli("validate", str(source), "--output", str(work / "v.results.csv")), env=base_env(),
                                  cwd=ROOT)
        if validation.code != 0:
            raise SystemExit(f"validate failed ({validation.code}): {validation.err}")
        validations.append(validation)
    calls = len(rerun_requests)
    kinds = sorted({f"{e['method']} {e['path']}" for e in rerun_requests})
    rerun_s, validate_s = spread([r.seconds for r in reruns]), spread([v.seconds for v in validations])
    ratio = rerun_s["median"] / validate_s["median"]
    rerun_rss, validate_rss = max(r.peak_mib for r in reruns), max(v.peak_mib for v in validations)
    return goal_row(
        bench="resume (rerun of a finished batch)", server="sandbox (0 ms latency)", size=f"{rows:,} rows",
        ours=f"{calls} API calls in {repeats} reruns; {show(rerun_s, 's')}, peak {rerun_rss} MiB",
        baseline=f"validate {show(validate_s, 's')}, peak {validate_rss} MiB",
        figure=f"{calls} API calls; {ratio:.2f}x validate",
        goal="0 API calls", met=calls == 0, first_run_s=round(first.seconds, 1), first_run_requests=sent,
        rerun_s=rerun_s, validate_s=validate_s, ratio=round(ratio, 3), rerun_api_calls=calls, rerun_call_kinds=kinds,
        rerun_peak_rss_mib=rerun_rss, first_run_peak_rss_mib=first.peak_mib, validate_peak_rss_mib=validate_rss,
    )


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bp-bench-resume-") as folder:
        result = measure(args.rows, args.repeats, Path(folder))
    print_rows([result])
    return [result]


if __name__ == "__main__":
    main()
