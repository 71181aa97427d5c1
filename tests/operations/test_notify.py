"""``notify``: the summary email arrives at a real SMTP server (aiosmtpd) with the right figures."""

from __future__ import annotations

import email
import sqlite3

import pytest
from aiosmtpd.controller import Controller

from conftest import beneficiary, free_socket, write_csv


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp():
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def _rows(env):
    with sqlite3.connect(env / "ledger.sqlite") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM rows ORDER BY row_number")]


def test_the_summary_email_has_the_figures_and_the_results_sheet(sandbox, env, cli, smtp, monkeypatch):
    inbox, port = smtp
    monkeypatch.setenv("BATCH_PAYOUTS_SMTP_PASSWORD", "s3cret-never-shown")
    source = write_csv(env / "pagos.csv", [beneficiary(n, folio=f"F-{n}") for n in (1, 2, 3)])
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    rows = _rows(env)
    sandbox.set_order_status(rows[0]["payout_order_id"], "cashed")
    sandbox.set_order_status(rows[1]["payout_order_id"], "expired")
    assert cli("status", env / "pagos.results.xlsx", "--api-base", sandbox.url).exit_code == 0
    config = env / "nightly.toml"
    config.write_text(f'[notify]\nsmtp-host = "127.0.0.1"\nsmtp-port = {port}\nstarttls = false\n'
                      'from = "pagos@empresa.mx"\nto = "finanzas@empresa.mx, ana@empresa.mx"\n')

    result = cli("notify", "--config", config)
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    (recipients, message), = inbox.messages
    assert recipients == ["finanzas@empresa.mx", "ana@empresa.mx"]
    body = next(part for part in message.walk() if part.get_content_type() == "text/plain").get_payload(decode=True).decode()
    assert "Lotes ejecutados: 1" in body
    assert "creadas 3, sin confirmar 0, fallidas 0" in body
    assert "Referencias cobradas: 1 ($101.00 MXN)" in body
    assert "Referencias vencidas sin cobrar: 1 ($102.00 MXN)" in body
    assert "Dinero pendiente de cobro: $103.00 MXN" in body
    attached = [part for part in message.walk() if part.get_filename()]
    assert [part.get_filename() for part in attached] == ["pagos.results.xlsx"]
    assert attached[0].get_payload(decode=True) == (env / "pagos.results.xlsx").read_bytes()

    # the next summary covers only what happened since: no batch, nothing cashed
    assert cli("notify", "--config", config, "--lang", "en").exit_code == 0
    body = inbox.messages[1][1].get_payload(decode=True) if not inbox.messages[1][1].is_multipart() else \
        next(p for p in inbox.messages[1][1].walk() if p.get_content_type() == "text/plain").get_payload(decode=True)
    assert "Batches run: 0" in body.decode() and "References cashed: 0" in body.decode()


def test_notify_without_recipients_or_a_reachable_server_says_so(env, cli, sandbox):
    source = write_csv(env / "pagos.csv", [beneficiary(1)])
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    assert cli("notify").exit_code == 2
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    result = cli("notify", "--smtp-host", "127.0.0.1", "--smtp-port", port, "--no-starttls", "--to", "a@b.mx")
    assert result.exit_code == 2 and "No se pudo enviar" in result.output


def test_run_and_status_notify_send_the_summary_with_the_config_files_notify_table(sandbox, env, cli, smtp):
    from test_contracts import last_json

    inbox, port = smtp
    config = env / "nightly.toml"
    config.write_text(f'[notify]\nsmtp-host = "127.0.0.1"\nsmtp-port = {port}\nstarttls = false\n'
                      'to = "finanzas@empresa.mx"\n')
    source = write_csv(env / "pagos.csv", [beneficiary(n, folio=f"F-{n}") for n in (1, 2)])
    ran = cli("run", source, "--api-base", sandbox.url, "--config", config, "--notify", "--json")
    assert ran.exit_code == 0, ran.output
    assert last_json(ran)["counts"] == {"created": 2}  # the JSON document is still the last line on stdout
    assert "Resumen enviado a finanzas@empresa.mx: 1 lotes" in ran.stderr
    (_to, message), = inbox.messages
    body = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    assert "Lotes ejecutados: 1" in body and "Dinero pendiente de cobro: $203.00 MXN" in body
    assert [p.get_filename() for p in message.walk() if p.get_filename()] == ["pagos.results.xlsx"]

    sandbox.set_order_status(_rows(env)[0]["payout_order_id"], "cashed")
    checked = cli("status", "--all-open", "--api-base", sandbox.url, "--config", config, "--notify", "--lang", "en")
    assert checked.exit_code == 0, checked.output
    body = inbox.messages[1][1].get_payload(decode=True).decode()
    assert "References cashed: 1 ($101.00 MXN)" in body and "Money still to be cashed: $102.00 MXN" in body


def test_a_summary_that_cannot_be_sent_is_said_and_the_status_exit_code_stays(sandbox, env, cli):
    source = write_csv(env / "pagos.csv", [beneficiary(1)])
    assert cli("run", source, "--api-base", sandbox.url).exit_code == 0
    result = cli("status", env / "pagos.results.xlsx", "--api-base", sandbox.url, "--notify")  # no [notify] table
    assert result.exit_code == 0
    assert "No se envió el resumen (--notify): Falta a quién enviar el resumen" in result.stderr
