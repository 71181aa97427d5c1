"""Hostile input: whatever file comes in, the CLI answers with exit 1 or 2 and a message.

Never a traceback, never half a results sheet: after every invocation the output
either does not exist or is a complete, readable sheet with one line per input
row, and no temporary file is left beside it.  Both ``validate`` and ``run``
(against the real HTTP sandbox) are fed random bytes, truncated and corrupted
XLSX and CSV, huge cells, control characters, wrong cell types, empty and
header-only files, duplicate headers, title rows above the header, Excel's
``sep=;`` line and NUL bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_payouts.cli.main import main
from batch_payouts.sandbox import Sandbox
from conftest import API_KEY

HEADER = ["nombre", "correo", "monto", "motivo"]
BAD_ROW = ["Beto Malo", "no-es-correo", "10000", "Pago"]  # always invalid: a readable file exits 1
GOOD_ROW = ["Ana Núñez", "ana@ejemplo.mx", "10000", "Pago"]
# More examples when hunting locally: FUZZ_EXAMPLES=1000 pytest tests/test_input_fuzz.py
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def server():
    with Sandbox() as sandbox:
        yield sandbox


def invoke(folder: Path, *args: str):
    """The real CLI in-process; any exception other than SystemExit propagates and fails the test."""
    env = {"CONEKTA_API_KEY": API_KEY, "BATCH_PAYOUTS_LEDGER": str(folder.parent / f"{folder.name}.ledger.sqlite"),
           "CONEKTA_API_BASE": None, "BATCH_PAYOUTS_LANG": None, "BATCH_PAYOUTS_CONFIG": None}
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


def check_answer(result, folder: Path, source: Path, *, allowed=(1, 2)) -> Path | None:
    """Exit code, a message, no traceback, and a complete output (or none)."""
    output_text = result.output
    assert result.exit_code in allowed, output_text
    assert output_text.strip(), "no message at all"
    assert "Traceback" not in output_text
    return check_folder(folder, source, exit_code=result.exit_code)


def check_folder(folder: Path, source: Path, *, exit_code: int) -> Path | None:
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith((".tmp", "~"))]
    assert leftovers == [], f"temporary files left behind: {leftovers}"
    outputs = [p for p in folder.iterdir() if ".results." in p.name and not p.name.endswith(".audit.jsonl")]
    if exit_code == 2:
        # The batch could not run: the file was refused before anything was written.
        assert outputs == [], [p.name for p in outputs]
        return None
    assert len(outputs) == 1, [p.name for p in folder.iterdir()]
    assert_complete_sheet(outputs[0])
    return outputs[0]


def assert_complete_sheet(path: Path) -> list[list[str]]:
    if path.suffix == ".xlsx":
        book = openpyxl.load_workbook(path, read_only=True)
        rows = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
        book.close()
    else:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    assert rows, f"{path.name} is empty"
    header = rows[0]
    assert "row" in header and "status" in header, header
    status = header.index("status")
    assert all(r[status] in ("valid", "invalid", "created", "failed", "unknown", "duplicate") for r in rows[1:])
    return rows


def csv_bytes(rows: list[list[str]], delimiter: str = ",") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def xlsx_bytes(rows: list[list[object]], *, merge_title: bool = False) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    if merge_title:
        sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=4)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


VALID_XLSX = xlsx_bytes([HEADER, BAD_ROW, GOOD_ROW, ["Carla", "carla@ejemplo.mx", 20000, "Beca"]])
VALID_CSV = csv_bytes([HEADER, BAD_ROW, GOOD_ROW])


def _fresh() -> tuple[tempfile.TemporaryDirectory, Path]:
    handle = tempfile.TemporaryDirectory()
    folder = Path(handle.name) / "work"
    folder.mkdir()
    return handle, folder


# -- random and damaged bytes --------------------------------------------------
@FUZZ
@given(data=st.binary(max_size=4000), ext=st.sampled_from([".csv", ".xlsx", ".tsv", ".txt"]))
def test_random_bytes_are_refused_with_a_message(data, ext):
    handle, folder = _fresh()
    with handle:
        source = folder / f"pagos{ext}"
        source.write_bytes(data)
        check_answer(invoke(folder, "validate", source), folder, source)


@FUZZ
@given(cut=st.integers(0, len(VALID_XLSX) - 1))
def test_truncated_xlsx_is_refused(cut):
    handle, folder = _fresh()
    with handle:
        source = folder / "pagos.xlsx"
        source.write_bytes(VALID_XLSX[:cut])
        check_answer(invoke(folder, "validate", source), folder, source, allowed=(2,))


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, len(VALID_XLSX) - 1), st.integers(1, 255)), min_size=1, max_size=8))
def test_corrupted_xlsx_is_refused_or_read(flips):
    damaged = bytearray(VALID_XLSX)
    for position, mask in flips:
        damaged[position] ^= mask
    handle, folder = _fresh()
    with handle:
        source = folder / "pagos.xlsx"
        source.write_bytes(bytes(damaged))
        # A flip in a part nobody reads (or in zip padding) leaves a readable file: exit 1 (BAD_ROW).
        check_answer(invoke(folder, "validate", source), folder, source)


@FUZZ
@given(cut=st.integers(0, len(VALID_CSV)))
def test_truncated_csv_is_refused_or_read(cut):
    handle, folder = _fresh()
    with handle:
        source = folder / "pagos.csv"
        source.write_bytes(VALID_CSV[:cut])
        # BAD_ROW comes first: a file cut anywhere is either refused (2) or has an invalid row (1).
        check_answer(invoke(folder, "validate", source), folder, source)


# -- cells full of anything ------------------------------------------------------------
hostile_text = st.lists(
    st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from(
        ["\x00", "\x01", "\x07", "\x0b", "\x1b", "\x7f", "\t", "\r", "\n", "\r\n", "\u2028", "\u202e", "\ufeff",
         "=", "+", "-", "@", '"', ";", ",", "'", "<r>", "</r>", '=HYPERLINK("http://x")', "10000", "a@b.mx"]
    ),
    max_size=12,
).map("".join)


@FUZZ
@given(
    cells=st.lists(st.lists(hostile_text, min_size=4, max_size=6), min_size=0, max_size=5),
    ext=st.sampled_from([".csv", ".xlsx"]),
    out_ext=st.sampled_from([".csv", ".xlsx"]),
)
def test_any_cell_text_gives_exit_1_or_2_and_a_complete_sheet(cells, ext, out_ext):
    rows = [HEADER + ["extra"], BAD_ROW + [""], *cells]
    handle, folder = _fresh()
    with handle:
        source = folder / f"pagos{ext}"
        if ext == ".csv":
            try:
                source.write_bytes(csv_bytes(rows))
            except UnicodeEncodeError:
                return
        else:
            try:
                source.write_bytes(xlsx_bytes(rows))
            except (ValueError, openpyxl.utils.exceptions.IllegalCharacterError):
                return  # openpyxl itself refuses control characters in cells
        output = folder / f"pagos.results{out_ext}"
        result = invoke(folder, "validate", source, "--output", output)
        written = check_answer(result, folder, source)
        if written is not None:
            assert len(assert_complete_sheet(written)) >= 2  # header + BAD_ROW at least


@settings(max_examples=max(12, EXAMPLES // 3), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.lists(hostile_text, min_size=4, max_size=4), min_size=1, max_size=4))
def test_run_against_the_sandbox_never_crashes_and_never_pays_an_invalid_row(server, cells):
    rows = [HEADER, BAD_ROW, *cells]
    handle, folder = _fresh()
    with handle:
        source = folder / "pagos.csv"
        try:
            source.write_bytes(csv_bytes(rows))
        except UnicodeEncodeError:
            return
        before = len(server.payout_orders())
        result = invoke(folder, "run", source, "--api-base", server.url, "--workers", "2", "--allow-repeat")
        written = check_answer(result, folder, source)
        created = server.payout_orders()[before:]
        if written is None:
            assert created == []
            return
        sheet = assert_complete_sheet(written)
        header = sheet[0]
        statuses = [line[header.index("status")] for line in sheet[1:]]
        assert statuses.count("created") == len(created)
        assert statuses[0] == "invalid"
        ids = {line[header.index("payout_order_id")] for line in sheet[1:] if line[header.index("status")] == "created"}
        assert ids == {order["id"] for order in created}


# -- specific shapes -------------------------------------------------------------------
HUGE = "x" * 100_000


def _cases() -> dict[str, tuple[str, bytes, tuple[int, ...]]]:
    """name -> (file suffix, content, allowed exit codes)."""
    c = {
        "empty_csv": (".csv", b"", (2,)),
        "whitespace_csv": (".csv", b" \r\n\t\r\n  ,  ,\r\n", (2,)),
        "header_only_csv": (".csv", csv_bytes([HEADER]), (2,)),
        "header_then_blank_rows": (".csv", csv_bytes([HEADER, ["", "", "", ""], [" ", "", "", ""]]), (2,)),
        "duplicate_headers": (".csv", csv_bytes([HEADER + ["correo"], BAD_ROW + ["x@y.mx"]]), (2,)),
        "duplicate_alias_headers": (".csv", csv_bytes([["nombre", "name", "correo", "monto", "motivo"],
                                                       ["A", "A", "a@b.mx", "100", "x"]]), (2,)),
        "title_row_above_header": (".csv", csv_bytes([["Pagos de marzo", "", "", ""], HEADER, BAD_ROW]), (2,)),
        "blank_first_row": (".csv", b"\r\n" + csv_bytes([HEADER, BAD_ROW, GOOD_ROW]), (1,)),
        "excel_sep_line": (".csv", b"sep=;\r\n" + csv_bytes([HEADER, BAD_ROW, GOOD_ROW], delimiter=";"), (1,)),
        "nul_bytes_in_a_cell": (".csv", csv_bytes([HEADER, BAD_ROW]).replace(b"Beto", b"Be\x00to"), (2,)),
        "only_nul_bytes": (".csv", b"\x00" * 64, (2,)),
        "utf16_csv": (".csv", "\ufeff".encode("utf-16-le") + "nombre,correo,monto,motivo\r\nB,mal,100,x\r\n".encode("utf-16-le"), (1, 2)),
        "xlsx_saved_as_csv": (".csv", VALID_XLSX, (2,)),
        "csv_saved_as_xlsx": (".xlsx", VALID_CSV, (2,)),
        "unknown_extension": (".pdf", VALID_CSV, (2,)),
        "huge_name_cell": (".csv", csv_bytes([HEADER, BAD_ROW, [HUGE, "ana@ejemplo.mx", "10000", "Pago"]]), (1,)),
        "huge_reason_cell": (".csv", csv_bytes([HEADER, BAD_ROW, ["Ana", "ana@ejemplo.mx", "10000", HUGE]]), (1,)),
        "huge_amount_cell": (".csv", csv_bytes([HEADER, BAD_ROW, ["Ana", "ana@ejemplo.mx", "9" * 100_000, "P"]]), (1,)),
        "huge_email_cell": (".csv", csv_bytes([HEADER, BAD_ROW, ["Ana", HUGE + "@ejemplo.mx", "10000", "P"]]), (1,)),
        "huge_header": (".csv", csv_bytes([HEADER + [HUGE], BAD_ROW + ["1"]]), (1,)),
        "huge_xlsx_cell": (".xlsx", xlsx_bytes([HEADER + ["nota"], BAD_ROW + [HUGE[:32_000]], GOOD_ROW + [HUGE[:32_000]]]), (1,)),
        "control_chars": (".csv", csv_bytes([HEADER, ["\x01\x02\x1b[31m", "a\x0b@b.mx", "\x7f100", "\x0c"], BAD_ROW]), (1,)),
        "ragged_rows": (".csv", b"nombre,correo,monto,motivo\r\nAna\r\nBeto,mal,1,2,3,4,5,6\r\n", (1,)),
        "unbalanced_quotes": (".csv", b'nombre,correo,monto,motivo\r\n"Ana,ana@x.mx,100,P\r\nBeto,mal,100,P\r\n', (1, 2)),
        "xlsx_empty_sheet": (".xlsx", xlsx_bytes([]), (2,)),
        "xlsx_header_only": (".xlsx", xlsx_bytes([HEADER]), (2,)),
        "xlsx_merged_title_row": (".xlsx", xlsx_bytes([["Pagos de marzo"], HEADER, BAD_ROW], merge_title=True), (2,)),
        "xlsx_wrong_types": (".xlsx", xlsx_bytes([
            HEADER + ["telefono"],
            BAD_ROW + [""],
            [12345, True, 3000.5, dt.datetime(2024, 1, 2, 3, 4, 5), 5512345678.0],
            ["Ana", "ana@ejemplo.mx", "=1+1", 42, "=A1"],
            ["Eva", "eva@ejemplo.mx", dt.date(2024, 5, 1), -1, None],
            ["Iris", "iris@ejemplo.mx", float("1e300"), "#DIV/0!", 1e20],
        ]), (1,)),
    }
    return c


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("command", ["validate", "run"])
def test_shaped_input(server, name, command):
    suffix, content, allowed = CASES[name]
    handle, folder = _fresh()
    with handle:
        source = folder / f"pagos{suffix}"
        source.write_bytes(content)
        before = len(server.payout_orders())
        args = ["run", source, "--api-base", server.url, "--allow-repeat"] if command == "run" else ["validate", source]
        result = invoke(folder, *args)
        check_answer(result, folder, source, allowed=allowed)
        if result.exit_code == 2:
            assert len(server.payout_orders()) == before  # refused before anything was sent


def test_huge_cell_survives_in_csv_output_and_is_cut_to_excel_limit_in_xlsx():
    handle, folder = _fresh()
    with handle:
        source = folder / "pagos.csv"
        source.write_bytes(csv_bytes([HEADER + ["nota"], BAD_ROW + [HUGE]]))
        check_answer(invoke(folder, "validate", source, "--output", folder / "pagos.results.csv"), folder, source)
        rows = assert_complete_sheet(folder / "pagos.results.csv")
        assert rows[1][4] == HUGE
        (folder / "pagos.results.csv").unlink()
        check_answer(invoke(folder, "validate", source, "--output", folder / "x.results.xlsx"), folder, source)
        rows = assert_complete_sheet(folder / "x.results.xlsx")
        assert rows[1][4] == HUGE[:32_767]


def test_excel_sep_line_is_a_delimiter_hint_not_a_row():
    handle, folder = _fresh()
    with handle:
        source = folder / "pagos.csv"
        source.write_bytes(b"sep=;\r\n" + csv_bytes([HEADER, BAD_ROW, GOOD_ROW], delimiter=";"))
        result = invoke(folder, "validate", source)
        check_answer(result, folder, source, allowed=(1,))
        rows = assert_complete_sheet(folder / "pagos.results.xlsx")
        assert [r[rows[0].index("status")] for r in rows[1:]] == ["invalid", "valid"]


def test_a_failed_write_leaves_the_previous_sheet_whole_and_no_temp_file():
    """The output path is taken by a folder: the write fails with a message, nothing half-written."""
    handle, folder = _fresh()
    with handle:
        source = folder / "pagos.csv"
        source.write_bytes(VALID_CSV)
        (folder / "pagos.results.xlsx").mkdir()
        result = invoke(folder, "validate", source, "--output", folder / "pagos.results.xlsx")
        assert result.exit_code == 2 and "Traceback" not in result.output and result.output.strip()
        assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("output_name", ["pagos.results.pdf", "carpeta"])
def test_an_unsupported_output_path_is_refused_before_anything_is_sent(server, output_name):
    """Regression: such a path was only checked when the sheet was written, after every payout was
    sent (ValueError traceback, exit 1, no results sheet)."""
    handle, folder = _fresh()
    with handle:
        source = folder / "pagos.csv"
        source.write_bytes(csv_bytes([HEADER, GOOD_ROW]))
        (folder / "carpeta").mkdir()
        before = len(server.payout_orders())
        result = CliRunner().invoke(
            main, ["run", str(source), "--api-base", server.url, "--output", str(folder / output_name)],
            env={"CONEKTA_API_KEY": API_KEY, "BATCH_PAYOUTS_LEDGER": str(folder.parent / "l.sqlite")},
        )
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.exit_code == 2, result.output
        assert len(server.payout_orders()) == before


# -- the real process: what a user's terminal shows -----------------------------------------
@pytest.mark.parametrize("name", ["random", "truncated_xlsx", "nul_bytes", "huge_reason"])
def test_subprocess_never_prints_a_traceback(tmp_path, name):
    content = {
        "random": os.urandom(2048),
        "truncated_xlsx": VALID_XLSX[: len(VALID_XLSX) // 2],
        "nul_bytes": b"\x00nombre,correo\x00\r\n",
        "huge_reason": csv_bytes([HEADER, BAD_ROW, ["Ana", "ana@ejemplo.mx", "10000", HUGE]]),
    }[name]
    folder = tmp_path / "work"
    folder.mkdir()
    source = folder / ("pagos.xlsx" if name == "truncated_xlsx" else "pagos.csv")
    source.write_bytes(content)
    env = {**os.environ, "CONEKTA_API_KEY": API_KEY, "BATCH_PAYOUTS_LEDGER": str(tmp_path / "ledger.sqlite")}
    env.pop("CONEKTA_API_BASE", None)
    done = subprocess.run([sys.executable, "-m", "batch_payouts", "validate", str(source)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode in (1, 2), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert (done.stderr + done.stdout).strip()
    check_folder(folder, source, exit_code=done.returncode)
