"""The one vocabulary of row states, result statuses and order statuses, and the one counting rule.

What matters most: a row that may already exist at Conekta (``unknown``, ``in_flight``) is
never counted, labelled or coloured as failed, whatever surface shows it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from batch_payouts import report, states
from batch_payouts.i18n import LANGUAGES
from batch_payouts.payout import ledger_schema


def test_every_row_state_has_one_result_status_and_one_group():
    assert set(states.STATUS_OF_STATE) == set(states.ROW_STATES)
    assert set(states.STATUS_OF_STATE.values()) <= set(states.RESULT_STATUSES)
    assert set(states.ROW_STATES) | set(states.RESULT_STATUSES) == set(states.GROUP_OF)
    assert set(states.GROUP_OF.values()) == set(states.GROUPS)
    for value in (*states.ROW_STATES, *states.RESULT_STATUSES):
        assert states.GROUP_CLASSES[states.group_of(value)]


def test_a_row_that_may_exist_at_conekta_is_unconfirmed_never_failed():
    for state in states.IN_DOUBT_STATES:
        assert states.STATUS_OF_STATE[state] == states.UNKNOWN
        assert states.group_of(state) == states.UNCONFIRMED
        assert states.GROUP_CLASSES[states.UNCONFIRMED] != states.GROUP_CLASSES[states.FAILED]
        for lang in LANGUAGES:
            assert states.label(state, lang) != states.label(states.FAILED, lang)
    assert states.label("unknown", "es") == "sin confirmar" and states.label("in_flight", "en") == "unconfirmed"


def test_the_documented_codes_never_change():
    # stored in old ledgers and written in results sheets that scripts read
    assert states.ROW_STATES == ("pending", "in_flight", "created", "failed", "unknown", "duplicate")
    assert set(states.RESULT_STATUSES) == {"created", "valid", "invalid", "failed", "duplicate", "unknown"}
    assert states.ORDER_STATUSES == ("pending", "open", "cashed", "expired", "cancelled")


def test_every_group_and_order_status_is_worded_in_spanish_and_english():
    for table in (states.GROUP_LABELS, states.GROUP_HINTS):
        assert set(table) == set(states.GROUPS)
        for plural in table.values():
            for form in (plural.one, plural.other):
                assert form.es.strip() and form.en.strip() and form.es != form.en
    assert set(states.ORDER_LABELS) == set(states.ORDER_STATUSES) == set(states.ORDER_COUNT_LABELS)
    for status in states.ORDER_STATUSES:
        for lang in LANGUAGES:
            assert states.order_label(status, lang) and states.order_label(status, lang, 2)
    explained = states.TEXT.UNCONFIRMED_EXPLAINED
    assert "Conekta" in explained.es and "mano" in explained.es and "by hand" in explained.en


@pytest.mark.parametrize(("value", "lang", "words"), [
    ("created", "es", ("creadas", "creada", "creadas")),
    ("failed", "es", ("fallidas", "fallida", "fallidas")),
    ("duplicate", "es", ("duplicadas", "duplicada", "duplicadas")),
    ("invalid", "es", ("inválidas", "inválida", "inválidas")),
    ("unknown", "es", ("sin confirmar", "sin confirmar", "sin confirmar")),
    ("created", "en", ("created", "created", "created")),
    ("unknown", "en", ("unconfirmed", "unconfirmed", "unconfirmed")),
])
def test_labels_agree_with_the_count_for_zero_one_and_two(value, lang, words):
    assert tuple(states.label(value, lang, count) for count in (0, 1, 2)) == words


def test_hints_and_order_counts_agree_with_the_count():
    assert states.hint("invalid", "es", 1) == "inválida (corrige el archivo)"
    assert states.hint("invalid", "es", 2) == "inválidas (corrige el archivo)"
    assert "resolverla;" in states.hint("unknown", "es", 1) and "resolverlas;" in states.hint("unknown", "es", 3)
    assert states.order_label("cashed", "es", 1) == "cobrada" and states.order_label("cashed", "es", 0) == "cobradas"
    assert states.order_label("cashed", "es") == "cobrada"
    assert states.order_label("mystery", "es") == "mystery" and states.order_label(None, "es") == ""


def test_counting_groups_states_and_statuses_by_the_one_rule():
    counts = states.count_rows(["created", "created", "unknown", "in_flight", "failed", "pending", "duplicate"])
    assert counts == states.Counts(created=2, unconfirmed=2, failed=1, pending=1, duplicate=1)
    assert counts.total == 7 and counts.to_resolve == 4
    assert states.count_rows({"created": 3, "invalid": 2, "unknown": 1}) == states.Counts(created=3, invalid=2, unconfirmed=1)
    assert states.count_rows([]) == states.Counts()
    assert counts.as_json() == {"created": 2, "unconfirmed": 2, "failed": 1, "pending": 1, "duplicate": 1,
                                "invalid": 0, "valid": 0, "unknown": 2}
    with pytest.raises(KeyError):
        states.count_rows(["paid"])  # a value nobody named is a bug, not a row to drop


def test_the_ledger_sql_counts_by_the_same_rule(tmp_path: Path):
    sample = ["created", "created", "unknown", "in_flight", "failed", "pending", "pending", "duplicate"]
    with sqlite3.connect(tmp_path / "x.sqlite") as conn:
        conn.execute(f"CREATE TABLE rows (state TEXT NOT NULL CHECK ({states.sql_state_check()}))")
        conn.executemany("INSERT INTO rows VALUES (?)", [(s,) for s in sample])
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO rows VALUES ('paid')")
        cursor = conn.execute(f"SELECT {states.sql_group_sums('state')} FROM rows")
        summed = dict(zip([d[0] for d in cursor.description], cursor.fetchone()))
    expected = states.count_rows(sample)
    assert summed == {group: getattr(expected, group) for group in summed}
    assert set(summed) == {"created", "unconfirmed", "failed", "pending", "duplicate"}


def test_the_ledger_schema_keeps_the_check_it_always_had():
    """Existing ledgers hold this exact constraint; the generated one must say the same."""
    legacy = "CHECK (state IN ('pending','in_flight','created','failed','unknown','duplicate'))"
    assert legacy in ledger_schema.MIGRATIONS[0]


def test_the_run_summary_words_counts_with_plurals_and_explains_unconfirmed_rows(tmp_path):
    summary = report.Summary(counts={"created": 1, "invalid": 2, "unknown": 1}, amount_created=0)
    text = report.format_summary(summary, lang="es", output=tmp_path / "r.xlsx")
    assert "1  creada\n" in text and "2  inválidas (corrige el archivo)" in text
    assert "1  sin confirmar" in text and states.TEXT.UNCONFIRMED_EXPLAINED.es in text and "fallida" not in text
    english = report.format_summary(summary, lang="en", output=tmp_path / "r.xlsx")
    assert "1  unconfirmed" in english and states.TEXT.UNCONFIRMED_EXPLAINED.en in english
