"""Pay a validated file exactly once: the job behind `batch-payouts run` and the web's confirm.

It opens the ledger, the audit log and the Conekta client, plans the batch against
what the ledger already knows, runs it (``payout.pipeline``) and writes the results
sheet.  It never prints and never exits: it returns a ``JobResult`` or raises ``BatchError``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pandas as pd

from batch_payouts import clock, ledger_address, report
from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue, money
from batch_payouts.jobs.endpoint import resolve_endpoint
from batch_payouts.jobs.load import JobResult, LoadedFile, RunOptions, load_file, resolve_output, write_sheet
from batch_payouts.payout.audit import AuditLog, audit_path_for, open_audit
from batch_payouts.payout.conekta import ClientConfig, ConektaClient, ConektaError
from batch_payouts.payout.guards import account_mode, available_balance, check_balance, plan_batch, set_aside_unfunded
from batch_payouts.payout.identity import identities
from batch_payouts.payout.ledger import Ledger, key_fingerprint, operator_name
from batch_payouts.payout.pipeline import run_batch
from batch_payouts.payout.pipeline import TEXT as PIPELINE_TEXT
from batch_payouts.payout.row_executor import BatchSettings, RowExecutor, RowOutcome
from batch_payouts.payout.row_executor import TEXT as ROW_EXECUTOR_TEXT
from batch_payouts.payout.throttle import RateLimiter
from batch_payouts.team.approvals import pin_of
from batch_payouts.team.approvals import require as require_approval
from batch_payouts.storage import DiskFull, naming_full_disk
from batch_payouts.totals import format_totals, totals_by_currency

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

def refuse_a_sheet_of_another_file(ledger: Ledger, output: Path, batch_id: str, input_name: str) -> None:
    """The default results sheet (``<stem>.results.xlsx``) is the same for ``pagos.csv`` and
    ``pagos.xlsx``: a second file must not overwrite the first one's references, nor make
    `status`/`cancel pagos.results.xlsx` act on a batch the person did not mean.  The same file
    run again after a fix (a new batch of the same name) keeps writing its own sheet, as before."""
    target = str(output.resolve())
    for other in ledger.batches():
        if other.batch_id != batch_id and other.output_path == target and other.input_name != input_name:
            raise BatchError(TEXT.SHEET_OF_ANOTHER_FILE, path=str(output), other=other.input_name,
                             batch=other.batch_id[:12])


def check_max_total(validated: pd.DataFrame, cap: int | None) -> None:
    """A batch over the cap is refused as a whole, before any request. The cap applies to each
    currency's total: pesos and dollars are never added together."""
    if cap is None:
        return
    valid = validated.loc[validated["valid"]]
    for currency, total in totals_by_currency(valid["amount"].tolist(), valid["currency"].tolist()).items():
        if total > cap:
            raise BatchError(TEXT.OVER_MAX_TOTAL, total=format_totals({currency: total}), cap=money(cap))


def run_job(
    options: RunOptions,
    *,
    on_row: Callable[[RowOutcome], None] | None = None,
    on_start: Callable[[LoadedFile, int], None] | None = None,
    environ: dict[str, str] | None = None,
    stop: threading.Event | None = None,
    loaded: LoadedFile | None = None,
) -> JobResult:
    """Validate, then pay every valid row exactly once and write the results sheet.
    ``loaded``: the file already read and validated with these options (``load_file``)."""
    started = clock.now_text()
    env = os.environ if environ is None else environ
    output = resolve_output(options.input_path, options.output_path)
    loaded = loaded or load_file(options.input_path, options)
    if loaded.unit.refuses_run and not options.dry_run and loaded.validated["valid"].any():
        raise loaded.unit.refusal()  # with no valid row nothing would be sent anyway: the rows say why
    check_max_total(loaded.validated, options.max_total)
    ledger_path = ledger_address.resolve(options.ledger_path)
    finished: list[JobResult] = []
    with ExitStack() as stack:
        stack.push(_full_disk_after(finished))  # first in, so last out: sees the closing steps' errors
        api_key, api_base = resolve_endpoint(
            stack, sandbox=options.sandbox, api_base=options.api_base, ledger_path=ledger_address.local_anchor(ledger_path),
            environ=env
        )
        ledger = stack.enter_context(Ledger(ledger_path))
        key_fp = key_fingerprint(api_key)
        content_id, keys = identities(loaded.validated, key_fp)  # one pass over the rows for both
        batch_id = options.batch_id or content_id
        known = ledger.batch(batch_id)
        if known is not None and known.key_fingerprint != key_fp:
            raise BatchError(PIPELINE_TEXT.KEY_MISMATCH, batch_id=batch_id)
        if options.output_path is None:
            refuse_a_sheet_of_another_file(ledger, output, batch_id, loaded.name)
        pin = pin_of(loaded.validated, keys, batch_id, loaded.sha256, key_fp)
        if not options.dry_run:  # four eyes: with a policy, only an approved plan is sent (exit 2 otherwise)
            require_approval(ledger, pin, input_name=loaded.name, operator=options.operator or operator_name())
            ledger.acquire_lock(batch_id, wait=options.wait_lock)
        audit: AuditLog | None = None
        audit_path = audit_path_for(output)
        if not options.dry_run:
            with naming_full_disk(audit_path, "audit"):
                audit = open_audit(stack, ledger, audit_path, batch_id)
                audit.run_started(
                    input_name=loaded.name, input_sha256=loaded.sha256, batch_id=batch_id, api_base=api_base,
                    api_version=options.api_version, options=_audited_options(options),
                )
                # lines made durable with each group of intents; a full disk named as the audit log's
                audit.sync_with(ledger, lambda: naming_full_disk(audit_path, "audit"))

        def record_call(call: dict) -> None:  # each request's facts go to the audit log, and nowhere else
            with naming_full_disk(audit_path, "audit"):  # stops the batch (run_batch) with that message
                audit.api_call(**call)

        client = stack.enter_context(
            ConektaClient(
                ClientConfig(
                    api_key=api_key, api_base=api_base, api_version=options.api_version, lang=options.lang,
                    read_timeout=options.read_timeout, max_retries=options.max_retries,
                    pool_size=max(4, options.workers * 2), initial_backoff=options.initial_backoff,
                ),
                throttle=RateLimiter(options.rate_limit),
                on_call=None if audit is None else record_call,  # a dry run keeps no audit log
            )
        )
        known_mode = ledger.known_mode(key_fp)
        plan = plan_batch(loaded.validated, keys, ledger, batch_id, retry_failed=options.retry_failed)
        balance = None
        try:
            if plan.to_send and not options.skip_balance_check:
                balance = available_balance(client)
            if options.dry_run and known_mode is None and plan.to_send:
                known_mode = account_mode(client)
        except ConektaError as error:  # 401/403: the key itself was refused
            raise BatchError(ROW_EXECUTOR_TEXT.STOPPED, status=error.http_status, detail=error.message or error.type) from error
        if balance is not None:
            if any(balance.get(currency, 0) <= 0 for currency in plan.totals):  # e.g. USD rows, no USD balance
                recorded, key_of = ledger.row_states(batch_id), keys.to_dict()
                plan = set_aside_unfunded(
                    loaded.validated, loaded.problems, plan, balance, header=loaded.headers.header("currency"),
                    fresh={n for n in plan.to_send if key_of[n] not in recorded}, lang=options.lang,
                )
            check_balance(plan, balance)
        if options.dry_run:
            frame = report.validation_frame(loaded.raw, loaded.validated)
            mode = report.mode_text(known_mode)
            summary = write_sheet(frame, output, loaded, options, {"batch_id": batch_id, "mode": mode, "started_at": started})
            return JobResult(
                output, frame, summary, loaded, batch_id=batch_id, livemode=known_mode,
                ledger_path=ledger_address.shown(ledger_path), plan=plan, balance=balance, pin=pin,
            )
        ledger.record_batch_start(
            batch_id=batch_id, input_name=loaded.name, input_sha256=loaded.sha256, key_fp=key_fp,
            api_base=api_base, rows_total=len(loaded.raw),
        )
        settings = BatchSettings(
            batch_id=batch_id, key_fp=key_fp, lang=options.lang, retry_failed=options.retry_failed,
            allow_repeat=options.allow_repeat, repeat_window=options.repeat_window, workers=options.workers,
            live=options.live, expires_in=options.expires_in,
        )
        executor = RowExecutor(client, ledger, settings)
        executor.livemode = known_mode  # learnt by an earlier run with this key, if any
        if on_start is not None:
            on_start(loaded, int(loaded.validated["valid"].sum()))
        batch = run_batch(loaded.validated, keys, executor, on_row=on_row, stop=stop)
        stopped = batch.stopped
        livemode = batch.livemode
        if livemode is None:  # nothing was sent this time: what an earlier run learned
            livemode = executor.livemode
        if livemode is not None:  # the ledger states the mode the results sheet states, for `batches`/`show`
            stopped = stopped or _full_disk_of(lambda: ledger.set_livemode(batch_id, livemode))
        frame = report.results_frame(loaded.raw, loaded.validated, batch.outcomes, options.lang)
        mode = report.mode_text(livemode)
        summary = write_sheet(frame, output, loaded, options, {"batch_id": batch_id, "mode": mode, "started_at": started})
        stopped = stopped or _full_disk_of(lambda: ledger.set_output(batch_id, output, options.api_version))
        result = JobResult(
            output, frame, summary, loaded, batch_id=batch_id, ledger_path=ledger_address.shown(ledger_path),
            livemode=livemode, stopped=stopped, interrupted=batch.interrupted,
            plan=plan, balance=balance, audit_path=audit_path, pin=pin,
        )
        result.stopped = result.stopped or _full_disk_of(lambda: _finish_audit(audit, audit_path, result, mode))
        finished.append(result)
    return result


def _full_disk_after(finished: list[JobResult]) -> Callable[..., bool]:
    """An exit handler: once the results are out, a full disk while closing (the audit head or the
    run lock written to the ledger) ends the run with that message instead of hiding the result."""

    def handle(kind, error, traceback) -> bool:
        if finished and isinstance(error, DiskFull):
            finished[0].stopped = finished[0].stopped or error
            return True
        return False

    return handle


def _full_disk_of(step: Callable[[], object]) -> DiskFull | None:
    """Run a bookkeeping step that follows the batch; a full disk is returned, not raised, so the
    results sheet and the summary still come out and the run ends with the message (exit 2)."""
    try:
        step()
    except DiskFull as full:
        return full
    return None


def _finish_audit(audit: AuditLog, path: Path, result: JobResult, mode: str) -> None:
    with naming_full_disk(path, "audit"):
        audit.run_finished(
            mode=mode or None, counts=result.summary.counts, totals=result.summary.amounts,
            exit_code=result.exit_code, results_path=str(result.output_path),
        )
        audit.sync()


def _audited_options(options: RunOptions) -> dict:
    """The choices that shaped the run, for the audit record (paths as text; no key is ever among them)."""
    chosen = {name: getattr(options, name) for name in options.__dataclass_fields__}
    return {name: str(value) if isinstance(value, Path) else value for name, value in chosen.items()}
