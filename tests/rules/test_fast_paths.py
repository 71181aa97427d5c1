"""The column-at-a-time fast paths give exactly what the per-cell definitions give.

validate on 100,000 rows checks whole columns at once (one scan of a column
joined by NUL, one email-validator call per distinct domain, csv rows built by
joins).  Each test here pits one fast path against the plain per-cell rule it
replaces, on tricky and on generated values.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_payouts import report
from batch_payouts.files import cells, read, write
from batch_payouts.rules import columns, normalize, schema
from batch_payouts.rules.validation import validate

# --------------------------------------------------------------------------- emails

TRICKY_ADDRESSES = [
    "", "a@b.com", "A@B.COM", "ana.lopez+pagos@empresa.com.mx", "a_b%c-d@x.mx", "a@b.c", "a@b.co", "a@123.com",
    ".a@b.com", "a.@b.com", "a..b@b.com", ".@b.com", "@b.com", "a@", "a", "a@@b.com", "a@b@c.com", "persona1@@ejemplo",
    "a b@c.com", "a@b c.com", "a\tb@c.com", "a\nb@c.com", "a@b\nc.com", "a\u00a0b@c.com", "josé@x.com", "a@münchen.de",
    "a@xn--mnchen-3ya.de", "a@ß.de", "a@b", "a@localhost", "a@x.local", "a@x.test", "a@x.invalid", "a@example.com",
    "a@b.com.", "a@.b.com", "a@b..com", "a@-b.com", "a@b-.com", "a@[127.0.0.1]", '"quoted"@x.com', '"a b"@x.com',
    "a!b@x.com", "a#b@x.com", "a'b@x.com", "a/b@x.com", "a=b@x.com", "a?b@x.com", "a^b@x.com", "a`b@x.com",
    "a{b@x.com", "a|b@x.com", "a}b@x.com", "a~b@x.com", "a*b@x.com", "a&b@x.com", "a$b@x.com", "(a)@x.com",
    "a\x00b@x.com", "\x00@x.com", "a@x.com\x00", "x" * 64 + "@b.com", "x" * 65 + "@b.com",
    "a@" + ".".join(["b" * 63] * 4), "a@" + ".".join(["b" * 63] * 3) + ".com", "x" * 64 + "@" + "b" * 60 + ".com",
    "x" * 60 + "@" + ".".join(["c" * 60] * 3) + ".mx", "user@sub.domain.example.org", "USER@Domain.COM",
    "a@b.c0m", "a@1.2.3.4", "a@b.museum", "a@b.xn--p1ai", "δοκιμή@παράδειγμα.δοκιμή", "a@b.com\u200b",
]


def per_address(values: list[str]) -> list[bool]:
    """The rule: empty (reported as missing_email instead) or valid per email-validator."""
    return [value == "" or schema.is_valid_email(value) for value in values]


def test_email_check_agrees_on_tricky_addresses_together_and_alone():
    together = schema._emails_ok(pd.Series(TRICKY_ADDRESSES, dtype="str")).tolist()
    assert together == per_address(TRICKY_ADDRESSES)
    for address in TRICKY_ADDRESSES:
        alone = schema._emails_ok(pd.Series([address], dtype="str")).tolist()
        assert alone == per_address([address]), address


def test_email_check_keeps_the_index_and_handles_no_rows():
    emails = pd.Series(["a@b.com", "bad@", ""], index=[7, 3, 9], dtype="str")
    result = schema._emails_ok(emails)
    assert result.index.tolist() == [7, 3, 9] and result.dtype == bool
    assert result.tolist() == [True, False, True]
    assert schema._emails_ok(pd.Series([], dtype="str")).tolist() == []


_EMAIL_PARTS = st.sampled_from(
    ["a", "Z", "0", ".", "..", "@", "@@", "-", "_", "+", "%", "!", " ", "é", "x.com", "b.mx", "localhost", "\x00", ""]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_EMAIL_PARTS, max_size=6).map("".join), max_size=12))
def test_email_check_agrees_on_generated_columns(values):
    assert schema._emails_ok(pd.Series(values, dtype="str")).tolist() == per_address(values)


@pytest.mark.parametrize("block", [1, 3, 7])
def test_email_check_in_blocks_agrees(monkeypatch, block):
    """Addresses are checked a block at a time (issue 17's memory); domains seen in an earlier
    block, and a NUL only in some blocks, must not change a verdict."""
    monkeypatch.setattr(schema, "_EMAIL_BLOCK", block)
    values = TRICKY_ADDRESSES + ["a@b.com", "x\x00y@b.com", "c@b.com", "", "A@B.COM"] + TRICKY_ADDRESSES[:5]
    assert schema._emails_ok(pd.Series(values, dtype="str")).tolist() == per_address(values)


# --------------------------------------------------------------------------- other column checks

_TEXT = st.text(alphabet=st.sampled_from(list("09a .-()+\t\u0660\u00b2x,\"'=@\n\x00é\u0301")), max_size=18)


@settings(max_examples=200, deadline=None)
@given(st.lists(_TEXT, max_size=10))
def test_phone_rules_agree_with_the_regexes(values):
    series = pd.Series(values, dtype="str")
    expected = [v == "" or re.fullmatch(columns.PHONE_PATTERN, v) is not None for v in values]
    assert schema._phones_ok(series).tolist() == expected
    cleaned = [re.sub(r"^\+", "", re.sub(normalize._PHONE_SEPARATORS, "", v)) for v in values]
    assert normalize._phones(values) == cleaned


@settings(max_examples=200, deadline=None)
@given(st.lists(_TEXT, max_size=10))
def test_text_helpers_agree_with_pandas(values):
    series = pd.Series(values, dtype="str", index=range(5, 5 + len(values)))
    assert schema._filled(series).tolist() == (series != "").tolist()
    assert schema._lengths(series).tolist() == series.str.len().tolist()
    assert normalize._nfc(values) == [unicodedata.normalize("NFC", v) for v in values]
    assert normalize._currencies(values) == [v.upper() if v else "MXN" for v in values]


_AMOUNT = st.text(alphabet=st.sampled_from(list("0123456789,.$+- \u00a0e\u00b2\u0661")), max_size=10) | st.sampled_from(
    ["9" * 15, "9" * 13, "1" + "0" * 13, "0" * 20 + "1", "1" + "0" * 15, "9" * 16, "9" * 17, "9" * 5000]
)


@pytest.mark.parametrize("unit", ["cents", "pesos"])
@settings(max_examples=150, deadline=None)
@given(texts=st.lists(_AMOUNT, max_size=10))
def test_amount_parsing_agrees_with_the_per_cell_rules(unit, texts):
    readable, cents, key = normalize._parse_amounts(texts, unit)
    for position, text in enumerate(texts):
        cleaned = re.sub(r"\s+", "", text)
        if unit == "pesos":
            cleaned = re.sub(r"^([+-]?)\$([+-]?)", r"\1\2", cleaned)
        value = None
        if re.fullmatch(normalize._AMOUNT_SYNTAX, cleaned):
            value = Decimal(cleaned.replace(",", "")) * (100 if unit == "pesos" else 1)
            if abs(value) >= columns.MAX_AMOUNT_CENTS:
                value = None
        whole = int(value) if value is not None and value == value.to_integral_value() else None
        assert readable.iloc[position] == (value is not None)
        assert (cents.iloc[position] is pd.NA and whole is None) or cents.iloc[position] == whole
        assert key[position] == ("?" + text if whole is None else str(whole))
    assert str(cents.dtype) == "Int64" and readable.dtype == bool


def test_expiries_by_distinct_text():
    texts = ["", "2030-12-31", "bad", "2030-12-31", "2030-12-31 10:00", ""]
    result = normalize._parse_expiries(texts)
    assert str(result.dtype) == "Int64"
    expected = [normalize._expiry_seconds(t) if t else None for t in texts]
    assert [None if v is pd.NA else v for v in result.tolist()] == expected


# --------------------------------------------------------------------------- one scan per column


@settings(max_examples=200, deadline=None)
@given(st.lists(_TEXT, max_size=10), st.sampled_from([r"[,\"\r\n]", r"\x00[=+\-@\t\r]", r"[\s\-.()+]", r"é"]))
def test_flagged_positions_are_the_cells_the_pattern_finds(texts, pattern):
    compiled = re.compile(pattern)
    found = cells.flagged_positions(compiled, texts)
    assert found == [p for p, t in enumerate(texts) if compiled.search("\x00" + t + "\x00")]


# --------------------------------------------------------------------------- reading


def reference_rows_to_frame(rows: list[list[str]]) -> pd.DataFrame | None:
    """Row by row: the definition of read_table's frame (see tests/files/test_read.py for
    the behaviour); None when read_table must refuse the rows."""
    numbered = [(n, row) for n, row in enumerate(rows, start=1) if "".join(row).strip()]
    if not numbered:
        return None
    (_, header), body = numbered[0], numbered[1:]
    width = max(len(row) for _, row in numbered)
    header = [cell.strip() for cell in header] + [""] * (width - len(header))
    data = [row + [""] * (width - len(row)) for _, row in body]
    by_position = list(zip(*data)) if data else [() for _ in range(width)]
    names, columns = [], []
    for position, title in enumerate(header):
        if title or "".join(by_position[position]).strip():
            names.append(title or f"({cells.column_letter(position)})")
            columns.append(list(by_position[position]))
    if len(set(names)) != len(names):
        return None
    frame = pd.DataFrame(dict(zip(names, columns)), index=pd.Index([n for n, _ in body], dtype="int64"),
                         columns=names, dtype="str")
    return frame


_CELL = st.sampled_from(["", " ", "a", "b", "nombre", "correo", "é", "\t", "x y", "1", "=1"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_CELL, max_size=4), min_size=1, max_size=8))
def test_rows_become_the_same_frame(rows):
    expected = reference_rows_to_frame([list(r) for r in rows])
    if expected is None:
        with pytest.raises(read.InputFileError):
            read._rows_to_frame([list(r) for r in rows], Path("x.csv"))
        return
    got = read._rows_to_frame([list(r) for r in rows], Path("x.csv"))
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def csv_module_columns(payload: bytes, delimiter: str) -> list[list[str]]:
    """The definition: every record as ``csv.reader`` reads it, padded into columns."""
    rows = list(csv.reader(io.StringIO(payload.decode("utf-8"), newline=""), delimiter=delimiter))
    return [column.tolist() for column in read._rows_to_columns(rows)]


TRICKY_CSV = [
    "a,b\n1,2\n", "a,b\n\n1,2\n", "a,b\n  \n1,2", "a,b\n1\n1,2,3\n", 'a,b\n"x\ny",2\n3,4\n', 'a,b\nb"c,d\n',
    'a,b\n"ab"c,d\n', "a,b\r\n1,2\r\n\r\n", "a,b\r1,2\r", 'a,b\n"unterminated,2\n', "a,b\n,\n,,\n",
    "a,b,c\n1,2\n", '"a""b",c\n"""",""\n', "\na,b\n1,2\n", "a,b\n1,2", "a\n#1\n", "a,b\n NA ,null\n",
    'a,b\n"x\r\ny",2\r\n', "a;b\n1;2\n", "a,b\n\t,\t\n", "a\n\n\n", "é,ñ\n«x»,€\n", 'a,b\n "q" ,2\n',
    "\ufeffa,b\n1,2\n", "a,b\n\ufeff1,2\n", "a\u2028b,c\n1,2\x85\n", "a,b\x0c\n\x1a,2\n",
]


@pytest.mark.parametrize("text", TRICKY_CSV)
def test_tokenizer_reads_csv_as_the_csv_module_does(text):
    delimiter = ";" if ";" in text else ","
    got = read._tokenized_columns(text.encode("utf-8"), delimiter)
    if got is not None:
        assert [column.tolist() for column in got] == csv_module_columns(text.encode("utf-8"), delimiter)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.sampled_from("ab1 ,;\"\n\r\té#'\\\ufeff\x0b\x0c\x1a\x1c\x1e\x85\u2028"), max_size=30),
                min_size=1, max_size=6),
       st.sampled_from([",", ";", "\t"]))
def test_tokenizer_agrees_with_the_csv_module_on_generated_text(lines, delimiter):
    text = "\n".join(lines)
    got = read._tokenized_columns(text.encode("utf-8"), delimiter)
    if got is not None:
        assert [column.tolist() for column in got] == csv_module_columns(text.encode("utf-8"), delimiter)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_CELL | st.sampled_from(['"', ",", "\n", "a\r\nb", '""x""']), min_size=1, max_size=4),
                min_size=1, max_size=8))
def test_tokenizer_agrees_with_the_csv_module_on_written_csv(rows):
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    payload = out.getvalue().encode("utf-8")
    got = read._tokenized_columns(payload, ",")
    if got is not None:
        assert [column.tolist() for column in got] == csv_module_columns(payload, ",")


def test_the_tokenizer_takes_the_usual_file_and_leaves_ragged_ones_to_the_csv_module(tmp_path):
    assert read._tokenized_columns(b"a,b\n1,2\n\n3,4\n", ",") is not None
    assert read._tokenized_columns(b"a,b\n1,2,3\n", ",") is None
    ragged = tmp_path / "ragged.csv"
    ragged.write_bytes(b"nombre,correo\nAna,ana@x.mx,extra\n")
    frame = read.read_table(ragged)
    assert frame.columns.tolist() == ["nombre", "correo", "(C)"] and frame.loc[2].tolist() == ["Ana", "ana@x.mx", "extra"]


# --------------------------------------------------------------------------- writing


def reference_csv(frame: pd.DataFrame, integer_columns: frozenset[str]) -> bytes:
    """Cell by cell through csv.writer: the definition of the CSV results sheet."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([write._csv_cell(str(name)) for name in frame.columns])
    for row in frame.itertuples(index=False):
        writer.writerow(
            [
                write._csv_cell(write._integer_or_text(value)) if name in integer_columns else write._csv_cell(value)
                for name, value in zip(frame.columns, row)
            ]
        )
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


_CSV_TEXT = st.lists(
    st.sampled_from(["", " ", "a", "José", ",", '"', "\r", "\n", "\r\n", "=", "+", "-", "@", "\t", "'", "0", "00", "7",
                     "150000", "1,000", "1.0", "-5", "«", "😀", "\x1f", "\u2028", "\x00", "1\x002"]),
    max_size=3,
).map("".join)
_CSV_VALUE = st.one_of(_CSV_TEXT, _CSV_TEXT, st.sampled_from([None, float("nan"), 3, -4, 0, 2.5, 3.0, True, np.int64(7)]))


@settings(max_examples=200, deadline=None)
@given(
    case=st.integers(min_value=1, max_value=4).flatmap(
        lambda width: st.tuples(
            st.just(width),
            st.lists(st.lists(_CSV_VALUE, min_size=width, max_size=width), max_size=8),
            st.lists(st.booleans(), min_size=width, max_size=width),
        )
    )
)
def test_csv_sheet_is_what_csv_writer_writes(case, tmp_path_factory):
    width, rows, integer = case
    names = [f"c{i}" if i % 2 else f"=c,{i}" for i in range(width)]
    frame = pd.DataFrame(rows, columns=names, dtype=object)
    ints = frozenset(name for name, flag in zip(names, integer) if flag)
    path = tmp_path_factory.mktemp("csv") / "out.csv"
    write._write_csv(write._SheetSpec("R", frame, frozenset(), ints), path)
    assert path.read_bytes() == reference_csv(frame, ints)


def test_validation_sheet_and_summary_per_row_definitions():
    raw = pd.DataFrame(
        {"nombre": ["Ana", "", "Luis"], "correo": ["a@b.com", "x", "l@b.com"], "monto": ["100", "abc", "300"],
         "motivo": ["m", "m", "m"]},
        index=[2, 4, 5], dtype="str",
    )
    validated = validate(raw, now=0).frame
    frame = report.validation_frame(raw, validated)
    assert frame["row"].tolist() == [2, 4, 5] and all(type(v) is int for v in frame["row"].tolist())
    assert frame["status"].tolist() == ["valid", "invalid", "valid"] and frame["status"].dtype == object
    summary = report.summarize(frame, validated)
    assert summary.counts == {"valid": 2, "invalid": 1}
    assert summary.amounts == {"valid": 400}


def reference_summary(frame: pd.DataFrame, validated: pd.DataFrame) -> report.Summary:
    """Row by row: the definition of the summary's counts and sums."""
    counts, amounts, by_currency, rows_by_currency = {}, {}, {}, {}
    for number, status in zip(frame.index, frame["status"].tolist()):
        counts[status] = counts.get(status, 0) + 1
        amount = validated.at[number, "amount"]
        if pd.notna(amount):
            amounts[status] = amounts.get(status, 0) + int(amount)
            currency = validated.at[number, "currency"]
            per = by_currency.setdefault(status, {})
            per[currency] = per.get(currency, 0) + int(amount)
            counted = rows_by_currency.setdefault(status, {})
            counted[currency] = counted.get(currency, 0) + 1
    totals = by_currency.get(report.CREATED, {})
    return report.Summary(
        counts={s: counts[s] for s in report.STATUS_ORDER if counts.get(s)},
        amount_created=sum(totals.values()), currency_totals=totals, amounts=amounts, amounts_by_currency=by_currency,
        counts_by_currency=rows_by_currency,
    )


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(report.STATUS_ORDER), st.sampled_from(["MXN", "USD"]),
                          st.none() | st.integers(0, 10**15)), max_size=12))
def test_summary_sums_exactly_what_the_rows_say(rows):
    index = pd.Index(range(2, 2 + len(rows)), dtype="int64")
    frame = pd.DataFrame({"status": pd.Series([r[0] for r in rows], index=index, dtype=object)})
    validated = pd.DataFrame(
        {"currency": pd.Series([r[1] for r in rows], index=index, dtype="str"),
         "amount": pd.Series([r[2] for r in rows], index=index, dtype="Int64")}
    )
    got = report.summarize(frame, validated)
    expected = reference_summary(frame, validated)
    assert got == expected
    assert list(got.currency_totals) == list(expected.currency_totals) and list(got.amounts) == list(expected.amounts)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("aZ0@.ßİé\x00 ")), max_size=6), max_size=12),
       st.sampled_from([1, 3, 65_536]))
def test_casefolded_emails_are_str_casefold(values, block):
    """The duplicate-row key folds the case of addresses without copying the ones already folded."""
    original = normalize._FOLD_BLOCK
    normalize._FOLD_BLOCK = block
    try:
        assert normalize._casefolded(values) == [value.casefold() for value in values]
    finally:
        normalize._FOLD_BLOCK = original


# pandas tokenizes a large file in blocks of rows (low_memory: 2**16 rows at this width), each
# block's columns then joined; what sits on a block's edge must read as in one piece.
_BLOCK_EDGES = [65_535, 65_536, 65_537, 131_072]


@pytest.mark.parametrize("line, longer", [
    ("x,y,z", True), ("x", False), ("", False), ('"two\nlines",q', False), ('"quo""ted, x",y', False),
])
def test_the_tokenizer_reads_a_large_file_across_its_blocks_as_the_csv_module_does(line, longer):
    lines = [f"a{i},b{i}" for i in range(140_000)]
    for edge in _BLOCK_EDGES:
        lines[edge] = line
    payload = ("\n".join(lines) + "\n").encode("utf-8")
    got = read._tokenized_columns(payload, ",")
    if longer:  # a row longer than the first: the csv module's to read
        assert got is None
        return
    assert got is not None and [column.tolist() for column in got] == csv_module_columns(payload, ",")
