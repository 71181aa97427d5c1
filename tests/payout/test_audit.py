"""The audit log's hash chain: what it writes, and every way of tampering it catches."""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_payouts.payout.audit import AuditLog
from batch_payouts.payout.audit_scrub import scrub_options
from batch_payouts.payout.audit_verify import (
    BAD_HEAD,
    BAD_JSON,
    BAD_PREV,
    BAD_SEQ,
    LINES_AFTER_HEAD,
    PARTIAL_LAST_LINE,
    RECOVERED_PARTIAL_LINE,
    TRUNCATED_TAIL,
    ZERO_HASH,
    describe,
    line_hash,
    verify,
)

KEY = "key_test_RECOGNIZABLE_audit_secret_4242"


def write_log(path, count=6):
    with AuditLog.open(path) as log:
        for i in range(count):
            log.api_call("POST", "/payout_orders", f"idem-{i}", 200, f"log-{i}", 10.0 + i)
        return log.head


def lines_of(path):
    return path.read_bytes().split(b"\n")[:-1]


def write_lines(path, lines):
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def codes(result):
    return [(p.line, p.code) for p in result.problems]


@pytest.fixture
def log_path(tmp_path):
    return tmp_path / "sub" / "pagos.results.xlsx.audit.jsonl"


# -- writing ------------------------------------------------------------------
def test_chain_over_appends_and_reopen(log_path):
    head1 = write_log(log_path, 3)
    assert head1[1] == 3
    with AuditLog.open(log_path) as log:
        assert log.head == head1
        assert log.previous.ok and log.previous.lines == 3
        returned = log.api_call("GET", "/balance", None, 200, "log-x", 3)
        assert log.head == (returned, 4)
    raw = lines_of(log_path)
    entries = [json.loads(line) for line in raw]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert entries[0]["prev"] == ZERO_HASH
    for before, entry in zip(raw, entries[1:]):
        assert entry["prev"] == line_hash(before)
    assert returned == line_hash(raw[-1])
    assert all("previous_chain_broken" not in e for e in entries)
    assert all(e["ts"].endswith("Z") and len(e["ts"]) == 27 for e in entries)  # microseconds, UTC
    # the exact serialisation: sorted keys, no spaces, UTF-8
    assert raw[0] == json.dumps(entries[0], ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    result = verify(log_path, expected_head=returned, expected_lines=4)
    assert result.ok and result.lines == 4 and result.problems == [] and result.last_hash == returned


def test_empty_and_missing_file_verify_ok(tmp_path):
    assert verify(tmp_path / "none.jsonl").ok
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    result = verify(empty, expected_head=ZERO_HASH, expected_lines=0)
    assert result.ok and result.lines == 0
    with AuditLog.open(empty) as log:
        assert log.head == (ZERO_HASH, 0)


def test_reserved_fields_refused(log_path):
    with AuditLog.open(log_path) as log, pytest.raises(ValueError):
        log.append({"seq": 5})


def test_unicode_kept_as_utf8(log_path):
    with AuditLog.open(log_path) as log:
        log.append({"type": "note", "text": "Peña — año"})
    assert "Peña — año".encode() in log_path.read_bytes()
    assert verify(log_path).ok


# -- tampering ----------------------------------------------------------------
@pytest.mark.parametrize("index", range(6))
def test_edit_one_byte_of_any_line(log_path, index):
    last_hash, count = write_log(log_path)
    lines = lines_of(log_path)
    at = lines[index].index(b"idem-") + 5
    lines[index] = lines[index][:at] + b"9" + lines[index][at + 1 :]
    write_lines(log_path, lines)
    result = verify(log_path, expected_head=last_hash, expected_lines=count)
    assert not result.ok
    if index < 5:
        assert codes(result) == [(index + 2, BAD_PREV)]  # the next line no longer points at it
    else:
        assert codes(result) == [(6, BAD_HEAD)]  # only the ledger's head can see the last line
    assert verify(log_path).ok is (index == 5)  # without the head, an edited last line is invisible


def test_edit_breaking_json(log_path):
    write_log(log_path)
    lines = lines_of(log_path)
    lines[2] = lines[2][:-1]  # drop the closing brace
    write_lines(log_path, lines)
    assert codes(verify(log_path)) == [(3, BAD_JSON), (4, BAD_PREV)]


def test_delete_middle_line(log_path):
    write_log(log_path)
    lines = lines_of(log_path)
    del lines[2]
    write_lines(log_path, lines)
    result = verify(log_path)
    assert codes(result) == [(3, BAD_SEQ), (3, BAD_PREV)]


def test_delete_first_line(log_path):
    write_log(log_path)
    write_lines(log_path, lines_of(log_path)[1:])
    assert codes(verify(log_path)) == [(1, BAD_SEQ), (1, BAD_PREV)]


def test_delete_last_line_needs_the_ledger_head(log_path):
    last_hash, count = write_log(log_path)
    write_lines(log_path, lines_of(log_path)[:-1])
    assert verify(log_path).ok  # a shorter chain is still a chain ...
    result = verify(log_path, expected_head=last_hash, expected_lines=count)
    assert not result.ok and codes(result) == [(6, TRUNCATED_TAIL)]  # ... the ledger's head is not
    only_head = verify(log_path, expected_head=last_hash)
    assert not only_head.ok and codes(only_head)[0][1] == TRUNCATED_TAIL
    assert "5" in describe(result, "es")[0] and "6" in describe(result, "es")[0]


def test_swap_two_lines(log_path):
    write_log(log_path)
    lines = lines_of(log_path)
    lines[1], lines[2] = lines[2], lines[1]
    write_lines(log_path, lines)
    result = verify(log_path)
    assert (2, BAD_SEQ) in codes(result) and (2, BAD_PREV) in codes(result)
    assert (3, BAD_SEQ) in codes(result)


def test_insert_forged_line(log_path):
    write_log(log_path)
    lines = lines_of(log_path)
    # a careful forger: right seq and prev for its position, valid JSON
    forged = json.dumps(
        {"type": "api_call", "method": "POST", "path": "/payout_orders", "seq": 3, "prev": line_hash(lines[1]),
         "ts": "2026-01-01T00:00:00.000000Z", "http_status": 200},
        sort_keys=True, separators=(",", ":"),
    ).encode()
    lines.insert(2, forged)
    write_lines(log_path, lines)
    assert codes(verify(log_path)) == [(4, BAD_SEQ), (4, BAD_PREV)]


def test_duplicate_line(log_path):
    write_log(log_path)
    lines = lines_of(log_path)
    lines.insert(3, lines[2])
    write_lines(log_path, lines)
    assert codes(verify(log_path)) == [(4, BAD_SEQ), (4, BAD_PREV)]


def test_appended_forged_line_seen_by_the_head(log_path):
    last_hash, count = write_log(log_path)
    with AuditLog.open(log_path) as log:  # a well-formed line, but after the recorded head
        log.append({"type": "note"})
    assert codes(verify(log_path, expected_head=last_hash, expected_lines=count)) == [(7, LINES_AFTER_HEAD)]
    assert codes(verify(log_path, expected_head=last_hash)) == [(7, LINES_AFTER_HEAD)]


# -- crashes ------------------------------------------------------------------
def test_partial_last_line_is_a_crash_not_tampering(log_path):
    last_hash, count = write_log(log_path, 4)
    with log_path.open("ab") as handle:
        handle.write(b'{"duration_ms":1.0,"http_status":20')
    result = verify(log_path, expected_head=last_hash, expected_lines=count)
    assert result.ok and result.lines == 4 and result.crashed
    assert codes(result) == [(5, PARTIAL_LAST_LINE)]
    assert "crash" in result.problems[0].detail and "not tampering" in result.problems[0].detail
    assert "no una alteración" in describe(result, "es")[0]

    # the next run terminates it and continues the chain from it, saying so
    with AuditLog.open(log_path) as log:
        assert log.head == (last_hash, 4)
        new_hash = log.append({"type": "note"})
        assert log.head == (new_hash, 6)
    entry = json.loads(lines_of(log_path)[-1])
    assert entry["previous_chain_broken"] is True and entry["recovered_partial_line"] == 5 and entry["seq"] == 6
    result = verify(log_path, expected_head=new_hash, expected_lines=6)
    assert result.ok and codes(result) == [(5, RECOVERED_PARTIAL_LINE)]


def test_whole_line_without_newline_is_a_line(log_path):
    last_hash, count = write_log(log_path, 3)
    log_path.write_bytes(log_path.read_bytes()[:-1])
    assert verify(log_path, expected_head=last_hash, expected_lines=count).problems == []
    with AuditLog.open(log_path) as log:
        log.append({"type": "note"})
    assert verify(log_path).problems == []
    assert "previous_chain_broken" not in json.loads(lines_of(log_path)[-1])


def test_broken_file_is_continued_and_marked(log_path):
    write_log(log_path)
    lines = lines_of(log_path)
    del lines[1]
    write_lines(log_path, lines)
    with AuditLog.open(log_path) as log:
        assert not log.previous.ok
        log.append({"type": "note"})
        log.append({"type": "note"})
    entries = [json.loads(line) for line in lines_of(log_path)]
    assert entries[-2]["previous_chain_broken"] is True and "previous_chain_broken" not in entries[-1]
    assert entries[-1]["seq"] == entries[-2]["seq"] + 1
    assert codes(verify(log_path)) == [(2, BAD_SEQ), (2, BAD_PREV)]  # the new lines chain properly


def test_ledger_head_mismatch_marks_the_continuation(log_path):
    last_hash, count = write_log(log_path)
    write_lines(log_path, lines_of(log_path)[:-1])
    with AuditLog.open(log_path, expected_head=last_hash, expected_lines=count) as log:
        log.append({"type": "note"})
    assert json.loads(lines_of(log_path)[-1])["previous_chain_broken"] is True


# -- concurrency --------------------------------------------------------------
def test_eight_threads_two_hundred_appends_each(log_path):
    with AuditLog.open(log_path) as log:
        def work(worker):
            for i in range(200):
                log.api_call("POST", "/payout_orders", f"w{worker}-{i}", 200, None, 1)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        last_hash, count = log.head
    result = verify(log_path, expected_head=last_hash, expected_lines=count)
    assert result.ok and result.lines == 1600 and result.problems == []
    entries = [json.loads(line) for line in lines_of(log_path)]
    assert [e["seq"] for e in entries] == list(range(1, 1601))
    assert len({e["idempotency_key"] for e in entries}) == 1600


def test_synced_with_a_ledger_lines_are_durable_before_each_intent_and_at_close(log_path, tmp_path):
    """In a run the log is fsynced with the ledger's intents, not per line: every call's line is
    written and synced before the next intent commits, and the rest when the log closes."""
    from batch_payouts.payout.ledger import Ledger

    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.record_batch_start(batch_id="b1", input_name="in.csv", input_sha256="0" * 64, key_fp="k1",
                                  api_base="http://127.0.0.1", rows_total=1)
        ledger.ensure_row(batch_id="b1", row_key="x:1", row_number=2, email="a@b.mx", amount=1, currency="MXN",
                          reason="r", payout_fingerprint="fp")
        log = AuditLog.open(log_path)
        log.sync_with(ledger)
        assert log.api_call("POST", "/customers", "k-c", 200, "L1", 1.0) is None  # held for the next write
        assert lines_of(log_path) == []
        ledger.begin_intent(batch_id="b1", row_key="x:1", operation="payout_order", idempotency_key="k-o", body={})
        assert log._synced == log._written == 1 and len(lines_of(log_path)) == 1
        assert log._syncer is not None and log._syncer.is_alive()  # one worker: fsynced beside the commit
        log.api_call("POST", "/payout_orders", "k-o", 200, "L2", 1.0)
        log.close()
        assert log._synced == log._written == 2 and not log._syncer.is_alive()
    assert verify(log_path).ok and verify(log_path).lines == 2


class _NoLedger:
    """What ``sync_with`` needs of a ledger: the hook run before each intent (kept, not run)."""

    def before_intents(self, step):
        self.step = step


def test_held_call_lines_are_chained_after_another_handles_lines_and_in_order(log_path):
    """Held lines get their seq and prev when written, under the file lock: another process's lines
    written meanwhile are chained through, an entry written at once goes after the held ones, and
    ``HOLD_LIMIT`` held lines are written without waiting for an intent."""
    from batch_payouts.payout.audit import HOLD_LIMIT

    with AuditLog.open(log_path) as run, AuditLog.open(log_path) as other:
        run.sync_with(_NoLedger())
        run.api_call("POST", "/customers", "k-1", 200, "L1", 1.0)
        other.append({"type": "reissue", "row": 2})  # another process, while the call's line is held
        run.api_call("POST", "/payout_orders", "k-2", 200, "L2", 1.0)
        run.append({"type": "run_finished"})  # written at once, after the held lines
        assert [json.loads(line)["type"] for line in lines_of(log_path)] == [
            "reissue", "api_call", "api_call", "run_finished"]
        for n in range(HOLD_LIMIT):
            run.api_call("GET", "/balance", None, 200, f"B{n}", 1.0)
        assert len(lines_of(log_path)) == 4 + HOLD_LIMIT
        run.api_call("GET", "/balance", None, 200, "last", 1.0)
        assert run.head[1] == 5 + HOLD_LIMIT  # the head writes what is held: it must match the file
    entries = [json.loads(line) for line in lines_of(log_path)]
    assert [e["seq"] for e in entries] == list(range(1, 6 + HOLD_LIMIT))
    assert entries[-1]["log_id"] == "last"
    result = verify(log_path)
    assert result.ok and result.lines == 5 + HOLD_LIMIT


def test_held_lines_written_by_the_head_fail_inside_the_guard(log_path, monkeypatch):
    """The head a run saves at its end writes the held lines first: a full disk there is named
    by ``sync_with``'s guard, like every other write of held lines (it was a bare message)."""
    from contextlib import contextmanager

    from batch_payouts.errors import BatchError
    from batch_payouts.payout import audit as audit_module

    class Named(Exception):
        pass

    @contextmanager
    def guard():
        try:
            yield
        except BatchError as error:
            raise Named() from error

    with AuditLog.open(log_path) as log:
        log.sync_with(_NoLedger(), guard)
        log.api_call("POST", "/customers", "k-1", 200, "L1", 1.0)

        def full(fd, data):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(audit_module, "_write_all", full)
        with pytest.raises(Named):
            log.head
        monkeypatch.undo()
    assert verify(log_path).ok


def test_two_handles_on_one_file_keep_one_chain(log_path):
    with AuditLog.open(log_path) as first, AuditLog.open(log_path) as second:
        for i in range(5):
            first.append({"type": "a", "i": i})
            second.append({"type": "b", "i": i})
    result = verify(log_path)
    assert result.ok and result.lines == 10 and result.problems == []


# -- what is (not) written ----------------------------------------------------
def test_scrub_options():
    options = {
        "workers": 8, "api_key": "x", "secret_thing": 1, "token": "t", "Password": "p", "idempotency_key": "k",
        "note": f"Bearer {KEY}", "plain": KEY, "nested": {"ok": 1, "auth_token": 2, "v": KEY},
        "list": ["a", KEY, "b"], "monkey_business": 1, "row_value": "row_key", "output": "pagos.results.xlsx",
    }
    clean = scrub_options(options)
    assert clean == {"workers": 8, "nested": {"ok": 1}, "list": ["a", "b"], "row_value": "row_key",
                     "output": "pagos.results.xlsx"}
    assert options["api_key"] == "x"  # a copy, the caller's dict untouched


def test_run_entries_hold_no_key_and_no_bodies(log_path):
    with AuditLog.open(log_path) as log:
        log.run_started(
            input_name="pagos.xlsx", input_sha256="a" * 64, batch_id="b-1", api_base="https://api.conekta.io",
            api_version="2.0.0", options={"workers": 4, "api_key": KEY, "live": False, "header": f"Basic {KEY}"},
        )
        log.api_call("POST", "/payout_orders", "idem-1", 200, "log-1", 12.34)
        log.api_call("GET", f"/customers?x={KEY}", None, None, None, 5)
        log.run_finished(mode="TEST", counts={"created": 1}, totals={"created": {"MXN": 3000}}, exit_code=0,
                         results_path=log_path.parent / "pagos.results.xlsx")
    text = log_path.read_text("utf-8")
    assert KEY not in text and "key_test" not in text
    started, call, _, finished = (json.loads(line) for line in lines_of(log_path))
    assert started["type"] == "run_started" and started["options"] == {"workers": 4, "live": False}
    for name in ("operator", "host", "started_at", "tool_version", "batch_id", "api_base", "api_version"):
        assert started[name] not in (None, "")
    assert set(call) == {"type", "method", "path", "idempotency_key", "http_status", "log_id", "duration_ms",
                         "seq", "ts", "prev"}
    assert call["duration_ms"] == 12.3
    assert finished["type"] == "run_finished" and finished["mode"] == "TEST" and finished["exit_code"] == 0
    assert finished["results_path"].endswith("pagos.results.xlsx") and finished["ended_at"].endswith("Z")
    assert verify(log_path).ok


def test_key_like_text_in_other_fields_is_redacted(log_path):
    with AuditLog.open(log_path) as log:
        log.api_call("GET", f"/payout_orders?search={KEY}", f"{KEY}", 200, KEY, 1)
        log.run_finished(mode="LIVE", counts={}, totals={}, exit_code=1, results_path=f"/data/{KEY}/out.xlsx",
                         note=[KEY])
    call, finished = (json.loads(line) for line in lines_of(log_path))
    assert call["path"] == "/payout_orders?search=[redacted]"
    assert call["idempotency_key"] == call["log_id"] == "[redacted]"
    assert finished["results_path"] == "/data/[redacted]/out.xlsx" and finished["note"] == ["[redacted]"]
    assert KEY not in log_path.read_text("utf-8")


def test_describe_messages(log_path):
    write_log(log_path)
    lines = lines_of(log_path)
    lines.pop(3)
    write_lines(log_path, lines)
    result = verify(log_path)
    es = describe(result, "es")
    en = describe(result, "en")
    assert es[1] == ("Línea 4: la línea fue modificada o falta la anterior (el hash no coincide): la línea anterior "
                     "fue editada, o se quitó, insertó o movió una línea aquí.")
    assert en[1].startswith("Line 4: the line was modified or the previous one is missing")
    assert "NO es íntegro" in es[-1] and "NOT intact" in en[-1]
    ok = verify(log_path.parent / "nothing.jsonl", expected_lines=0)
    assert describe(ok, "en") == ["Audit log intact: 0 lines, none modified, removed, inserted or reordered."]
    unanchored = describe(verify(log_path.parent / "nothing.jsonl"), "en")[-1]  # no head from a ledger to compare
    assert "could NOT be checked against the ledger" in unanchored and "intact" not in unanchored


# -- the property: any single-line mutation is caught --------------------------
entries_strategy = st.lists(
    st.dictionaries(st.sampled_from(["type", "method", "path", "n", "x"]),
                    st.one_of(st.text(max_size=8), st.integers(), st.none()), max_size=4),
    min_size=1, max_size=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=entries_strategy, data=st.data())
def test_any_single_line_mutation_fails(tmp_path, entries, data):
    path = tmp_path / "prop.audit.jsonl"
    path.unlink(missing_ok=True)
    with AuditLog.open(path) as log:
        for entry in entries:
            log.append(entry)
        last_hash, count = log.head
    assert verify(path, expected_head=last_hash, expected_lines=count).ok
    lines = lines_of(path)
    kinds = ["edit", "delete", "duplicate", "insert"] + (["swap"] if len(lines) > 1 else [])
    kind = data.draw(st.sampled_from(kinds), label="kind")
    i = data.draw(st.integers(0, len(lines) - 1), label="line")
    if kind == "edit":
        at = data.draw(st.integers(0, len(lines[i]) - 1), label="byte")
        new = data.draw(st.integers(0, 255).filter(lambda b: b != lines[i][at]), label="value")
        lines[i] = lines[i][:at] + bytes([new]) + lines[i][at + 1 :]
    elif kind == "delete":
        del lines[i]
    elif kind == "duplicate":
        lines.insert(i, lines[i])
    elif kind == "insert":
        seq = data.draw(st.integers(0, len(lines) + 1), label="seq")
        prev = data.draw(st.sampled_from([ZERO_HASH] + [line_hash(line) for line in lines]), label="prev")
        forged = json.dumps({"type": "api_call", "seq": seq, "prev": prev, "ts": "2026-01-01T00:00:00.000000Z"},
                            sort_keys=True, separators=(",", ":")).encode()
        lines.insert(data.draw(st.integers(0, len(lines)), label="at"), forged)
    else:
        j = data.draw(st.integers(0, len(lines) - 1).filter(lambda j: j != i), label="other")
        lines[i], lines[j] = lines[j], lines[i]
    write_lines(path, lines)
    assert not verify(path, expected_head=last_hash, expected_lines=count).ok
