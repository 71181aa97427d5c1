"""i18n: every message of the package says the same thing in both languages, and counts agree with their nouns.

The messages are found by walking every module of the package, so a message added
anywhere is checked without being listed here.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
import string

import pytest

import batch_payouts
from batch_payouts.cli import history, ops
from batch_payouts.i18n import Catalogue, Plural, Text, catalogue
from batch_payouts.payout import audit_verify
from batch_payouts import report


def _messages() -> tuple[dict[str, Text], dict[str, Plural]]:
    """Every message of the package: each module's catalogue (``TEXT``, its table in the folder's
    messages.toml) and any Text or Plural still built in code (also inside dicts, tuples and dataclasses
    such as the validation ``Message``), by where it is defined."""
    texts: dict[int, tuple[str, Text]] = {}
    plurals: dict[int, tuple[str, Plural]] = {}

    def visit(value: object, where: str, depth: int = 0) -> None:
        if isinstance(value, Catalogue):  # a module's table of its folder's messages.toml
            for name, entry in value.entries().items():
                visit(entry, f"{value.module}.TEXT.{name}", depth + 1)
        elif isinstance(value, Text):
            texts.setdefault(id(value), (where, value))
        elif isinstance(value, Plural):
            plurals.setdefault(id(value), (where, value))
            visit(value.one, where + ".one")
            visit(value.other, where + ".other")
        elif depth < 3 and isinstance(value, dict):
            for key, item in value.items():
                visit(item, f"{where}[{key!r}]", depth + 1)
        elif depth < 3 and isinstance(value, (list, tuple)):
            for position, item in enumerate(value):
                visit(item, f"{where}[{position}]", depth + 1)
        elif depth < 3 and dataclasses.is_dataclass(value) and not isinstance(value, type):
            for field in dataclasses.fields(value):
                visit(getattr(value, field.name), f"{where}.{field.name}", depth + 1)

    for module in pkgutil.walk_packages(batch_payouts.__path__, "batch_payouts."):
        if module.name.endswith("__main__") or module.name == "batch_payouts.i18n":  # the command line itself;
            continue  # the catalogues' cache (each catalogue is visited through the module it belongs to)
        for name, value in vars(importlib.import_module(module.name)).items():
            visit(value, f"{module.name}.{name}")
    return dict(texts.values()), dict(plurals.values())


TEXTS, PLURALS = _messages()
cli_console = importlib.import_module("batch_payouts.cli.console")


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def test_the_walk_finds_the_messages_of_every_layer():
    modules = {where.rsplit(".", 1)[0] for where in TEXTS}
    for expected in ("batch_payouts.rules.messages", "batch_payouts.rules.headers", "batch_payouts.cli.main",
                     "batch_payouts.report", "batch_payouts.web.app", "batch_payouts.payout.audit"):
        assert any(m == expected or m.startswith(expected + ".") for m in modules), expected
    assert len(TEXTS) > 100 and len(PLURALS) >= 10


@pytest.mark.parametrize("where", sorted(TEXTS))
def test_every_text_has_the_same_placeholders_in_spanish_and_english(where):
    text = TEXTS[where]
    assert _placeholders(text.es) == _placeholders(text.en), where


def _render(plural: Plural, lang: str, count: int) -> str:
    names = set().union(*(_placeholders(getattr(form, l)) for form in (plural.one, plural.other) for l in ("es", "en")))
    params = {name: f"<{name}>" for name in names - {"count"}}
    return plural.format(lang, count=count, **params)


@pytest.mark.parametrize("where", sorted(PLURALS))
@pytest.mark.parametrize("lang", ["es", "en"])
def test_every_plural_takes_the_singular_for_one_only(where, lang):
    plural = PLURALS[where]
    other = getattr(plural.other, lang)
    forms = {count: _render(plural, lang, count) for count in (0, 1, 2)}
    assert forms[1] == _render(Plural(plural.one, plural.one), lang, 1)
    assert forms[0] == _render(Plural(plural.other, plural.other), lang, 0)
    assert forms[2] == _render(Plural(plural.other, plural.other), lang, 2)
    if "{count}" in other:  # a label ("creadas") may leave the number to whoever shows it
        assert "0" in forms[0] and "2" in forms[2]
    # The word after the number is singular for one ("1 fila", "1 row", never "1 filas").
    after_one = re.findall(r"(?<!\d)1 (\w+)", forms[1])
    assert not [word for word in after_one if word.endswith("s") and word not in ("was", "is")], (where, forms[1])


@pytest.mark.parametrize(
    ("plural", "params", "expected"),
    [
        (cli_console.TEXT.MORE_PROBLEMS, {}, ["… y 0 problemas más", "… y 1 problema más", "… y 2 problemas más"]),
        (report.TEXT.PLAN_SEND, {"totals": "$1.00"},
         ["se enviarían 0 filas", "se enviaría 1 fila por", "se enviarían 2 filas"]),
        (report.TEXT.PLAN_DONE, {}, ["0 ya estaban resueltas", "1 ya estaba resuelta", "2 ya estaban resueltas"]),
        (ops.TEXT.to_cancel, {"batch": "b", "total": "$1.00"},
         ["Se cancelarán 0 órdenes", "Se cancelará 1 orden del", "Se cancelarán 2 órdenes"]),
        (history.TEXT.report_written, {"path": "p", "totals": "$1.00"},
         ["(0 pagos pagados o por cobrar,", "(1 pago pagado o por cobrar,", "(2 pagos pagados o por cobrar,"]),
        (history.TEXT.report_never_paid, {"totals": "$1.00"},
         ["0 pagos cancelados o vencidos ($1.00): no se pagaron", "1 pago cancelado o vencido ($1.00): no se pagó",
          "2 pagos cancelados o vencidos ($1.00): no se pagaron"]),
        (audit_verify.TEXT.VERDICT_TAMPERED, {}, ["(0 problemas)", "(1 problema)", "(2 problemas)"]),
        (cli_console.TEXT.PROGRESS_LINE, {"done": 1}, ["1/0 filas procesadas", "1/1 fila procesada", "1/2 filas procesadas"]),
    ],
)
def test_spanish_counts_agree_with_their_nouns(plural, params, expected):
    assert [expected_text in plural.format("es", count=count, **params)
            for count, expected_text in enumerate(expected)] == [True, True, True]


def test_a_text_parameter_is_rendered_in_the_language_of_the_message():
    message = Text(es="Falta: {what}.", en="Missing: {what}.")
    what = Text(es="la columna «correo»", en="the «email» column")
    assert message.format("es", what=what) == "Falta: la columna «correo»."
    assert message.format("en", what=what) == "Missing: the «email» column."


def _catalogue_references() -> dict[str, set[str]]:
    """Every ``TEXT.NAME`` the package's code says, by the module whose catalogue it reads.

    Three spellings reach a catalogue: ``TEXT.NAME`` (the module's own), ``PAGES_TEXT.NAME`` (another
    module's, imported as ``from ...pages import TEXT as PAGES_TEXT``) and ``states.TEXT.NAME``."""
    import ast
    from pathlib import Path

    root = Path(batch_payouts.__file__).parent
    used: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        module = ".".join(("batch_payouts", *path.relative_to(root).with_suffix("").parts))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        owners = {"TEXT": module}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    if alias.name == "TEXT":
                        owners[alias.asname or "TEXT"] = node.module
                    else:
                        owners.setdefault(f"{alias.asname or alias.name}.TEXT", f"{node.module}.{alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    owners.setdefault(f"{alias.asname or alias.name}.TEXT", alias.name)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            holder = node.value
            if isinstance(holder, ast.Name) and holder.id in owners and holder.id.endswith("TEXT"):
                used.setdefault(owners[holder.id], set()).add(node.attr)
            elif (isinstance(holder, ast.Attribute) and holder.attr == "TEXT" and isinstance(holder.value, ast.Name)
                  and f"{holder.value.id}.TEXT" in owners):
                used.setdefault(owners[f"{holder.value.id}.TEXT"], set()).add(node.attr)
    return used


def test_every_message_the_code_names_is_in_its_catalogue_and_every_catalogue_entry_is_used():
    used = _catalogue_references()
    missing = [f"{module}: {name}" for module, names in used.items()
               for name in names - set(catalogue(module).entries())]
    assert not missing, "named in code, absent from messages.toml: " + ", ".join(sorted(missing))
    unused = []
    for module in {m.name for m in pkgutil.walk_packages(batch_payouts.__path__, "batch_payouts.")}:
        for name in set(catalogue(module).entries()) - used.get(module, set()):
            unused.append(f"{module}: {name}")
    assert not unused, "in messages.toml, never said: " + ", ".join(sorted(unused))
