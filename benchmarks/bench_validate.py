"""Benchmark 1 (and 5a): `batch-payouts validate` on 100,000 rows against a checked floor.

Ours: the real CLI as a subprocess (`python -m batch_payouts validate IN --output OUT`):
read + validate + write the annotated results sheet (XLSX: styled, plus the
summary/error sheets the CLI adds).  Its output is checked on every run: one
line per input row, and exactly the valid/invalid counts the generator planted
(a fast run that writes the wrong sheet must not count as fast).

Floor: a subprocess that reads the same file with the fastest reader and writes
the same table (input columns + row, status, error_code, error_message) with
the fastest writer, no validation, no styling.  XLSX: python-calamine read,
XlsxWriter ``write_row`` row after row (constant-memory mode is correct when
rows are written in order); CSV: pandas (C engine, every cell text) and
``to_csv``, the floor issue 4's goal was set against.  The annotation
columns are handed over pre-computed (a CSV of ours' own output), so the floor
does no rule work at all.

Why the floor is checked: the previous floor wrote through pandas ``to_excel``
into constant-memory mode, which writes column by column and silently drops
every cell of a row already flushed (11 of 24,000 cells outside column A on
2,000 rows), so it was fast because it wrote almost nothing.  Every floor
output is now read back and its filled cells counted against what it was
given; a floor that drops a cell stops the benchmark.

Both are timed wall-clock, start to exit, ``--repeats`` times (3 by default);
the goal is judged on the median.  Peak RSS is the child's own ``ru_maxrss``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DEFAULT_REPEATS, PYTHON, ROOT, base_env, beneficiaries, cli, filled_cells, goal_row, print_rows, read_sheet,
    run_measured, show, spread, write_csv, write_xlsx,
)

INVALID_EVERY = 50
ANNOTATIONS = ["row", "status", "error_code", "error_message"]
MAX_RSS_MIB = 1024

FLOOR = r"""
import csv, sys
src, annotations, out = sys.argv[1:4]
with open(annotations, newline="", encoding="utf-8") as f:
    extra = list(csv.reader(f))
if src.endswith(".xlsx"):
    from python_calamine import CalamineWorkbook
    import xlsxwriter
    rows = CalamineWorkbook.from_path(src).get_sheet_by_index(0).to_python(skip_empty_area=False)
    book = xlsxwriter.Workbook(out, {"constant_memory": True, "strings_to_formulas": False,
                                     "strings_to_urls": False, "strings_to_numbers": False})
    sheet = book.add_worksheet("Resultados")
    for number, (row, more) in enumerate(zip(rows, extra)):
        sheet.write_row(number, 0, list(row) + more)
    book.close()
else:
    import pandas as pd
    frame = pd.read_csv(src, dtype=str, keep_default_na=False)
    more = pd.DataFrame(extra[1:], columns=extra[0], index=frame.index[:len(extra) - 1])
    pd.concat([frame, more], axis=1).to_csv(out, index=False)
"""


def check_ours(out: Path, rows: int) -> list[list[object]]:
    """Ours' results sheet: one line per input row, and the planted valid/invalid counts."""
    written = read_sheet(out)
    header, body = written[0], written[1:]
    status = [line[header.index("status")] for line in body]
    invalid = rows // INVALID_EVERY
    found = {"rows": len(body), "valid": status.count("valid"), "invalid": status.count("invalid")}
    wanted = {"rows": rows, "valid": rows - invalid, "invalid": invalid}
    if found != wanted:
        raise SystemExit(f"validate wrote a wrong results sheet {out.name}: {found}, expected {wanted}")
    return written


def check_floor(out: Path, expected_rows: int, expected_cells: int) -> None:
    """The floor wrote every line and every filled cell it was given (else its time means nothing)."""
    written = read_sheet(out)
    cells = filled_cells(written)
    if len(written) != expected_rows or cells != expected_cells:
        raise SystemExit(f"the floor dropped data in {out.name}: {len(written)} lines / {cells} filled cells, "
                         f"expected {expected_rows} / {expected_cells}")


def measure(rows: int, repeats: int, work: Path, kinds: tuple[str, ...] = ("xlsx", "csv")) -> list[dict]:
    data = beneficiaries(rows, invalid_every=INVALID_EVERY)
    results = []
    for kind in kinds:
        source = work / f"beneficiarios.{kind}"
        (write_xlsx if kind == "xlsx" else write_csv)(source, data)
        out = work / f"ours.results.{kind}"
        ours, ours_peak = [], 0
        for _ in range(repeats):
            run = run_measured(cli("validate", str(source), "--output", str(out)), env=base_env(), cwd=ROOT)
            if run.code not in (0, 1):
                raise SystemExit(f"validate failed ({run.code}): {run.err}")
            written = check_ours(out, rows)
            ours.append(run.seconds)
            ours_peak = max(ours_peak, run.peak_mib)
        # The annotation columns, exactly as ours wrote them (not timed), for the floor.
        header = written[0]
        columns = [header.index(name) for name in ANNOTATIONS]
        annotations = [[_text(line[c]) for c in columns] for line in written]
        annotations_file = work / "annotations.csv"
        with open(annotations_file, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(annotations)
        expected_cells = filled_cells(read_sheet(source)) + filled_cells(annotations)
        floor_out = work / f"floor.{kind}"
        floor, floor_peak = [], 0
        for _ in range(repeats):
            floor_out.unlink(missing_ok=True)
            run = run_measured([PYTHON, "-c", FLOOR, str(source), str(annotations_file), str(floor_out)])
            if run.code != 0:
                raise SystemExit(f"floor failed: {run.err}")
            check_floor(floor_out, rows + 1, expected_cells)
            floor.append(run.seconds)
            floor_peak = max(floor_peak, run.peak_mib)
        o, f = spread(ours), spread(floor)
        ratio = o["median"] / f["median"]
        size = f"{rows:,} rows"
        floor_name = "calamine + XlsxWriter write_row" if kind == "xlsx" else "pandas read_csv + to_csv"
        results.append(goal_row(
            bench=f"validate {kind}", server="none", size=size, ours=show(o, "s"),
            baseline=f"floor ({floor_name}, every cell checked) {show(f, 's')}", figure=f"{ratio:.2f}x floor",
            goal="<= 1.5x floor", met=ratio <= 1.5, ratio=round(ratio, 3), ours_s=o, floor_s=f,
            floor_cells=expected_cells, invalid_rows=rows // INVALID_EVERY,
        ))
        results.append(goal_row(
            bench=f"validate {kind} memory", server="none", size=size, ours=f"peak RSS {ours_peak} MiB",
            baseline=f"floor peak RSS {floor_peak} MiB", figure=f"{ours_peak} MiB",
            goal=f"< {MAX_RSS_MIB} MiB (issue 17: at 1M rows)",
            met=ours_peak < MAX_RSS_MIB, ours_peak_rss_mib=ours_peak, floor_peak_rss_mib=floor_peak,
        ))
    return results


def _text(value: object) -> str:
    """A cell as the text it shows: calamine reads the ``row`` number cell back as 2.0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--only", choices=("xlsx", "csv"), help="measure one format only (default: both)")
    parser.add_argument("--keep", type=Path,
                        help="generate the input files in this folder and keep them (for profiling)")
    args = parser.parse_args(argv)
    kinds = (args.only,) if args.only else ("xlsx", "csv")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        results = measure(args.rows, args.repeats, args.keep, kinds)
    else:
        with tempfile.TemporaryDirectory(prefix="bp-bench-validate-") as folder:
            results = measure(args.rows, args.repeats, Path(folder), kinds)
    print_rows(results)
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=1, ensure_ascii=False))
