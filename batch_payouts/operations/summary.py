"""``notify``: the summary finance reads in the morning, by email, without opening a terminal.

What happened since the last summary (kept in the ledger's ``summaries`` table; the first one
covers the last 24 hours): the batches run and their rows created / unconfirmed / failed,
references cashed and expired, and the money still outstanding (created, not cashed, expired
or cancelled) per currency, never pesos plus dollars.  The results sheet of each batch run is
attached.  Sent with ``smtplib``; the password only from BATCH_PAYOUTS_SMTP_PASSWORD.
"""

from __future__ import annotations

import os
import secrets
import smtplib
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from batch_payouts import clock, states
from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue
from batch_payouts.payout.ledger import Ledger
from batch_payouts.payout.records import BatchRecord
from batch_payouts.totals import format_totals, totals_by_currency

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

SMTP_PASSWORD_ENV = "BATCH_PAYOUTS_SMTP_PASSWORD"
FIRST_WINDOW = 24 * 3600
XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@dataclass
class SmtpSettings:
    host: str
    port: int = 587
    starttls: bool = True
    user: str | None = None
    sender: str = "batch-payouts@localhost"
    recipients: list[str] = field(default_factory=list)


@dataclass
class Summary:
    since: float
    until: float
    batches: list[BatchRecord]
    cashed: dict[str, int]
    cashed_count: int
    expired: dict[str, int]
    expired_count: int
    outstanding: dict[str, int]
    attachments: list[Path]


def last_summary_at(ledger: Ledger, now: float) -> float:
    found = ledger._query("SELECT MAX(sent_at) AS at FROM summaries")
    return found[0]["at"] if found and found[0]["at"] else now - FIRST_WINDOW


def build_summary(ledger: Ledger, now: float | None = None) -> Summary:
    until = time.time() if now is None else now
    since = last_summary_at(ledger, until)
    batches = [b for b in ledger.batches() if b.last_run_at >= since]
    def money_of(sql: str, params: tuple) -> tuple[dict[str, int], int]:
        rows = ledger._query(sql, params)
        return totals_by_currency((r["amount"] for r in rows), (r["currency"] for r in rows)), len(rows)
    cashed, cashed_count = money_of("SELECT amount, currency FROM rows WHERE cashed_at >= ? AND cashed_at < ?",
                                    (since, until))
    expired, expired_count = money_of(
        "SELECT amount, currency FROM rows WHERE expired_at >= ? AND expired_at < ? AND reissued_as IS NULL",
        (since, until))
    created = ledger._query("SELECT state, order_status, amount, currency FROM rows WHERE state = ?", (states.CREATED,))
    still_open = [r for r in created if states.money_stage(r["state"], r["order_status"]) == states.MONEY_OUTSTANDING]
    outstanding = totals_by_currency((r["amount"] for r in still_open), (r["currency"] for r in still_open))
    attachments = [Path(b.output_path) for b in batches if b.output_path and Path(b.output_path).is_file()]
    return Summary(since, until, batches, cashed, cashed_count, expired, expired_count, outstanding, attachments)


def summary_text(summary: Summary, lang: str) -> str:
    lines = [TEXT.W["since"].format(lang, since=clock.time_text(summary.since, "minutes"),
                               until=clock.time_text(summary.until, "minutes")), "",
             TEXT.W["batches"].format(lang, count=len(summary.batches))]
    for b in summary.batches:
        lines.append(TEXT.W["batch"].format(lang, batch=b.batch_id[:12], file=b.input_name, created=b.counts.created,
                                       unconfirmed=b.counts.unconfirmed, failed=b.counts.failed,
                                       pending=b.counts.pending, total=format_totals(b.totals_created)))
    lines += ["", TEXT.W["cashed"].format(lang, count=summary.cashed_count, total=format_totals(summary.cashed)),
              TEXT.W["expired"].format(lang, count=summary.expired_count, total=format_totals(summary.expired)),
              TEXT.W["outstanding"].format(lang, total=format_totals(summary.outstanding))]
    if any(b.counts.unconfirmed for b in summary.batches):
        lines += ["", TEXT.W["unconfirmed"].format(lang)]
    return "\n".join(lines) + "\n"


def send_summary(ledger: Ledger, smtp: SmtpSettings, lang: str = "es", environ: dict[str, str] | None = None,
                 now: float | None = None) -> Summary:
    """Build, send, and only then record the summary (a failed send is covered by the next one)."""
    if not smtp.host or not smtp.recipients:
        raise BatchError(TEXT.NO_RECIPIENTS)
    env = os.environ if environ is None else environ
    summary = build_summary(ledger, now)
    message = EmailMessage()
    message["Subject"] = TEXT.W["subject"].format(lang, day=clock.time_text(summary.until, "minutes")[:10])
    message["From"] = smtp.sender
    message["To"] = ", ".join(smtp.recipients)
    message.set_content(summary_text(summary, lang))
    for path in summary.attachments:
        message.add_attachment(path.read_bytes(), maintype=XLSX_TYPE[0] if path.suffix == ".xlsx" else "text",
                               subtype=XLSX_TYPE[1] if path.suffix == ".xlsx" else "csv", filename=path.name)
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=30) as server:
            if smtp.starttls:
                server.starttls()
            if smtp.user:
                server.login(smtp.user, env.get(SMTP_PASSWORD_ENV, ""))
            server.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        raise BatchError(TEXT.SMTP_FAILED, host=smtp.host, port=smtp.port, detail=type(error).__name__) from error
    with ledger._transaction() as conn:
        conn.execute("INSERT INTO summaries (summary_id, sent_at, since, recipients) VALUES (?,?,?,?)",
                     (secrets.token_hex(8), summary.until, summary.since, ", ".join(smtp.recipients)))
    return summary
