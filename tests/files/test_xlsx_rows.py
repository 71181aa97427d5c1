"""xlsx_rows.py: the rows written straight as XML are byte for byte what XlsxWriter's API writes."""

from __future__ import annotations

import datetime as dt
import zipfile

import pandas as pd
import pytest

from batch_payouts.files import write
from batch_payouts.files.xlsx_rows import RowWriter

# Every kind of cell the results sheet can hold, and the texts XlsxWriter escapes.
TEXTS = [
    "Ana López", "", " leading", "trailing ", "a\nb", "ends\n", "tab\tin", "\tstarts", "x & y <z>", '"quoted"',
    "_x0041_ literal", "ctl\x01\x1f", "\x0bvt", "non\ufffechar", "<r>rich-looking</r>", "=1+1", "+52", "-150",
    "@SUM(A1)", "é" * 17_000, "🙂" * 9_000, "ok",
]


def _frame() -> pd.DataFrame:
    count = len(TEXTS)
    return pd.DataFrame(
        {
            "row": list(range(2, count + 2)),
            "texto": TEXTS,
            "referencia": [t if i % 3 else None for i, t in enumerate(TEXTS)],
            "monto": pd.array([150000 if i % 4 else None for i in range(count)], dtype="Int64"),
            "pesos": [1500.5 if i % 2 else None for i in range(count)],
            "mixto": [True, 3.25, dt.date(2026, 3, 1), dt.datetime(2026, 3, 1, 12, 30), float("nan"), 10**16, *TEXTS[:count - 6]],
            "status": ["invalid" if i % 2 else "created" for i in range(count)],
            "vacio": [""] * count,
        }
    )


def _sheets(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as book:
        return {name: book.read(name) for name in book.namelist() if name != "docProps/core.xml"}


@pytest.mark.parametrize("fills", [{}, {"invalid": "FFF8CBAD"}])
def test_direct_rows_are_byte_for_byte_what_the_xlsxwriter_api_writes(tmp_path, monkeypatch, fills):
    frame = _frame()
    options = dict(text_columns=["referencia"], integer_columns=["row", "monto"], money_columns=["pesos"],
                   row_fills=fills, extra_sheets={"Otra": frame})
    direct = write.write_table(frame, tmp_path / "direct.xlsx", **options)
    monkeypatch.setattr(RowWriter, "for_sheet", classmethod(lambda cls, sheet: None))  # the public API only
    api = write.write_table(frame, tmp_path / "api.xlsx", **options)
    assert _sheets(direct) == _sheets(api)


def test_the_installed_xlsxwriter_gets_the_direct_rows(tmp_path):
    """With the pinned XlsxWriter the direct path is taken (a drift would silently cost 10x)."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(tmp_path / "x.xlsx"), {"constant_memory": True})
    try:
        assert RowWriter.for_sheet(book.add_worksheet()) is not None
        plain = xlsxwriter.Workbook(str(tmp_path / "y.xlsx"))
        assert RowWriter.for_sheet(plain.add_worksheet()) is None  # shared strings: not what it writes
        plain.close()
    finally:
        book.close()
