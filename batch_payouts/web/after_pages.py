"""What the web shows and does after the payout: the reissue button and the per-batch chart.

Kept out of ``batch_pages`` (others edit it for sign-in): ``reissue`` is the batch page's
button for ``batch-payouts reissue --expired`` (same guards: the server's ``--live`` and
``--max-total``, and the balance), and ``order_chart`` draws cashed / expired / cancelled /
pending per day as inline SVG on the server (no script; the CSP allows none inline).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from batch_payouts import clock
from batch_payouts.i18n import Text, catalogue
from batch_payouts.operations import sheet_source, write_status_sheet
from batch_payouts.operations.access import open_audited_client
from batch_payouts.operations.reissue import check_guards, reissue_rows, require_approval, to_reissue
from batch_payouts.team.roles import APPROVER
from batch_payouts.payout.records import LedgerRow
from batch_payouts.states import CREATED, ORDER_CANCELLED, ORDER_CASHED, ORDER_EXPIRED
from batch_payouts.errors import BatchError
from batch_payouts.payout.ledger import Ledger
from batch_payouts.totals import format_totals
from batch_payouts.web.pages import ROWS_SHOWN, _totals_of, signed_in
from batch_payouts.web.pages import TEXT as PAGES_TEXT

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

SERIES = (("cashed", ORDER_CASHED, "#2e7d32", Text(es="cobradas", en="cashed")),
          ("expired", ORDER_EXPIRED, "#c62828", Text(es="vencidas", en="expired")),
          ("cancelled", ORDER_CANCELLED, "#757575", Text(es="canceladas", en="cancelled")),
          ("pending", None, "#f9a825", Text(es="por cobrar", en="to be cashed")))


class AfterPages:
    """Mixed into ``WebApp`` beside ``BatchPages`` (uses its ``_batch``, ``_batch_operation``)."""

    def may_pay(self, request: Request) -> bool:
        """May the signed-in user pay expired references again?  The one check for it (the batch
        page's button and both reissue routes ask here): an approver -- someone who releases money.
        Without users (one person on loopback) that person holds every role.  Under an approval
        policy the reissue plan also needs its own approval (``operations.reissue.require_approval``)."""
        return APPROVER in self.roles(request)

    @signed_in
    async def reissue_page(self, request: Request) -> Response:
        """What pressing "pay again" would pay: each expired reference and the total per currency."""
        lang = self.lang(request)
        if not self.may_pay(request):
            return self.error_page(request, TEXT.MAY_NOT_PAY.format(lang), 403)
        batch, batch_id = await run_in_threadpool(self._batch, request)
        if batch is None:
            return self.error_page(request, PAGES_TEXT.NOT_FOUND.format(lang), 404)

        def expired() -> list[LedgerRow]:
            with Ledger(self.settings.ledger_path) as ledger:
                return to_reissue(ledger, batch.batch_id)

        rows = await run_in_threadpool(expired)
        return self.render(request, "reissue.html", batch=batch, batch_id=batch_id, rows=rows[:ROWS_SHOWN],
                           count=len(rows), totals=_totals_of(rows))

    @signed_in
    async def reissue(self, request: Request) -> Response:
        """Pay again what the confirmation page showed (``reissue --expired``), if it still is that many."""
        if not self.may_pay(request):
            return self.error_page(request, TEXT.MAY_NOT_PAY.format(self.lang(request)), 403)

        def work(lang: str, form: Any, batch, ledger, client) -> None:
            rows = to_reissue(ledger, batch.batch_id)
            if not rows:
                self.flash(request, TEXT.NOTHING_TO_REISSUE.format(lang))
                return
            if form.get("count") != str(len(rows)):
                raise BatchError(PAGES_TEXT.CHANGED_SINCE_REVIEW, count=form.get("count"), total=format_totals(_totals_of(rows)))
            require_approval(ledger, batch, rows, operator=self.user(request) or "web")  # four eyes, under a policy
            from contextlib import ExitStack

            with ExitStack() as stack:
                conekta, audit = open_audited_client(stack, batch, ledger, self.connection(lang),
                                                     environ=self.settings.environ, command="web reissue")
                check_guards(conekta, batch, rows, live=self.settings.live, max_total=self.settings.max_total,
                             skip_balance_check=False)
                outcomes = reissue_rows(ledger, conekta, batch, rows, lang=lang, live=self.settings.live, audit=audit)
            source = sheet_source(batch, batch.output_path or "")
            if source is not None:
                write_status_sheet(ledger, batch, source, None, [o.original.row_key for o in outcomes], lang)
            done = sum(o.status == "created" for o in outcomes)
            self.flash(request, TEXT.REISSUED.format(lang, count=done), "info" if done == len(outcomes) else "error")

        return await self._batch_operation(request, work)


def orders_mark(ledger: Ledger, batch_id: str) -> str:
    """What changes whenever a row of the batch does (a webhook, ``status``, a reissue): the open
    batch page polls it with its progress and reloads when it differs, so the chart and the
    per-row statuses follow without a manual reload.  One aggregate, not every row."""
    found = ledger._query("SELECT COUNT(*), MAX(updated_at) FROM rows WHERE batch_id=?", (batch_id,))
    count, last = (found[0][0], found[0][1]) if found else (0, None)
    return f"{count or 0}:{last or 0}"


def order_chart(rows: list[LedgerRow], lang: str) -> Markup:
    """Cumulative orders per day: cashed, expired, cancelled and still to be cashed, as stacked bars."""
    created = [r for r in rows if r.state == CREATED and r.created_at]
    if not created:
        return Markup("")
    def day(ts: float | None) -> str:
        return clock.time_text(ts)[:10] if ts else ""
    days = sorted({day(r.created_at) for r in created} | {day(t) for r in created
                                                          for t in (r.cashed_at, r.expired_at, r.cancelled_at) if t})
    days = days[-14:]
    bars = []
    for d in days:
        counts: Counter = Counter()
        for r in created:
            if day(r.created_at) > d:
                continue
            status = next((s for key, s, _c, _t in SERIES[:3]
                           if getattr(r, f"{key}_at") and day(getattr(r, f"{key}_at")) <= d), None)
            counts[status or "pending"] += 1
        bars.append((d, counts))
    width, height, gap = 28, 120, 10
    top = max(sum(c.values()) for _d, c in bars) or 1
    parts = [f'<svg class="order-chart" role="img" xmlns="http://www.w3.org/2000/svg" '
             f'width="{len(bars) * (width + gap) + 160}" height="{height + 40}" '
             f'aria-label="{escape(Text(es="Órdenes por día", en="Orders per day").format(lang))}">']
    for i, (d, counts) in enumerate(bars):
        x, y = i * (width + gap) + 5, height
        for key, _status, colour, _label in SERIES:
            n = counts.get(key, 0)
            if not n:
                continue
            h = n * height / top
            y -= h
            parts.append(f'<rect x="{x}" y="{y:.1f}" width="{width}" height="{h:.1f}" fill="{colour}">'
                         f'<title>{escape(d)}: {n} {escape(_label.format(lang))}</title></rect>')
        parts.append(f'<text x="{x}" y="{height + 14}" font-size="9">{escape(d[5:])}</text>')
    legend_x = len(bars) * (width + gap) + 15
    for j, (_key, _status, colour, text) in enumerate(SERIES):
        parts.append(f'<rect x="{legend_x}" y="{10 + j * 18}" width="10" height="10" fill="{colour}"></rect>'
                     f'<text x="{legend_x + 15}" y="{19 + j * 18}" font-size="11">{escape(text.format(lang))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
