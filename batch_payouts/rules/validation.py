"""Validation of a whole file: the validated table and its failure table.

``validate`` runs the schema once over the normalised table and keeps every
failure as data -- a ``Problem``: the row number, the column as the file wrote
it, the error code, the cell as typed and the message's parameters.  Each place
a person reads them (console lines, the results sheet, the web review) renders
the problems in its own language and shape, so no one ever has to parse a
rendered message back into its parts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from batch_payouts.files.cells import paused_gc
from batch_payouts.i18n import DEFAULT_LANG, LANGUAGES, money
from batch_payouts.rules.columns import AMOUNT_UNITS, CANONICAL_COLUMNS
from batch_payouts.rules.headers import HeaderMap, resolve_headers
from batch_payouts.rules.messages import CODE_COLUMNS, Message, message_text
from batch_payouts.rules.messages import TEXT as MESSAGES_TEXT
from batch_payouts.rules.normalize import canonical_cells, normalize
from batch_payouts.rules.schema import build_schema, failing_checks

OUTPUT_COLUMNS = CANONICAL_COLUMNS + ("metadata", "valid", "error_code", "error_message")
_SHOWN_CHARS = 50


@dataclass(frozen=True, slots=True)
class Problem:
    """One failed rule of one row: what the failure table holds, before any language is chosen.

    ``row``: the row number in the sheet; ``column``: the header as the file wrote it
    (its Spanish name when the file has no such column); ``value``: the cell as typed,
    shortened for display; ``params``: what the message needs besides the value
    (``length``, ``rows``, ``first``, ``limit``).
    """

    row: int
    column: str
    code: str
    value: str
    params: dict[str, str | int] = field(default_factory=dict)
    amount_unit: str = "cents"
    # The words of a code that is not a rule of the file (``messages.MESSAGES`` holds exactly the
    # codes the schema checks): one that depends on how the batch is sent (a phone for some API
    # versions) or on the account (no balance in a currency) brings its own message.
    explained: Message | None = None

    @property
    def message(self) -> Message:
        return self.explained or message_text(self.code, self.amount_unit)

    def problem(self, lang: str = DEFAULT_LANG) -> str:
        """What is wrong, e.g. "«x» no es un correo válido."."""
        return self.message.problem.format(lang, value=self.value, **self.params)

    def fix(self, lang: str = DEFAULT_LANG) -> str:
        """How to fix it, e.g. "Escríbelo como nombre@dominio.com, …"."""
        return self.message.fix.format(lang, value=self.value, **self.params)

    def text(self, lang: str = DEFAULT_LANG) -> str:
        """What is wrong and how to fix it, without the column."""
        return self.message.format(lang, value=self.value, **self.params)

    def labelled(self, lang: str = DEFAULT_LANG) -> str:
        """"Columna «correo»: …": one part of a row's ``error_message``."""
        return MESSAGES_TEXT.COLUMN_MESSAGE.format(lang, column=self.column, message=self.text(lang))

    def line(self, lang: str = DEFAULT_LANG) -> str:
        """"Fila 7, columna «correo»: …": a console line."""
        return MESSAGES_TEXT.ROW_MESSAGE.format(lang, row=self.row, column=self.column, message=self.text(lang))


@dataclass
class Validation:
    """What ``validate`` found: ``frame``, the validated table (``OUTPUT_COLUMNS``, indexed
    like the input), and ``problems``, its failure table in row order and, within a row,
    in the order of ``messages.ERROR_CODES``."""

    frame: pd.DataFrame
    problems: list[Problem]

    def add(self, added: list[Problem], lang: str = DEFAULT_LANG, *, first: bool = False) -> None:
        """Problems found after the file's own rules (the template's example row, a phone some API
        versions require, a currency without balance): their rows become invalid, their codes and
        messages join the row's (before its own with ``first``, else after), and the failure table
        takes them in row order.  Changes ``frame`` and ``problems`` in place."""
        if not added:
            return
        rows = [problem.row for problem in added]  # one problem per row at most
        pairs = zip(added, self.frame.loc[rows, "error_code"].tolist(), self.frame.loc[rows, "error_message"].tolist())
        codes, messages = [], []
        for problem, code, message in pairs:
            ordered = ((problem.code, code), (problem.labelled(lang), message))
            if not first:
                ordered = tuple(pair[::-1] for pair in ordered)
            codes.append(";".join(filter(None, ordered[0])))
            messages.append(" | ".join(filter(None, ordered[1])))
        self.frame.loc[rows, "valid"] = False
        self.frame.loc[rows, "error_code"] = codes
        self.frame.loc[rows, "error_message"] = messages
        mine = {id(problem) for problem in added}
        # Row order (sorted is stable); within a row the added ones first or last.
        self.problems[:] = sorted(self.problems + added,
                                  key=lambda problem: (problem.row, (id(problem) in mine) != first))

    def table(self) -> pd.DataFrame:
        """The failure table as a frame: row, column, code, value, params."""
        columns = ["row", "column", "code", "value", "params"]
        records = [(p.row, p.column, p.code, p.value, p.params) for p in self.problems]
        return pd.DataFrame.from_records(records, columns=columns)


def validate(
    raw: pd.DataFrame,
    *,
    amount_unit: str = "cents",
    lang: str = DEFAULT_LANG,
    allow_duplicate_rows: bool = False,
    now: float | None = None,
    max_amount: int | None = None,
) -> Validation:
    """Validate and normalise a table read by ``files.read.read_table``.

    The result's ``frame`` is indexed like ``raw`` with ``OUTPUT_COLUMNS``: name,
    email, phone (digits or ""), amount (Int64 cents, <NA> when unreadable),
    currency, reason, customer_id, external_id, expires_at (Int64 unix seconds or
    <NA>), metadata (dict), valid (bool), error_code (codes joined by ";", "" when
    valid) and error_message (the row's problems rendered in ``lang``, joined by
    " | ": what the results sheet shows).  Its ``problems`` are the same failures
    as data, for whoever renders them otherwise.  ``now`` (unix seconds, default:
    the current time) is what expiry dates must be after.  Raises
    ``InputFileError`` for missing or ambiguous columns.
    """
    if amount_unit not in AMOUNT_UNITS:
        raise ValueError(f"amount_unit must be one of {AMOUNT_UNITS}, not {amount_unit!r}")
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {LANGUAGES}, not {lang!r}")
    headers = resolve_headers(raw.columns)
    with paused_gc():
        cells = canonical_cells(raw, headers)
        table, metadata = normalize(raw, headers, amount_unit, cells)
        schema = build_schema(
            now=int(time.time() if now is None else now), allow_duplicate_rows=allow_duplicate_rows,
            max_amount=max_amount,
        )
        failures = failing_checks(schema, table)
        problems = _problems(raw, headers, table, failures, cells, amount_unit, max_amount)
        return Validation(_validated(raw, table, metadata, failures, problems, lang), problems)


def _shown(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= _SHOWN_CHARS else value[: _SHOWN_CHARS - 1] + "…"


def _problems(
    raw: pd.DataFrame,
    headers: HeaderMap,
    table: pd.DataFrame,
    failures: pd.DataFrame,
    cells: dict[str, list[str]],
    amount_unit: str,
    max_amount: int | None,
) -> list[Problem]:
    """The failure table: one ``Problem`` per distinct (position, code) of ``failures``.
    Messages quote the cell as the user typed it, not the parsed value."""
    labels = raw.index.to_numpy()
    rows_by_external_id = _rows_sharing(table["external_id"], labels, failures, "duplicate_external_id")
    first_by_key = _first_rows(table["duplicate_key"], labels, failures)
    limit = "" if max_amount is None else money(max_amount)
    # Looked up only at the failing positions: arrays, not 100,000-item lists.
    reasons = table["reason"].to_numpy(dtype=object)
    external_ids = table["external_id"].to_numpy(dtype=object)
    duplicate_keys = table["duplicate_key"].to_numpy(dtype=object)
    column_headers = {column: headers.header(column) for column in set(CODE_COLUMNS.values())}
    problems = []
    for position, code in zip(failures["position"].tolist(), failures["code"].tolist()):
        column = CODE_COLUMNS[code]
        if code == "reason_too_long":
            params = {"length": len(reasons[position])}
        elif code == "duplicate_external_id":
            params = {"rows": rows_by_external_id.get(external_ids[position], "")}
        elif code == "duplicate_row":
            params = {"first": first_by_key.get(duplicate_keys[position], "")}
        elif code == "amount_over_limit":
            params = {"limit": limit}
        else:
            params = {}
        problems.append(
            Problem(
                row=int(labels[position]), column=column_headers[column], code=code,
                value=_shown(cells[column][position]), params=params, amount_unit=amount_unit,
            )
        )
    return problems


def _validated(
    raw: pd.DataFrame,
    table: pd.DataFrame,
    metadata: list[dict[str, str]],
    failures: pd.DataFrame,
    problems: list[Problem],
    lang: str,
) -> pd.DataFrame:
    """The validated frame: typed values, valid, and each row's codes and rendered messages."""
    codes: dict[int, list[str]] = {}
    messages: dict[int, list[str]] = {}
    rendered: dict[tuple, str] = {}  # a bad file repeats its problems (empty cells, one wrong date): render each once
    for position, problem in zip(failures["position"].tolist(), problems):
        codes.setdefault(position, []).append(problem.code)
        key = (problem.code, problem.column, problem.value, *problem.params.values())
        text = rendered.get(key)
        if text is None:
            text = rendered[key] = problem.labelled(lang)
        messages.setdefault(position, []).append(text)
    code_texts, message_texts = [""] * len(raw), [""] * len(raw)
    for position, found in codes.items():
        code_texts[position] = ";".join(found)
        message_texts[position] = " | ".join(messages[position])
    valid = np.ones(len(raw), dtype=bool)
    valid[list(codes)] = False
    bad_phone = failures.loc[failures["code"] == "invalid_phone", "position"]
    phone = table["phone"].copy()
    phone.iloc[bad_phone.to_numpy()] = ""

    result = pd.DataFrame(
        {
            "name": table["name"],
            "email": table["email"],
            "phone": phone,
            "amount": table["amount"],
            "currency": table["currency"],
            "reason": table["reason"],
            "customer_id": table["customer_id"],
            "external_id": table["external_id"],
            "expires_at": table["expires_at"],
            "metadata": pd.Series(metadata, dtype=object),
            "valid": pd.Series(valid),
            "error_code": pd.Series(code_texts, dtype=object),
            "error_message": pd.Series(message_texts, dtype=object),
        },
        copy=False,  # copy-on-write: the table is not used again
    )
    result.index = raw.index
    return result


def _rows_sharing(values: pd.Series, labels: np.ndarray, failures: pd.DataFrame, code: str) -> dict[str, str]:
    """For each repeated value: the row numbers holding it, "3, 8, 12"
    (the first five and a count when there are many)."""
    positions = failures.loc[failures["code"] == code, "position"].to_numpy()
    if not len(positions):
        return {}
    repeated = pd.Series([labels[p] for p in positions], index=values.iloc[positions].to_numpy())
    shown = {}
    for key, group in repeated.groupby(level=0):
        rows = group.tolist()
        text = ", ".join(map(str, rows[:5]))
        shown[key] = text if len(rows) <= 5 else f"{text}… (+{len(rows) - 5})"
    return shown


def _first_rows(keys: pd.Series, labels: np.ndarray, failures: pd.DataFrame) -> dict[str, str]:
    """For each repeated row key: the row number of its first occurrence."""
    if not (failures["code"] == "duplicate_row").any():
        return {}
    first = ~keys.duplicated(keep="first") & keys.duplicated(keep=False)
    return {key: str(labels[p]) for p, key in zip(first[first].index, keys[first].tolist())}
