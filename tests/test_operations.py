"""End to end for the commands used after a batch is sent: status, cancel, reconcile, batches, show, report.

The real CLI, the real client, real HTTP to the sandbox, a real ledger file.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta

import openpyxl
import requests

from batch_payouts.contracts import SCHEMA_VERSION
from batch_payouts import report
from batch_payouts.report import MEXICO_CITY
from batch_payouts.states import UNCONFIRMED_EXPLAINED
from conftest import API_KEY, beneficiary, read_xlsx, run_with_a_row_in_doubt, write_csv


def _run(sandbox, env, cli, count=4, **row_overrides):
    rows = [beneficiary(n, folio=f"F-{n}", **row_overrides) for n in range(1, count + 1)]
    source = write_csv(env / "pagos.csv", rows)
    out = env / "pagos.results.xlsx"
    result = cli("run", source, "--api-base", sandbox.url, "--output", out)
    assert result.exit_code == 0, result.output
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        batch_id = conn.execute("SELECT batch_id FROM batches").fetchone()[0]
    return out, batch_id


def _ledger_rows(env):
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        conn.row_factory = sqlite3.Row
        return {r["row_number"]: dict(r) for r in conn.execute("SELECT * FROM rows")}


def _by_id(sandbox):
    return {o["id"]: o for o in sandbox.payout_orders()}


def test_status_updates_ledger_sheet_and_summary(sandbox, env, cli):
    out, batch_id = _run(sandbox, env, cli)
    before = _ledger_rows(env)
    sandbox.set_order_status(before[2]["payout_order_id"], "cashed")
    sandbox.set_order_status(before[3]["payout_order_id"], "expired")

    result = cli("status", out, "--api-base", sandbox.url)
    assert result.exit_code == 0, result.output
    # one order each: worded in the singular ("1 cobrada", not "1 cobradas")
    assert re.search(r"\b1  cobrada ", result.output) and re.search(r"\b1  vencida \(no se cobró\)", result.output)
    assert re.search(r"\b2  pendientes de cobro", result.output)
    assert "$101.00" in result.output and "$102.00" in result.output  # rows 2 and 3: 10100 and 10200 cents
    assert "Cambiaron de estado desde la última consulta: 2" in result.output
    after = _ledger_rows(env)
    assert [after[n]["order_status"] for n in (2, 3, 4, 5)] == ["cashed", "expired", "pending", "pending"]
    assert all(after[n]["status_checked_at"] for n in (2, 3, 4, 5))
    sheet = read_xlsx(out)
    assert [r["order_status"] for r in sheet] == ["cashed", "expired", "pending", "pending"]
    assert [r["status_change"] for r in sheet] == ["changed", "changed", None, None]
    assert sheet[0]["status_checked_at"].endswith(("-06:00", "-05:00"))
    assert isinstance(sheet[0]["reference"], str) and len(sheet[0]["reference"]) == 16
    assert isinstance(sheet[0]["telefono"], str)
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["Resultados", "Resumen", "Errores"]  # the other sheets are kept
    assert book.worksheets[0]["A2"].fill.fgColor.rgb.endswith("FFEB9C")  # changed rows highlighted

    # Nothing changed since: no highlight; English; by id prefix, to another file.
    other = env / "estado.xlsx"
    again = cli("status", batch_id[:8], "--api-base", sandbox.url, "--lang", "en", "--output", other)
    assert again.exit_code == 0, again.output
    assert "cashed" in again.output and "Changed status since the last check: 0" in again.output
    assert [r["status_change"] for r in read_xlsx(other)] == [None] * 4


def test_status_exit_1_when_an_order_cannot_be_fetched_and_2_with_another_key(sandbox, env, cli, monkeypatch):
    out, batch_id = _run(sandbox, env, cli, count=2)
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        conn.execute("UPDATE rows SET payout_order_id='00000000-0000-4000-8000-000000000000' WHERE row_number=2")
    result = cli("status", out, "--api-base", sandbox.url)
    assert result.exit_code == 1, result.output
    assert "00000000-0000-4000-8000-000000000000" in result.output
    monkeypatch.setenv("CONEKTA_API_KEY", "key_test_another_account_9999")
    other = cli("status", out, "--api-base", sandbox.url)
    assert other.exit_code == 2
    assert "otra llave" in other.output and "Traceback" not in other.output
    unknown = cli("status", "no-such-batch", "--api-base", sandbox.url)
    assert unknown.exit_code == 2 and "no-such-batch" in unknown.output
    monkeypatch.setenv("CONEKTA_API_KEY", API_KEY)
    calls = len(sandbox.request_log)
    assert cli("status", out, "--api-base", sandbox.url, "--output", env / "estado.pdf").exit_code == 2
    assert len(sandbox.request_log) == calls  # refused before asking Conekta anything


def test_cancel_needs_yes_off_a_terminal_then_cancels_and_records(sandbox, env, cli):
    out, batch_id = _run(sandbox, env, cli, count=5)
    puts_before = [r for r in sandbox.request_log if r["method"] == "PUT"]
    refused = cli("cancel", out, "--rows", "2,4-5", "--api-base", sandbox.url)
    assert refused.exit_code == 2
    assert "--yes" in refused.output
    assert [r for r in sandbox.request_log if r["method"] == "PUT"] == puts_before == []
    assert {o["status"] for o in sandbox.payout_orders()} == {"pending"}

    done = cli("cancel", out, "--rows", "2,4-5", "--yes", "--api-base", sandbox.url)
    assert done.exit_code == 0, done.output
    rows = _ledger_rows(env)
    orders = _by_id(sandbox)
    assert [orders[rows[n]["payout_order_id"]]["status"] for n in range(2, 7)] == [
        "cancelled", "pending", "cancelled", "cancelled", "pending"]
    assert [rows[n]["order_status"] for n in (2, 4, 5)] == ["cancelled"] * 3
    assert all(rows[n]["cancelled_at"] for n in (2, 4, 5)) and rows[3]["cancelled_at"] is None
    sheet = read_xlsx(out)
    assert [r["order_status"] for r in sheet] == ["cancelled", "pending", "cancelled", "cancelled", "pending"]

    # Row 3 was cashed meanwhile (the ledger does not know yet): reported, not an error.
    sandbox.set_order_status(rows[3]["payout_order_id"], "cashed")
    rest = cli("cancel", out, "--all-pending", "--yes", "--api-base", sandbox.url)
    assert rest.exit_code == 0, rest.output
    assert "fila 3: no se canceló, ya estaba cobrada" in rest.output
    orders = _by_id(sandbox)
    assert orders[rows[3]["payout_order_id"]]["status"] == "cashed"
    assert orders[rows[6]["payout_order_id"]]["status"] == "cancelled"
    assert _ledger_rows(env)[3]["order_status"] == "cashed"

    # Already cancelled: nothing sent, not an error.
    puts = len([r for r in sandbox.request_log if r["method"] == "PUT"])
    again = cli("cancel", out, "--external-id", "F-1", "--yes", "--api-base", sandbox.url)
    assert again.exit_code == 0, again.output
    assert len([r for r in sandbox.request_log if r["method"] == "PUT"]) == puts


def test_cancel_by_folio_and_a_selection_without_an_order_is_refused(sandbox, env, cli):
    out, batch_id = _run(sandbox, env, cli, count=3)
    bad = cli("cancel", batch_id, "--rows", "2,99", "--yes", "--api-base", sandbox.url)
    assert bad.exit_code == 2 and "99" in bad.output
    assert {o["status"] for o in sandbox.payout_orders()} == {"pending"}
    assert cli("cancel", batch_id, "--yes", "--api-base", sandbox.url).exit_code == 2  # no selection
    done = cli("cancel", batch_id, "--external-id", "F-2", "--external-id", "F-3", "--yes", "--api-base", sandbox.url)
    assert done.exit_code == 0, done.output
    rows = _ledger_rows(env)
    orders = _by_id(sandbox)
    assert [orders[rows[n]["payout_order_id"]]["status"] for n in (2, 3, 4)] == ["pending", "cancelled", "cancelled"]


def test_reconcile_agrees_then_reports_an_orphan_and_a_missing_order(sandbox, env, cli):
    out, batch_id = _run(sandbox, env, cli, count=3)
    clean = cli("reconcile", batch_id, "--api-base", sandbox.url)
    assert clean.exit_code == 0, clean.output
    assert "coinciden: 3" in clean.output

    auth = (API_KEY, "")
    headers = {"Accept": "application/vnd.conekta-v2.0.0+json"}
    customer = requests.post(f"{sandbox.url}/customers", auth=auth, headers=headers, timeout=10,
                             json={"name": "Huérfana", "email": "huerfana@ejemplo.mx"}).json()
    orphan = requests.post(
        f"{sandbox.url}/payout_orders", auth=auth, headers=headers, timeout=10,
        json={"currency": "MXN", "amount": 5000, "customer_info": {"customer_id": customer["id"]},
              "allowed_payout_methods": ["cashout"], "payout": {"payout_method": {"type": "cashout"}},
              "reason": "Dejada por un fallo", "metadata": {"batch_id": batch_id, "row_key": "x:perdida"}},
    ).json()
    assert orphan["object"] == "payout_order"
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        conn.execute("UPDATE rows SET payout_order_id='11111111-1111-4111-8111-111111111111' WHERE row_number=3")
    result = cli("reconcile", batch_id[:10], "--api-base", sandbox.url, "--lang", "en")
    assert result.exit_code == 1
    # The orphan made by hand, and row 3's real order, which the edited ledger no longer names.
    assert "orphans): 2" in result.output and orphan["id"] in result.output
    assert "x:perdida" in result.output and "(row 3, in the ledger: created" in result.output
    assert "does not exist at Conekta: 1" in result.output
    assert "11111111-1111-4111-8111-111111111111" in result.output


def test_batches_and_show_print_what_the_ledger_knows(sandbox, env, cli):
    empty = cli("batches")
    assert empty.exit_code == 0
    out, batch_id = _run(sandbox, env, cli, count=2)
    listed = cli("batches")
    assert listed.exit_code == 0, listed.output
    assert batch_id[:12] in listed.output and "pagos.csv" in listed.output and "TEST" in listed.output
    assert "$203.00" in listed.output  # 10100 + 10200 cents
    shown = cli("show", batch_id[:12], "--lang", "en")
    assert shown.exit_code == 0, shown.output
    for fact in (batch_id, "pagos.csv", "created 2", "$203.00 MXN", sandbox.url, "2.0.0", str(out.resolve())):
        assert fact in shown.output
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        sha = conn.execute("SELECT input_sha256 FROM batches").fetchone()[0]
    assert sha in shown.output
    assert cli("show", out).exit_code == 0  # by results sheet
    assert cli("show", "ffffffffffff").exit_code == 2


def test_batches_and_show_json_for_scripts(sandbox, env, cli):
    assert json.loads(cli("batches", "--json").output.strip().splitlines()[-1])["batches"] == []
    out, batch_id = _run(sandbox, env, cli, count=2)
    listed = json.loads(cli("batches", "--json").output.strip().splitlines()[-1])
    [batch] = listed["batches"]
    assert batch["batch_id"] == batch_id and batch["input_name"] == "pagos.csv" and batch["mode"] == "TEST"
    assert batch["created"] == 2 and batch["amount_created"] == 20300 and batch["output_path"] == str(out.resolve())
    shown = json.loads(cli("show", batch_id[:12], "--json").output.strip().splitlines()[-1])
    assert shown["batch_id"] == batch_id and shown["states"] == {"created": 2}
    assert shown["totals_created"] == {"MXN": 20300}
    assert shown["order_status"] == {"pending": {"MXN": {"count": 2, "amount": 20300}}}
    assert len(shown["input_sha256"]) == 64


def _table(output: str) -> dict[str, str]:
    """The `batches` table's header and first batch, cell by cell (columns are two or more spaces apart)."""
    header, first = (re.split(r"\s{2,}", line.strip()) for line in output.splitlines()[:2])
    return dict(zip(header, first))


def test_batches_and_show_call_a_row_in_doubt_unconfirmed_never_failed(sandbox, env, cli):
    """A row whose order may exist at Conekta is "sin confirmar", with why and what to do; reading
    "fallida" a finance person may pay it by hand and the rerun would pay it again."""
    result = run_with_a_row_in_doubt(sandbox, env, env / "ledger.sqlite")
    batch_id = result.batch_id
    run_json = report.result_json(result)  # what `run --json` prints
    assert run_json["counts"] == {"created": 1, "unknown": 1} and run_json["unconfirmed"] == 1
    summary = openpyxl.load_workbook(result.output_path)["Resumen"]
    items = [line[0] for line in summary.iter_rows(values_only=True)]
    assert "sin confirmar (vuelve a ejecutar el mismo archivo para resolverla; no la pagues a mano) (unknown)" in items
    listed = cli("batches")
    assert listed.exit_code == 0, listed.output
    row = _table(listed.output)
    assert (row["creadas"], row["sin confirmar"], row["fallidas"], row["sin enviar"]) == ("1", "1", "0", "0")
    assert UNCONFIRMED_EXPLAINED.es in listed.output
    [batch] = json.loads(cli("batches", "--json").output.strip().splitlines()[-1])["batches"]
    assert (batch["created"], batch["unconfirmed"], batch["unknown"], batch["failed"], batch["pending"]) == (1, 1, 1, 0, 0)

    shown = cli("show", batch_id[:12])
    assert "creada 1, sin confirmar 1" in shown.output and "fallida" not in shown.output
    assert UNCONFIRMED_EXPLAINED.es in shown.output
    english = cli("show", batch_id[:12], "--lang", "en", "--json")
    assert "created 1, unconfirmed 1" in english.output and UNCONFIRMED_EXPLAINED.en in english.output
    data = json.loads(english.output.strip().splitlines()[-1])
    assert data["states"] == {"unknown": 1, "created": 1}
    assert (data["counts"]["unconfirmed"], data["counts"]["failed"], data["counts"]["created"]) == (1, 0, 1)


def test_every_batch_of_a_key_records_its_own_mode_not_only_the_first(sandbox, env, cli):
    """Regression: the second file run with a key already known as TEST showed "—" in batches/show."""
    for name, first in (("primero.csv", 1), ("segundo.csv", 10)):
        source = write_csv(env / name, [beneficiary(n) for n in range(first, first + 2)])
        ran = cli("run", source, "--api-base", sandbox.url, "--output", env / f"{name}.results.xlsx", "--json")
        assert ran.exit_code == 0, ran.output
        assert json.loads(ran.output.strip().splitlines()[-1])["mode"] == "TEST"
    listed = json.loads(cli("batches", "--json").output.strip().splitlines()[-1])["batches"]
    assert sorted(b["input_name"] for b in listed) == ["primero.csv", "segundo.csv"]
    assert [b["mode"] for b in listed] == ["TEST", "TEST"]
    for batch in listed:
        shown = json.loads(cli("show", batch["batch_id"], "--json").output.strip().splitlines()[-1])
        assert shown["mode"] == "TEST"
    assert "—" not in cli("batches").output


def test_report_writes_every_payout_of_the_period(sandbox, env, cli, monkeypatch):
    out, batch_id = _run(sandbox, env, cli, count=3)
    rows = _ledger_rows(env)
    sandbox.set_order_status(rows[2]["payout_order_id"], "cashed")
    assert cli("status", out, "--api-base", sandbox.url).exit_code == 0
    today = datetime.now(MEXICO_CITY).date()
    tomorrow = today + timedelta(days=1)
    target = env / "mes.xlsx"
    result = cli("report", "--since", today.isoformat(), "--until", tomorrow.isoformat(), "--output", target)
    assert result.exit_code == 0, result.output
    lines = sorted(read_xlsx(target), key=lambda r: r["row"])  # in order of creation: workers run in parallel
    assert [r["row"] for r in lines] == [2, 3, 4]
    assert {r["batch_id"] for r in lines} == {batch_id}
    assert [r["order_status"] for r in lines] == ["cashed", "pending", "pending"]
    assert [r["amount"] for r in lines] == [10100, 10200, 10300]
    assert all(isinstance(r["reference"], str) and len(r["reference"]) == 16 for r in lines)
    assert lines[0]["input_name"] == "pagos.csv" and lines[0]["status_checked_at"]

    as_json = cli("report", "--since", today.isoformat(), "--until", tomorrow.isoformat(), "--output", target, "--json")
    assert as_json.exit_code == 0, as_json.output
    summary = json.loads(as_json.output.strip().splitlines()[-1])
    assert summary == {"schema_version": SCHEMA_VERSION, "path": str(target), "payouts": 3, "totals": {"MXN": 30600},
                       "since": today.isoformat(), "until": tomorrow.isoformat()}

    monkeypatch.chdir(env)
    later = cli("report", "--since", tomorrow.isoformat())
    assert later.exit_code == 2  # until (now) is before since
    default = cli("report", "--since", today.isoformat())
    assert default.exit_code == 0, default.output
    assert (env / f"payouts-{today.isoformat()}-{today.isoformat()}.xlsx").exists()
    assert cli("report", "--since", "marzo").exit_code == 2


def test_status_and_cancel_calls_join_the_batch_audit_log(sandbox, env, cli):
    out, _batch_id = _run(sandbox, env, cli, count=2)
    assert cli("status", out, "--api-base", sandbox.url).exit_code == 0
    assert cli("cancel", out, "--rows", "2", "--yes", "--api-base", sandbox.url).exit_code == 0
    audit = out.with_suffix(".audit.jsonl")
    entries = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    commands = [e["command"] for e in entries if e["type"] == "command_started"]
    assert commands == ["status", "cancel"]
    assert any(e["type"] == "api_call" and e["method"] == "PUT" for e in entries)
    assert cli("audit", "verify", audit).exit_code == 0


def test_status_and_reconcile_print_json_for_scripts(sandbox, env, cli):
    out, batch_id = _run(sandbox, env, cli, count=2)
    status = cli("status", out, "--api-base", sandbox.url, "--json")
    data = json.loads(status.stdout.strip().splitlines()[-1])
    assert data["batch_id"] == batch_id and data["exit_code"] == status.exit_code == 0
    assert data["checked"] == 2 and data["statuses"]["pending"]["MXN"]["count"] == 2
    rec = cli("reconcile", batch_id, "--api-base", sandbox.url, "--json")
    data = json.loads(rec.stdout.strip().splitlines()[-1])
    assert (data["exit_code"], data["agreed"], data["orphans"], data["missing"]) == (0, 2, [], [])


def test_cancel_json_lists_each_outcome_and_the_money_that_can_no_longer_be_cashed(sandbox, env, cli):
    out, batch_id = _run(sandbox, env, cli, count=3)
    rows = _ledger_rows(env)
    sandbox.set_order_status(rows[3]["payout_order_id"], "cashed")  # the ledger does not know yet
    result = cli("cancel", out, "--rows", "2-3", "--yes", "--api-base", sandbox.url, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    assert data["batch_id"] == batch_id and data["exit_code"] == 0 and data["failed"] == []
    assert [(r["row"], r["status"], r["amount"]) for r in data["cancelled"]] == [(2, "cancelled", 10100)]
    assert [(r["row"], r["status"]) for r in data["already"]] == [(3, "cashed")]
    assert data["cancelled"][0]["reference"] == rows[2]["reference"]
    assert data["amount_cancelled"] == {"MXN": 10100} and data["sheet"] == str(out)

    nothing = cli("cancel", out, "--rows", "2", "--yes", "--api-base", sandbox.url, "--json")
    assert nothing.exit_code == 0, nothing.output
    again = json.loads(nothing.output.strip().splitlines()[-1])
    assert again["cancelled"] == [] and again["amount_cancelled"] == {}
