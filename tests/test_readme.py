"""The README is the users' reference: it must stay true to the code and to a fresh clone.

Why: finance staff and auditors read the status words, the input columns and the error codes
there, and an operator copies the commands.  A README that drifted from ``states.py`` or
``rules/columns.py`` would teach the wrong word for a row that may already be paid, and a link
to a file outside the repository is dead on a fresh clone.  (tests/cli/test_cli_basics.py checks
that every command and option is documented; tests/cli/test_operator_papercuts.py the exit codes.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from batch_payouts import states
from batch_payouts.rules.columns import ALIASES, CANONICAL_COLUMNS
from batch_payouts.rules.messages import ERROR_CODES
from batch_payouts.rules.template import EXAMPLE_CODE

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
USER_DOCS = (README, ROOT / "docs" / "DEVELOPMENT.md")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _section(title: str) -> str:
    return _text(README).split(f"\n## {title}", 1)[1].split("\n## ", 1)[0]


def _slug(heading: str) -> str:
    """The anchor a Markdown renderer gives a heading (GitHub's rule)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_status_table_gives_every_result_status_its_spanish_label():
    rows = [line for line in _section("Output: the results sheet").splitlines()
            if line.startswith("| `") and not line.startswith("| `status` |")]  # the header row
    table = {cells[0].strip("` "): cells[1].strip(' "') for cells in (row.strip("|").split("|") for row in rows)}
    assert table == {status: states.label(status, "es") for status in states.RESULT_STATUSES}
    assert table[states.UNKNOWN] != states.label(states.FAILED, "es")  # in doubt is never "failed"


def test_input_table_lists_every_column_with_its_aliases():
    section = _section("Input")
    for column in CANONICAL_COLUMNS:
        assert f"| `{column}` | {', '.join(ALIASES[column])} |" in section, column


def test_every_validation_error_code_is_documented():
    section = _section("Input")
    missing = [code for code in (*ERROR_CODES, EXAMPLE_CODE) if f"`{code}`" not in section]
    assert not missing


def test_every_environment_variable_the_code_reads_is_in_the_configuration_table():
    source = "\n".join(_text(path) for path in (ROOT / "batch_payouts").rglob("*.py"))
    used = set(re.findall(r"[\"'](BATCH_PAYOUTS_[A-Z_]+|CONEKTA_API_[A-Z_]+)[\"']", source))
    assert {"CONEKTA_API_KEY", "BATCH_PAYOUTS_LEDGER", "BATCH_PAYOUTS_LANG"} <= used
    table = _section("Configuration").split("\n\n", 2)[1]
    assert not [name for name in sorted(used) if f"| `{name}` |" not in table]


@pytest.mark.parametrize("doc", USER_DOCS, ids=lambda path: path.name)
def test_links_stay_inside_the_repository_and_resolve(doc):
    text = _text(doc)
    for target in LINK.findall(text):
        assert not re.match(r"[a-z]+:", target), f"{doc.name} links outside the repository: {target}"
        assert not target.startswith("../"), f"{doc.name} links outside the repository: {target}"
        path, _, anchor = target.partition("#")
        linked = (doc.parent / path) if path else doc
        assert linked.exists(), f"{doc.name} links to a missing file: {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", _text(linked), flags=re.MULTILINE)
            assert anchor in {_slug(h) for h in headings}, f"{doc.name}: no heading for #{anchor}"
    # bare addresses too: only the loopback ones the tool itself serves
    assert not [url for url in re.findall(r"https?://[^\s)`'\"]+", text)
                if not re.match(r"https?://(127\.0\.0\.1|localhost)\b", url)]


def test_make_demo_is_described_as_the_makefile_runs_it():
    recipe = _text(ROOT / "Makefile").split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "test $$? -le 1" in recipe  # the sample's invalid rows make the run exit 1 on purpose
    assert "Hoja de resultados" not in recipe  # the run's own summary names the sheet, once
    assert "`make demo` exits 0 when the run exits 0 or 1" in _text(README)
    assert "## Rendimiento / Performance" in _text(README)
