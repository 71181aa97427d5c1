"""After a batch is sent: refresh statuses, cancel references, reconcile with Conekta, report.

The library behind ``status``, ``cancel``, ``reconcile``, ``batches``, ``show``
and ``report``.  Like ``jobs`` it never prints and never exits: it returns
results the CLI formats, and raises ``BatchError`` (exit 2) when the command
cannot run at all (unknown batch, another API key, a refused key).

One module per command family (``access`` opens a batch and its client;
``status``, ``cancel``, ``reconciliation``, ``history``); this facade names
what the CLI and the web pages use, so they read ``ops.refresh_status(...)``
without knowing the layout.
"""

from batch_payouts.operations.access import (
    Connection, check_output, find_batch, now, open_client, time_text,
)
from batch_payouts.operations.cancel import CancelOutcome, cancel_rows, parse_rows, select_rows
from batch_payouts.operations.history import (
    REPORT_COLUMNS, batch_counts, batch_totals, day_start, money_after_by_batch, parse_day, payouts_report, state_counts,
)
from batch_payouts.operations.reconciliation import Mismatch, ReconcileResult, reconcile
from batch_payouts.operations.status import (
    CHANGED, CHANGED_FILL, FINAL_STATUSES, ORDER_STATUS_LABELS, PENDING_STATUSES, STATUS_COLUMNS, STATUS_ORDER,
    RowStatus, created_rows, open_rows_by_batch, refresh_status, sheet_source, status_counts, write_status_sheet,
)
from batch_payouts.report import mode_text

__all__ = [
    "CHANGED", "CHANGED_FILL", "FINAL_STATUSES", "ORDER_STATUS_LABELS", "PENDING_STATUSES", "REPORT_COLUMNS",
    "STATUS_COLUMNS", "STATUS_ORDER", "CancelOutcome", "Connection", "Mismatch", "ReconcileResult", "RowStatus",
    "batch_counts", "batch_totals", "cancel_rows", "money_after_by_batch", "check_output", "created_rows", "day_start", "open_rows_by_batch", "find_batch",
    "mode_text", "now", "open_client", "parse_day", "parse_rows", "payouts_report", "reconcile", "refresh_status",
    "select_rows", "sheet_source", "state_counts", "status_counts", "time_text", "write_status_sheet",
]
