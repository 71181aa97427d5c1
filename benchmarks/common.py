"""Shared helpers for the benchmarks: synthetic beneficiaries, timing, peak RSS, CPU, samples.

Every benchmark generates its own data in a temporary folder and compares our
tool with a baseline measured in the same run, so the figures are ratios that
mean the same on a fast or a slow machine.  Nothing here asserts on time.
"""

from __future__ import annotations

import csv
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HEADERS = ["nombre", "correo", "telefono", "monto", "moneda", "motivo", "folio", "meta_departamento", "notas"]
DOMAINS = ["ejemplo.mx", "correo.com.mx", "empresa.com", "gmail.com", "hotmail.com", "outlook.es", "yahoo.com.mx"]
FIRST = ["Ana", "José", "María", "Luis", "Sofía", "Jorge", "Lucía", "Andrés", "Valeria", "Raúl"]
LAST = ["Núñez", "García", "Hernández", "López", "Martínez", "Pérez", "Sánchez", "Ramírez", "Cruz", "Gómez"]


def beneficiaries(count: int, *, invalid_every: int = 50, seed: int = 4, unique_emails: bool = True) -> list[list[str]]:
    """``count`` data rows (header not included); about 1 in ``invalid_every`` has a mistake."""
    rng = random.Random(seed)
    rows = []
    for n in range(1, count + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        plain = unicodedata.normalize("NFKD", first.lower()).encode("ascii", "ignore").decode()
        email = f"{plain}.{n}@{rng.choice(DOMAINS)}"
        row = [
            f"{first} {last} {n}",
            email,
            f"55{n:08d}",
            str(100 * rng.randint(100, 5000)),
            "MXN",
            f"Apoyo {n % 12 + 1}/2025",
            f"F{n:07d}",
            rng.choice(["Ventas", "Operación", "Logística"]),
            "=HYPERLINK(\"x\")" if n % 997 == 0 else "",
        ]
        if invalid_every and n % invalid_every == 0:
            kind = (n // invalid_every) % 4
            if kind == 0:
                row[1] = f"persona{n}@@ejemplo"
            elif kind == 1:
                row[3] = "150.50"
            elif kind == 2:
                row[2] = "12-34"
            else:
                row[5] = "x" * 45
        rows.append(row)
    return rows


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADERS)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, rows: list[list[str]]) -> Path:
    """An input workbook as Excel saves it: amounts and phones as numbers."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False})
    sheet = book.add_worksheet("Pagos")
    sheet.write_row(0, 0, HEADERS)
    for number, row in enumerate(rows, start=1):
        for column, value in enumerate(row):
            if column in (2, 3) and value.isdigit():
                sheet.write_number(number, column, int(value))
            elif value:
                sheet.write_string(number, column, value)
    book.close()
    return path


# Linux carries a process's peak RSS across fork and exec, so a child of this
# (large, pandas-laden) process would report at least our own peak.  A small
# fresh interpreter launches the command and reports the command's ru_maxrss
# and its CPU time (user + system, the command's own threads included).
_LAUNCHER = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[2:])\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "open(sys.argv[1], 'w').write(f'{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}')\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


class Run(NamedTuple):
    """One measured command: wall seconds, exit code, peak RSS (MiB), CPU seconds, stderr tail."""

    seconds: float
    code: int
    peak_mib: int
    cpu_s: float
    err: str


def run_measured(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Run a command and measure it from outside (see ``Run``).

    Peak RSS and CPU are the command's own (``os.wait4`` in a small launcher
    process, see ``_LAUNCHER``); the launcher adds ~20 ms of wall time to every
    measurement, ours and baselines alike, and none of its CPU.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        started = time.perf_counter()
        proc = subprocess.Popen([PYTHON, "-c", _LAUNCHER, rss_file.name, *args], env=env, cwd=cwd,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, err = proc.communicate()
        elapsed = time.perf_counter() - started
        text = rss_file.read().split()
    peak = int(text[0]) // 1024 if text else 0
    cpu = float(text[1]) if len(text) > 1 else 0.0
    return Run(elapsed, proc.returncode, peak, cpu, err.decode(errors="replace")[-800:])


def cli(*args: str) -> list[str]:
    return [PYTHON, "-m", "batch_payouts", *args]


def base_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CONEKTA_API_BASE", None)
    # Python's default: modules compiled once and reused (an installed package ships them compiled).
    # Some CI images set PYTHONDONTWRITEBYTECODE=1, which recompiles ~90 modules at every start
    # (~50 ms): a cost of the machine, not of the tool, so the commands measured here do not inherit it.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["BATCH_PAYOUTS_LANG"] = "es"
    env.update(extra)
    return env


# -- repeated samples -----------------------------------------------------------
# One sample on a busy machine can flip a goal between met and missed, so every
# figure is taken ``repeats`` times (3 by default); the table shows the minimum
# and the median, and a goal is judged on the median.

DEFAULT_REPEATS = 3


def spread(values: list[float]) -> dict[str, float]:
    """The minimum and the median of some samples (what the table prints)."""
    return {"min": min(values), "median": statistics.median(values), "samples": len(values)}


def show(stats: dict[str, float], unit: str, digits: int = 2) -> str:
    """``median 1.23 s (min 1.10, 3 runs)`` for the table."""
    runs = "1 run" if stats["samples"] == 1 else f"{stats['samples']:g} runs"
    return f"median {stats['median']:.{digits}f} {unit} (min {stats['min']:.{digits}f}, {runs})"


def goal_row(*, bench: str, server: str, size: str, ours: str, baseline: str, figure: str, goal: str,
             met: bool | None, **data: object) -> dict:
    """One line of the summary table (run_all prints these as Markdown), plus the raw figures."""
    return {"bench": bench, "server": server, "size": size, "ours": ours, "baseline": baseline,
            "figure": figure, "goal": goal, "met": met, **data}


def print_rows(rows: list[dict]) -> None:
    for r in rows:
        met = "" if r["met"] is None else ("met" if r["met"] else "NOT MET")
        print(f"{r['bench']} [{r['server']}, {r['size']}]: ours {r['ours']}; baseline {r['baseline']}; "
              f"{r['figure']} (goal {r['goal'] or '-'}) {met}")


def read_sheet(path: Path) -> list[list[object]]:
    """Every row of a CSV or of an XLSX's first sheet (header included), to check what was written.

    XLSX through python-calamine (a number cell comes back as a float, an
    empty cell as ""); CSV through the csv module (a BOM is dropped).
    """
    if path.suffix.lower() == ".xlsx":
        from python_calamine import CalamineWorkbook

        return CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python(skip_empty_area=False)
    with open(path, newline="", encoding="utf-8-sig") as source:
        return list(csv.reader(source))


def filled_cells(rows: list[list[object]]) -> int:
    """Cells that hold something: what a writer that silently drops cells gets wrong."""
    return sum(1 for row in rows for value in row if value not in ("", None))
