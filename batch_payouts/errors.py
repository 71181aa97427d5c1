"""The exceptions that end a command with a message instead of a traceback.

``BatchError`` means the batch cannot run at all (exit code 2): a missing or
unreadable file, missing columns, a refused API key, a ledger held by another
run.  Per-row problems are never exceptions: they become ``invalid`` or
``failed`` rows in the output sheet.
"""

from __future__ import annotations

from batch_payouts.i18n import DEFAULT_LANG, Text


class BatchError(Exception):
    """The batch cannot run; ``message(lang)`` says why and what to do."""

    exit_code = 2

    def __init__(self, text: Text, **params: object) -> None:
        super().__init__(text.format("en", **params))
        self.text = text
        self.params = params

    def message(self, lang: str = DEFAULT_LANG) -> str:
        return self.text.format(lang, **self.params)


class InputFileError(BatchError):
    """The input file cannot be read, or lacks required columns."""
