"""Shared helpers for the benchmarks: synthetic beneficiaries, timing, peak RSS.

Every benchmark generates its own data in a temporary folder and compares our
tool with a baseline measured in the same run, so the figures are ratios that
mean the same on a fast or a slow machine.  Nothing here asserts on time.
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

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
# fresh interpreter launches the command and reports the command's ru_maxrss.
_LAUNCHER = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[2:])\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def run_measured(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[float, int, int, str]:
    """Run a command; (wall seconds, exit code, peak RSS in MiB, stderr tail).

    Peak RSS is the command's own ``ru_maxrss`` (KiB on Linux), taken by a
    small launcher process (see ``_LAUNCHER``); the launcher adds ~20 ms to
    every measurement, ours and baselines alike.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        started = time.perf_counter()
        proc = subprocess.Popen([PYTHON, "-c", _LAUNCHER, rss_file.name, *args], env=env, cwd=cwd,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, err = proc.communicate()
        elapsed = time.perf_counter() - started
        text = rss_file.read().strip()
    peak = int(text) // 1024 if text else 0
    return elapsed, proc.returncode, peak, err.decode(errors="replace")[-800:]


def cli(*args: str) -> list[str]:
    return [PYTHON, "-m", "batch_payouts", *args]


def base_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CONEKTA_API_BASE", None)
    env["BATCH_PAYOUTS_LANG"] = "es"
    env.update(extra)
    return env


def best_of(repeats: int, fn):
    """Minimum wall time of ``fn()`` over ``repeats`` runs and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result
