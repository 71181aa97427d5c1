"""Run every benchmark and print one summary table (Markdown, ready for the README).

    make bench                      # or: .venv/bin/python benchmarks/run_all.py
    .venv/bin/python benchmarks/run_all.py --quick   # smaller sizes, for trying changes

Each figure is a ratio against a baseline measured in the same run; nothing
here is a pass/fail test (the "goal" column only says whether the issue's
target was met on this machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_resume  # noqa: E402
import bench_throughput  # noqa: E402
import bench_validate  # noqa: E402


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


def _mark(ok: object) -> str:
    return "" if ok is None else ("yes" if ok else "**no**")


def table(results: list[dict]) -> str:
    lines = ["| benchmark | size | ours | baseline | figure | goal | met |", "|---|---|---|---|---|---|---|"]
    for r in results:
        b = r["bench"]
        if b.startswith("validate"):
            lines.append(f"| {b} | {r['rows']:,} rows | {r['ours_s']:.2f} s, peak {r['ours_peak_rss_mib']} MiB | "
                         f"pandas floor {r['floor_s']:.2f} s, peak {r['floor_peak_rss_mib']} MiB | "
                         f"{r['ratio']:.2f}x floor | <= 1.5x | {_mark(r['ok'])} |")
        elif b == "throughput ours":
            lines.append(f"| throughput (50 ms latency, 100 req/s limit) | {r['rows']:,} rows | {r['rows_per_s']:.1f} rows/s "
                         f"({r['seconds']:.1f} s, {r['429s']} x 429; {r['settings']}) | ideal {r['ideal_rows_per_s']:g} rows/s | "
                         f"{100 * r['of_ideal']:.0f}% of ideal | >= 85% | {_mark(r['ok'])} |")
        elif b == "throughput naive":
            lines.append(f"| throughput, naive loop (pandas + requests.post) | {r['rows']:,} rows | {r['rows_per_s']:.1f} rows/s | "
                         f"ideal {r['ideal_rows_per_s']:g} rows/s | {100 * r['of_ideal']:.0f}% of ideal | | |")
        elif b.startswith("overhead"):
            lines.append(f"| {b} (0 ms latency) | {r['rows']:,} rows | {r['rows_per_s']:.0f} rows/s ({r['seconds']:.2f} s) | "
                         f"naive requests.post loop | {r['vs_naive']:.2f}x naive | {r.get('goal', '')} | {_mark(r.get('ok'))} |")
        elif b == "resume":
            lines.append(f"| resume (rerun of a finished batch) | {r['rows']:,} rows | {r['rerun_s']:.2f} s, "
                         f"{r['rerun_api_calls']} API calls, peak {r['rerun_peak_rss_mib']} MiB | validate {r['validate_s']:.2f} s, "
                         f"peak {r['validate_peak_rss_mib']} MiB | {r['ratio']:.2f}x validate | 0 API calls | {_mark(r['ok'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k-row validate, 500-row throughput, 2k-row resume")
    args = parser.parse_args()
    started = time.perf_counter()
    results: list[dict] = []
    if args.quick:
        results += bench_validate.main(["--rows", "10000"])
        results += bench_throughput.main(["--rows", "500", "--naive-rows", "100"])
        results += bench_resume.main(["--rows", "2000"])
    else:
        results += bench_validate.main([])
        results += bench_throughput.main([])
        results += bench_resume.main([])
    print()
    print(f"Machine: {machine()}")
    print(f"Command: make bench  ({time.perf_counter() - started:.0f} s in all)")
    print()
    print(table(results))


if __name__ == "__main__":
    main()
