"""cells.py: a cell as the text a person sees in Excel, and the column scans built on it."""

from __future__ import annotations

import datetime as dt
import gc
import re

import pandas as pd
import pytest

from batch_payouts.files import cells



@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("  x ", "  x "),
        (3000.0, "3000"),
        (-0.0, "0"),
        (5512345678.0, "5512345678"),
        (0.1 + 0.2, "0.3"),
        (1e-7, "0.0000001"),
        (1.2345678901234567e18, "1234567890123460000"),
        (12, "12"),
        (float("nan"), ""),
        (False, "FALSE"),
        (dt.date(2030, 5, 1), "2030-05-01"),
        (dt.datetime(2030, 5, 1, 8, 0, 5), "2030-05-01T08:00:05"),
        (dt.time(8, 30), "08:30:00"),
        ({"b": 1, "a": "ñ"}, '{"a": "ñ", "b": 1}'),
        (pd.NA, ""),
    ],
)
def test_cell_text(value, text):
    assert cells.cell_text(value) == text


@pytest.mark.parametrize(("position", "letters"), [(0, "A"), (25, "Z"), (26, "AA"), (27, "AB"), (701, "ZZ"), (702, "AAA")])
def test_column_letter(position, letters):
    assert cells.column_letter(position) == letters


def test_formula_like_text():
    assert [cells.is_formula_like(t) for t in ("=1+1", "+52", "-5", "@x", "\tx", "\rx")] == [True] * 6
    assert [cells.is_formula_like(t) for t in ("", "Ana", "'=1", " =1")] == [False] * 4


def test_flagged_positions_scan_a_column_once():
    texts = ["Ana", "=1", "", "x=y", "@"]
    joined = cells.joined_cells(texts)
    assert joined == "\x00Ana\x00=1\x00\x00x=y\x00@\x00"
    assert cells.flagged_positions(re.compile(r"\x00[=@]"), texts, joined) == [1, 4]
    assert cells.flagged_positions(re.compile("="), texts) == [1, 3]
    assert cells.flagged_positions(re.compile("z"), texts) == []


def test_short_detail_is_one_short_line():
    assert cells.short_detail(ValueError("a\nb")) == "a b"
    assert cells.short_detail(KeyError()) == "KeyError"
    long = cells.short_detail(OSError("x" * 500), limit=20)
    assert len(long) == 20 and long.endswith("…")


def test_paused_gc_restores_only_what_it_found():
    assert gc.isenabled()
    with cells.paused_gc():
        assert not gc.isenabled()
        with cells.paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause found it disabled: left so
    assert gc.isenabled()
