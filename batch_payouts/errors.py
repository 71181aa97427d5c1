"""The exceptions that end a command with a message instead of a traceback.

``BatchError`` means the batch cannot run at all (exit code 2): a missing or
unreadable file, missing columns, a refused API key; ``TryLater`` (exit 75) that
it cannot run *now* because another run holds the batch or the ledger.  The
codes are ``exit_codes``.  Per-row problems are never exceptions: they become ``invalid`` or
``failed`` rows in the output sheet.
"""

from __future__ import annotations

from batch_payouts import exit_codes
from batch_payouts.i18n import DEFAULT_LANG, Plural, Text


class BatchError(Exception):
    """The batch cannot run; ``message(lang)`` says why and what to do."""

    exit_code = exit_codes.CANNOT_RUN
    # What rows this error left unsent must advise (one row's message; a count's label in the
    # summary).  ``None``: "run the same file again", right after a refused key is fixed or an
    # interruption; an error that a plain rerun would hit again names what to change instead.
    not_sent_advice: Text | None = None
    not_sent_hint: Plural | None = None

    def __init__(self, text: Text, **params: object) -> None:
        super().__init__(text.format("en", **params))
        self.text = text
        self.params = params

    def message(self, lang: str = DEFAULT_LANG) -> str:
        return self.text.format(lang, **self.params)


class InputFileError(BatchError):
    """The input file cannot be read, or lacks required columns."""


class TryLater(BatchError):
    """Another run holds the batch's lock (or another process the ledger file): nothing is wrong
    with the file or the key, and nothing was sent.  A distinct exit code (75, EX_TEMPFAIL) lets
    a cron job retry at its next slot instead of paging someone about a "bad file"."""

    exit_code = exit_codes.TRY_LATER
