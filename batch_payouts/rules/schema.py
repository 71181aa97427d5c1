"""THE pandera schema: every rule on the normalised table, each check named by its error code.

There is no second set of hand-written ``if`` rules: to add a rule, add a named
check to ``build_schema`` and its message to ``messages.MESSAGES``.  The fast,
whole-column checks (email, phone) live here beside the schema that names them.
"""

from __future__ import annotations

import re
import sys
from itertools import repeat
from operator import itemgetter

import numpy as np
import pandas as pd

try:
    import pandera.pandas as pa
except ImportError:  # pragma: no cover - pandera < 0.24 has no pandera.pandas
    import pandera as pa
from pandera.config import ValidationDepth, config_context
from email_validator import EmailNotValidError, validate_email

from batch_payouts.files.cells import flagged_positions, joined_cells
from batch_payouts.rules.columns import ISO_4217, PHONE_PATTERN, REASON_MAX_CHARS
from batch_payouts.rules.messages import ERROR_CODES


def _load_pandera_strategies_without_hypothesis() -> None:
    """pandera's first ``validate()`` imports its data-synthesis strategies, and
    they import hypothesis whenever it is installed -- here only as a test
    dependency, yet ~0.1 s of every ``validate`` run in a development
    environment.  We never synthesise data, so load those modules now with
    hypothesis hidden (they are written for its absence), unless this process
    already imported it (a test session): then nothing changes."""
    if "hypothesis" in sys.modules:
        return
    sys.modules["hypothesis"] = None  # type: ignore[assignment]  # makes "import hypothesis" fail
    try:
        import pandera.strategies.pandas_strategies  # noqa: F401
    except ImportError:  # pragma: no cover - another pandera layout: it loads on first use
        pass
    finally:
        if "hypothesis" in sys.modules and sys.modules["hypothesis"] is None:
            del sys.modules["hypothesis"]


_load_pandera_strategies_without_hypothesis()

# A plain ASCII local part ("juan.perez+pagos") is valid whenever it is at
# most 64 characters; only its domain needs email-validator.  That lets a
# 100,000-row batch validate each distinct domain once instead of every address.
_PLAIN_ADDRESS = re.compile(r"(?P<local>[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*)@(?P<domain>[^@\s]+)")
_MAX_ADDRESS_CHARS = 254
_MAX_LOCAL_CHARS = 64


def is_valid_email(value: str) -> bool:
    """Email syntax per email-validator (no DNS; ASCII local part required), and a local part of at
    most 64 characters (RFC 5321), which email-validator checks only in its strict mode."""
    if len(value.rpartition("@")[0]) > _MAX_LOCAL_CHARS:
        return False
    try:
        validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return False
    return True


def _emails_ok(emails: pd.Series) -> pd.Series:
    """Vectorised email check, True for "" (``missing_email`` reports those).

    Each distinct domain of the plain addresses, and each distinct other
    address, goes through email-validator once; which addresses are plain is
    decided for a whole block of addresses at once (see ``_plain_verdicts``).
    Blocks, not the column: the parts of a million addresses at once were ~1 KB of
    short-lived objects per row, the peak of a million-row validation (issue 17).
    """
    values = emails.tolist()
    ok = np.empty(len(values), dtype=bool)
    by_domain: dict[str, bool | None] = {}
    others: dict[str, bool] = {}
    for start in range(0, len(values), _EMAIL_BLOCK):
        block = values[start:start + _EMAIL_BLOCK]
        verdicts = _plain_verdicts(block, by_domain)
        if verdicts is None:
            verdicts = [None] * len(block)
        if None in verdicts:
            for position, verdict in enumerate(verdicts):
                if verdict is None:
                    value = block[position]
                    found = others.get(value)
                    if found is None:
                        found = others[value] = value == "" or is_valid_email(value)
                    verdicts[position] = found
        ok[start:start + len(block)] = verdicts
    return pd.Series(ok, index=emails.index)


_EMAIL_BLOCK = 65_536


# A local part (the text before the first "@") is plain, as _PLAIN_ADDRESS's,
# when it is only atom characters, does not start or end with a dot, has no two
# dots in a row and is not empty.  In a column of local parts joined by NUL
# (``cells.joined_cells``) that is: only these characters, and no dot or NUL
# next to another dot or NUL.
_PLAIN_LOCAL_CHARACTERS = re.compile(r"[A-Za-z0-9_%+\-.\x00]*")
_NOT_PLAIN_LOCAL_CHARACTER = re.compile(r"[^A-Za-z0-9_%+\-.\x00]")
_DOT_OR_NUL_BEFORE_ANOTHER = re.compile(r"[.\x00](?=[.\x00])")  # one character, so matches never overlap a text
_PLAIN_DOMAIN = re.compile(r"[^@\s]+")


def _not_plain_locals(locals_: list[str]) -> set[int] | None:
    """Positions of the local parts that are not plain; None when one holds NUL.

    The usual column is decided by two C-level scans of the joined text (a
    character class and a substring search); only a column with a suspect
    local part is searched for which ones."""
    joined = joined_cells(locals_)
    if joined.count("\x00") != len(locals_) + 1:
        return None
    not_plain: set[int] = set()
    if _PLAIN_LOCAL_CHARACTERS.fullmatch(joined) is None:
        not_plain.update(flagged_positions(_NOT_PLAIN_LOCAL_CHARACTER, locals_, joined))
    if ".." in joined.replace("\x00", "."):  # a dot or NUL beside another: a dot at an end, two dots, an empty part
        not_plain.update(flagged_positions(_DOT_OR_NUL_BEFORE_ANOTHER, locals_, joined))
    return not_plain


def _domain_verdict(domain: str) -> bool | None:
    """The verdict of every plain local part at ``domain``: one email-validator call.
    Behind a plain local part a second "@" or a missing domain is never valid;
    other unusual domains (whitespace) are left to a call per address (None)."""
    if _PLAIN_DOMAIN.fullmatch(domain):
        return is_valid_email("a@" + domain)
    return False if domain == "" or "@" in domain else None


def _plain_verdicts(values: list[str], by_domain: dict[str, bool | None] | None = None) -> list[bool | None] | None:
    """Per address: its verdict when its local part is plain and it is within
    the length limits, from its domain's one email-validator call; ``None``
    for the others.  ``None`` instead of a list when a value is not text.
    ``by_domain``: the verdicts of domains seen before, kept across calls."""
    try:
        parts = list(map(str.partition, values, repeat("@")))
    except TypeError:  # pragma: no cover - normalize() only gives text
        return None
    locals_ = list(map(itemgetter(0), parts))
    not_plain = _not_plain_locals(locals_)
    if not_plain is None:  # a NUL in an address: no shortcut
        return None
    if max(map(len, values), default=0) > _MAX_LOCAL_CHARS:  # only then can a length limit bite
        not_plain.update(
            position for position, (value, local) in enumerate(zip(values, locals_))
            if len(value) > _MAX_ADDRESS_CHARS or len(local) > _MAX_LOCAL_CHARS
        )
    domains = list(map(itemgetter(2), parts))
    known = {} if by_domain is None else by_domain
    for domain in set(domains).difference(known):
        known[domain] = _domain_verdict(domain)
    verdicts = list(map(known.__getitem__, domains))
    for position in not_plain:
        verdicts[position] = None
    return verdicts


def _phones_ok(phones: pd.Series) -> pd.Series:
    """``"" or PHONE_PATTERN``; a column of ASCII digits is decided by length alone."""
    values = phones.tolist()
    joined = "".join(values)
    if joined.isascii() and (joined.isdigit() or not joined):
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        ok = (lengths == 0) | ((lengths >= 10) & (lengths <= 15))
    else:
        pattern = re.compile(PHONE_PATTERN)
        ok = [value == "" or pattern.fullmatch(value) is not None for value in values]
    return pd.Series(ok, index=phones.index, dtype=bool)


def _filled(texts: pd.Series) -> pd.Series:
    """``texts != ""`` for a text column without missing values, compared as
    plain objects (a fifth of the time of the string-dtype comparison)."""
    return pd.Series(texts.to_numpy(dtype=object) != "", index=texts.index)


def _lengths(texts: pd.Series) -> pd.Series:
    """``texts.str.len()`` for a column without missing values, without a call per cell."""
    return pd.Series(np.fromiter(map(len, texts.tolist()), dtype=np.int64, count=len(texts)), index=texts.index)


def build_schema(*, now: int, allow_duplicate_rows: bool = False, max_amount: int | None = None) -> pa.DataFrameSchema:
    """THE schema: every rule on the normalised table, each check named by its code.

    ``now`` (unix seconds) is the moment expiry dates must be after.  Columns
    ending in ``_text`` hold the cell as typed, beside the parsed value, so
    "typed but unparseable" is a failed check like any other.
    """

    def check(name: str, fn, ignore_na: bool = False, **options) -> pa.Check:
        # Text columns never hold NA (normalize() writes "" instead) and no row
        # is all NA, so pandera's NA filtering only matters for the Int64
        # columns, whose checks ask for it; elsewhere it would scan every
        # column once per check for nothing.
        return pa.Check(fn, name=name, error=name, ignore_na=ignore_na, **options)

    row_checks = [
        check("invalid_amount", lambda df: ~_filled(df["amount_text"]) | df["amount_readable"]),
        check("amount_not_integer", lambda df: ~df["amount_readable"] | df["amount"].notna()),
        check("invalid_expires_at", lambda df: ~_filled(df["expires_text"]) | df["expires_at"].notna()),
    ]
    duplicate_row = [] if allow_duplicate_rows else [
        check("duplicate_row", lambda s: ~s.duplicated(keep="first"))
    ]
    return pa.DataFrameSchema(
        name="beneficiaries",
        strict=True,
        columns={
            "name": pa.Column(str, check("missing_name", _filled)),
            "email": pa.Column(
                str,
                [check("missing_email", _filled), check("invalid_email", _emails_ok)],
            ),
            "phone": pa.Column(
                str, check("invalid_phone", _phones_ok)
            ),
            "amount_text": pa.Column(str, check("missing_amount", _filled)),
            "amount_readable": pa.Column(bool),
            "amount": pa.Column(
                "Int64",
                [
                    check("amount_not_positive", lambda s: s > 0, ignore_na=True),
                    check(
                        "amount_not_multiple_of_100",
                        lambda s: (s <= 0) | (s % 100 == 0),
                        ignore_na=True,
                    ),
                    *(
                        [check("amount_over_limit", lambda s: s <= max_amount, ignore_na=True)]
                        if max_amount is not None
                        else []
                    ),
                ],
                nullable=True,
            ),
            "currency": pa.Column(str, check("invalid_currency", lambda s: s.isin(ISO_4217))),
            "reason": pa.Column(
                str,
                [
                    check("missing_reason", _filled),
                    check("reason_too_long", lambda s: _lengths(s) <= REASON_MAX_CHARS),
                ],
            ),
            "customer_id": pa.Column(str),
            "external_id": pa.Column(
                str,
                check("duplicate_external_id", lambda s: ~_filled(s) | ~s.duplicated(keep=False)),
            ),
            "expires_text": pa.Column(str),
            "expires_at": pa.Column(
                "Int64", check("expires_at_in_past", lambda s: s > now, ignore_na=True), nullable=True
            ),
            "duplicate_key": pa.Column("int64", duplicate_row),  # normalize._group_ids
        },
        checks=row_checks,
    )


# What pandera runs at every validation.  Pinned, whatever PANDERA_VALIDATION_ENABLED
# or PANDERA_VALIDATION_DEPTH the environment holds: "False" or "SCHEMA_ONLY" there
# would otherwise pass every row of every file as valid, and pay it.
# DATA_ONLY: every rule (the checks) runs on every row; pandera's schema-level
# checks (dtypes, nulls, the set of columns) are skipped here because they test
# the table normalize() builds, not the user's file -- tests/rules/test_schema.py runs
# them (FULL_DEPTH) on every kind of input instead.  They were a fifth of the
# validation time of a 100,000-row file.
RUN_DEPTH = {"validation_enabled": True, "validation_depth": ValidationDepth.DATA_ONLY}
FULL_DEPTH = {"validation_enabled": True, "validation_depth": ValidationDepth.SCHEMA_AND_DATA}


def failing_checks(schema: pa.DataFrameSchema, table: pd.DataFrame, depth: dict | None = None) -> pd.DataFrame:
    """pandera's failure table reduced to distinct (position, code) pairs."""
    try:
        # inplace: the schema coerces nothing, so pandera's defensive copy of
        # the whole table would only be thrown away.
        with config_context(**(depth or RUN_DEPTH)):
            schema.validate(table, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    else:
        return pd.DataFrame({"position": pd.Series(dtype="int64"), "code": pd.Series(dtype="str")})
    unexpected = {str(check) for check in cases["check"].unique()} - set(ERROR_CODES)
    if unexpected or cases["index"].isna().any():
        # Only a bug in normalize() can get here (a dtype or a missing column).
        raise RuntimeError(f"schema failures outside the rules: {sorted(unexpected)}\n{cases}")
    pairs = pd.DataFrame({"position": cases["index"].astype("int64"), "code": cases["check"].astype(str)})
    pairs = pairs.drop_duplicates()
    pairs["rank"] = pairs["code"].map({code: rank for rank, code in enumerate(ERROR_CODES)})
    return pairs.sort_values(["position", "rank"], kind="stable").reset_index(drop=True)

