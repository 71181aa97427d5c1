"""Run every benchmark and print one summary table (Markdown, ready for the README).

    make bench                      # or: .venv/bin/python benchmarks/run_all.py
    .venv/bin/python benchmarks/run_all.py --quick   # smaller sizes, for trying changes

Each figure is a ratio against a baseline measured in the same run, from 3
samples of each (median and minimum shown; goals judged on the median);
nothing here is a pass/fail test (the "met" column only says whether the
issue's target was met on this machine).  The "server" column says what
answered the API calls: none, the sandbox, or the minimal stand-in.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ledger  # noqa: E402
import bench_resume  # noqa: E402
import bench_startup  # noqa: E402
import bench_throughput  # noqa: E402
import bench_validate  # noqa: E402
from common import DEFAULT_REPEATS  # noqa: E402


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPUs ({cpu or platform.processor() or platform.machine()}), "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def _mark(met: object) -> str:
    return "" if met is None else ("met" if met else "**not met**")


def table(results: list[dict]) -> str:
    """One Markdown line per figure: what ran on which server, ours and the baseline (median and
    minimum of the samples), the ratio the goal is judged on (medians), the goal, met or not."""
    lines = ["| benchmark | server | size | ours | baseline | figure (medians) | goal | met |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        cells = [r["bench"], r["server"], r["size"], r["ours"], r["baseline"], r["figure"], r["goal"], _mark(r["met"])]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes (10k-row validate, 500-row sends, 2k-row resume), same 3 repeats")
    parser.add_argument("--million", action="store_true",
                        help="also validate 1,000,000 rows (CSV and XLSX: issue 17's size for goal 2); "
                             "adds ~10 minutes, so `make bench` leaves it out")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                        help=f"samples of every figure (default {DEFAULT_REPEATS}; "
                             "1 only for checking the scripts run)")
    args = parser.parse_args()
    started = time.perf_counter()
    repeats = ["--repeats", str(args.repeats)]
    results: list[dict] = []
    if args.quick:
        results += bench_validate.main(["--rows", "10000", *repeats])
        results += bench_throughput.main(["--rows", "500", "--naive-rows", "50", "--scaling-rows", "300", *repeats])
        results += bench_resume.main(["--rows", "2000", *repeats])
        results += bench_startup.main(repeats)
        results += bench_ledger.main(["--rows", "500", "--run-rows", "300", *repeats])
    else:
        results += bench_validate.main(repeats)
        results += bench_throughput.main(repeats)
        results += bench_resume.main(repeats)
        results += bench_startup.main(repeats)
        results += bench_ledger.main(repeats)
    if args.million:
        results += bench_validate.main(["--rows", "1000000", *repeats])
    command = "make bench" if not args.quick and not args.million and args.repeats == DEFAULT_REPEATS else \
        "benchmarks/run_all.py " + " ".join(sys.argv[1:])
    print()
    print(f"Machine: {machine()}")
    print(f"Command: {command}  ({time.perf_counter() - started:.0f} s in all, "
          f"{args.repeats} sample(s) of each figure)")
    print()
    print(table(results))


if __name__ == "__main__":
    main()
