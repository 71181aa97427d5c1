"""Benchmark 1 (and 5a): `batch-payouts validate` on 100,000 rows against the pandas floor.

Ours: the real CLI as a subprocess (`python -m batch_payouts validate IN --output OUT`):
read + validate + write the annotated results sheet (XLSX: styled, plus the
summary/error sheets the CLI adds).  Floor: a subprocess that imports pandas,
reads the same file with the fastest engine (calamine for XLSX, the C engine
for CSV, every cell as text) and writes the same annotated frame (input columns
+ row, status, error_code, error_message) with the fastest writer (XlsxWriter in
constant-memory mode for XLSX, ``to_csv`` for CSV), with no validation.  The
annotation columns are handed to the floor pre-computed (a pickle it loads),
so the floor does no rule work at all.  Both are timed wall-clock, start to
exit, best of ``--repeats``; peak RSS is the child's own ``ru_maxrss``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PYTHON, ROOT, base_env, beneficiaries, cli, run_measured, write_csv, write_xlsx  # noqa: E402

FLOOR = r"""
import sys, pandas as pd
src, annotations, out = sys.argv[1:4]
if src.endswith(".xlsx"):
    frame = pd.read_excel(src, engine="calamine", dtype=str, keep_default_na=False)
else:
    frame = pd.read_csv(src, dtype=str, keep_default_na=False)
extra = pd.read_pickle(annotations)
frame = pd.concat([frame, extra.set_axis(frame.index)], axis=1)
if out.endswith(".xlsx"):
    frame.to_excel(out, index=False, engine="xlsxwriter", engine_kwargs={"options": {"constant_memory": True}})
else:
    frame.to_csv(out, index=False)
"""


def measure(rows: int, repeats: int, work: Path, kinds: tuple[str, ...] = ("xlsx", "csv")) -> list[dict]:
    data = beneficiaries(rows)
    results = []
    for kind in kinds:
        source = work / f"beneficiarios.{kind}"
        (write_xlsx if kind == "xlsx" else write_csv)(source, data)
        out = work / f"ours.results.{kind}"
        best_ours, peak, code = float("inf"), 0, None
        for _ in range(repeats):
            elapsed, code, rss, err = run_measured(cli("validate", str(source), "--output", str(out)), env=base_env(), cwd=ROOT)
            if code not in (0, 1):
                raise SystemExit(f"validate failed ({code}): {err}")
            best_ours, peak = min(best_ours, elapsed), max(peak, rss)
        # The annotation columns, exactly as ours wrote them (not timed).
        import pandas as pd

        written = pd.read_csv(out, dtype=str, keep_default_na=False) if kind == "csv" else pd.read_excel(
            out, engine="calamine", dtype=str, keep_default_na=False
        )
        pickle = work / "annotations.pkl"
        written[["row", "status", "error_code", "error_message"]].to_pickle(pickle)
        floor_out = work / f"floor.{kind}"
        best_floor, floor_peak = float("inf"), 0
        for _ in range(repeats):
            elapsed, fcode, rss, err = run_measured([PYTHON, "-c", FLOOR, str(source), str(pickle), str(floor_out)])
            if fcode != 0:
                raise SystemExit(f"floor failed: {err}")
            best_floor, floor_peak = min(best_floor, elapsed), max(floor_peak, rss)
        invalid = int((written["status"] == "invalid").sum())
        results.append(
            {
                "bench": f"validate {kind}", "rows": rows, "ours_s": round(best_ours, 2), "floor_s": round(best_floor, 2),
                "ratio": round(best_ours / best_floor, 2), "goal": "<= 1.5x", "ok": best_ours / best_floor <= 1.5,
                "ours_peak_rss_mib": peak, "floor_peak_rss_mib": floor_peak, "invalid_rows": invalid,
            }
        )
    return results


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--only", choices=("xlsx", "csv"), help="measure one format only (default: both)")
    parser.add_argument("--keep", type=Path, help="generate the input files in this folder and keep them (for profiling)")
    args = parser.parse_args(argv)
    kinds = (args.only,) if args.only else ("xlsx", "csv")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        results = measure(args.rows, args.repeats, args.keep, kinds)
    else:
        with tempfile.TemporaryDirectory(prefix="bp-bench-validate-") as folder:
            results = measure(args.rows, args.repeats, Path(folder), kinds)
    for r in results:
        print(f"{r['bench']:<14} {r['rows']:>7} rows: ours {r['ours_s']:.2f} s, floor {r['floor_s']:.2f} s, "
              f"ratio {r['ratio']:.2f}x (goal <= 1.5x); peak RSS ours {r['ours_peak_rss_mib']} MiB, "
              f"floor {r['floor_peak_rss_mib']} MiB")
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
