"""The web app as finance staff use it (issue 13): over real HTTP against the sandbox.

Workbooks with several sheets, a password-protected workbook, the sandbox said plainly,
dates and counts a person reads, a batch found by the 12 characters the pages show, names
and invalid rows on a finished batch, one reference cancelled from its row, and the planned
counts on the progress page from its first moment.
"""

from __future__ import annotations

import re
import struct
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from conftest import API_KEY, WebServer, beneficiary, write_csv, write_workbook
from web_client import Visitor, batch_id_of, flashes, server, text_of, visitor  # noqa: F401 - fixtures by name

from batch_payouts import clock
from batch_payouts.web import formats


def payout_rows(count: int) -> list[list[object]]:
    people = [beneficiary(n) for n in range(1, count + 1)]
    return [list(people[0]), *([person[key] for key in people[0]] for person in people)]


def encrypted_workbook(path: Path) -> Path:
    """What Excel writes for a workbook with a password: an OLE2 compound file whose streams are
    «EncryptionInfo» and «EncryptedPackage» (the encrypted zip), not a zip. A minimal real one:
    a header, one FAT sector, one directory sector and two 4 KB streams."""
    end, free, nostream = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFF
    header = bytearray(512)
    header[0:8] = bytes.fromhex("D0CF11E0A1B11AE1")
    struct.pack_into("<HHHHH", header, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIIIIIII", header, 40, 0, 1, 1, 0, 0x1000, end, 0, end, 0)
    struct.pack_into("<109I", header, 76, 0, *[free] * 108)
    fat = [0xFFFFFFFD, end, 3, 4, 5, 6, 7, 8, 9, end, 11, 12, 13, 14, 15, 16, 17, end]
    fat += [free] * (128 - len(fat))

    def entry(name: str, kind: int, left=nostream, child=nostream, start=end, size=0) -> bytes:
        raw = bytearray(128)
        encoded = name.encode("utf-16-le") + b"\0\0" if name else b""
        raw[: len(encoded)] = encoded
        struct.pack_into("<HBB", raw, 64, len(encoded), kind, 1)
        struct.pack_into("<III", raw, 68, left, nostream, child)
        struct.pack_into("<IQ", raw, 116, start, size)
        return bytes(raw)

    directory = (entry("Root Entry", 5, child=1) + entry("EncryptedPackage", 2, left=2, start=2, size=4096)
                 + entry("EncryptionInfo", 2, start=10, size=4096) + entry("", 0))
    path.write_bytes(bytes(header) + struct.pack("<128I", *fat) + directory + b"\x5a" * 4096
                     + b"\x04\x00\x04\x00" + b"\0" * 4092)
    return path


def no_server_paths(page_text: str, server: WebServer) -> None:
    """Neither the server's data folder nor an upload's stored name (its random id) is on the page."""
    assert str(server.web.settings.data_dir) not in page_text
    assert not re.search(r"[0-9a-f]{32}\.xlsx", page_text)


# -- 6: workbooks with several sheets -------------------------------------------------------------
def test_a_workbook_whose_first_sheet_is_not_the_payouts_can_be_reviewed_on_the_right_sheet(
    server, visitor, tmp_path, sandbox,
):
    source = write_workbook(tmp_path / "nómina.xlsx", [
        ("Notas", [["Pagos de la quincena"], ["ver la otra hoja"]], "visible"), ("Pagos", payout_rows(3), "visible"),
    ])
    first = visitor.upload(source)
    error = re.search(r'id="review-error">([^<]*)<', first.text).group(1)
    assert "«Notas»" in error and "elígela en la lista «Hoja»" in error
    assert "--sheet" not in first.text and "ejecut" not in error
    no_server_paths(first.text, server)
    options = re.findall(r'<option value="([^"]+)"', first.text)
    assert options == ["Notas", "Pagos"]

    upload_path = first.url.replace(server.url, "")
    chosen = visitor.reviewed(visitor.post(upload_path + "/sheet", {"sheet": "Pagos"}))
    assert 'id="review-error"' not in chosen.text
    assert re.search(r'id="count-valid">3<', chosen.text) and "Se revisó la hoja «Pagos»" in text_of(chosen)
    assert re.search(r'<option value="Pagos" selected>', chosen.text)

    started = visitor.confirm(chosen.url)  # the run reads the sheet the review read
    server.web.runs.wait(batch_id_of(started), 60)
    assert visitor.get(f"/batches/{batch_id_of(started)}/progress").json()["created"] == 3
    assert len(sandbox.payout_orders()) == 3


def test_data_only_on_a_hidden_sheet_gets_web_advice_and_the_sheet_can_be_chosen(server, visitor, tmp_path):
    source = write_workbook(tmp_path / "oculta.xlsx", [("Portada", [], "visible"), ("Datos", payout_rows(2), "hidden")])
    first = visitor.upload(source)
    error = re.search(r'id="review-error">([^<]*)<', first.text).group(1)
    assert "«oculta.xlsx»" in error and "hojas ocultas («Datos»)" in error and "lista «Hoja»" in error
    assert "--sheet" not in first.text
    no_server_paths(first.text, server)
    assert "Datos (oculta)" in text_of(first)
    chosen = visitor.reviewed(visitor.post(first.url.replace(server.url, "") + "/sheet", {"sheet": "Datos"}))
    assert re.search(r'id="count-valid">2<', chosen.text)


def test_a_sheet_that_is_not_in_the_workbook_is_refused(server, visitor, tmp_path):
    source = write_workbook(tmp_path / "dos.xlsx", [("Uno", payout_rows(1), "visible"),
                                                    ("Dos", payout_rows(1), "visible")])
    first = visitor.upload(source)
    refused = visitor.post(first.url.replace(server.url, "") + "/sheet", {"sheet": "../../etc"})
    assert refused.status_code == 400 and "elige una de la lista" in text_of(refused)


def test_a_row_over_the_servers_maximum_is_explained_without_cli_options(web_settings, tmp_path):
    with WebServer(replace(web_settings, max_amount=10_000)) as capped:
        review = Visitor(capped.url).upload(write_csv(tmp_path / "grande.csv", [beneficiary(1)]))
    problems = re.search(r'id="problems">(.*?)</table>', review.text, re.S).group(1)
    assert "supera el máximo por fila de este servidor" in problems and "quien administra el servidor" in problems
    assert "--max-amount" not in review.text


# -- 13: a password-protected workbook -------------------------------------------------------------
def test_a_password_protected_workbook_gets_the_password_advice_not_save_as_xlsx(server, visitor, tmp_path):
    with open(encrypted_workbook(tmp_path / "con clave.xlsx"), "rb") as handle:
        refused = visitor.post("/upload", {"amount_unit": "cents"}, files={"file": ("con clave.xlsx", handle)})
    [message] = flashes(refused)
    assert "«con clave.xlsx» está protegido con contraseña" in message and "Quita la contraseña" in message
    assert "guárdalo como" not in message.lower()
    assert not list((server.web.settings.data_dir / "uploads").glob("*.xlsx"))  # not kept


# -- 12: the sandbox said plainly ------------------------------------------------------------------
def test_every_page_says_when_the_server_pays_into_the_sandbox(server, visitor, web_settings, tmp_path):
    review = visitor.upload(write_csv(tmp_path / "pagos.csv", [beneficiary(1)]))
    for page in (visitor.get("/"), visitor.get("/batches"), review, visitor.get(review.url.replace(server.url, "") + "/confirm")):
        assert 'id="sandbox-banner"' in page.text and "No se mueve dinero real" in text_of(page)
    with WebServer(replace(web_settings, api_base="https://api.conekta.io", data_dir=tmp_path / "real")) as real:
        assert 'id="sandbox-banner"' not in Visitor(real.url).get("/").text


# -- 14: dates and counts a person reads -----------------------------------------------------------
def test_dates_read_like_a_person_writes_them_in_spanish_and_english():
    moment = datetime(2026, 12, 1, 22, 55, tzinfo=timezone.utc).timestamp()  # 16:55 in Mexico City
    assert formats.when(moment, "es") == "1 dic 2026, 16:55 (-06:00)"
    assert formats.when(moment, "en") == "Dec 1, 2026, 4:55 PM (-06:00)"
    assert formats.when(None, "es") == ""
    assert formats.number(12480) == "12,480" and formats.number(7) == "7"


def test_web_dates_follow_the_chosen_zone_and_say_its_offset():
    moment = datetime(2026, 12, 1, 22, 55, tzinfo=timezone.utc).timestamp() + 0.358104  # the ledger's times have fractions
    try:
        clock.use("America/Tijuana")  # `web --timezone America/Tijuana`, or `timezone` in the config file
        assert formats.when(moment, "es") == "1 dic 2026, 14:55 (-08:00)"
        clock.use("UTC")
        assert formats.when(moment, "en") == "Dec 1, 2026, 10:55 PM (+00:00)"
    finally:
        clock.use(None)


def test_pages_show_dates_in_words_and_counts_with_thousands_separators(server, visitor, tmp_path):
    _, batch_id = _run(server, visitor, tmp_path, 2)
    listing = text_of(visitor.get("/batches"))
    assert re.search(r"\b\d{1,2} (ene|feb|mar|abr|may|jun|jul|ago|sep|oct|nov|dic) \d{4}, \d{1,2}:\d{2}\b", listing)
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:", listing)
    visitor.get("/lang/en?next=/batches")
    english = text_of(visitor.get(f"/batches/{batch_id}"))
    assert re.search(r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{1,2}, \d{4}, \d{1,2}:\d{2} (AM|PM)", english)
    visitor.get("/lang/es?next=/")
    many = write_csv(tmp_path / "muchos.csv", [beneficiary(n) for n in range(1, 1201)])
    review = visitor.upload(many)
    assert re.search(r'id="count-rows">1,200<', review.text) and re.search(r'id="count-valid">1,200<', review.text)


# -- 15: the short id, names, invalid rows, one reference cancelled ------------------------------
def _run(server: WebServer, visitor: Visitor, tmp_path: Path, count: int, invalid: int = 0):
    rows = [beneficiary(n) for n in range(1, count + 1)]
    rows += [beneficiary(100 + n, correo="sin-arroba") for n in range(invalid)]
    review = visitor.upload(write_csv(tmp_path / "lote.csv", rows))
    started = visitor.confirm(review.url)
    batch_id = batch_id_of(started)
    server.web.runs.wait(batch_id, 60)
    return review, batch_id


def test_the_batch_page_answers_to_the_twelve_characters_it_shows(server, visitor, tmp_path):
    _, batch_id = _run(server, visitor, tmp_path, 1)
    short = visitor.get(f"/batches/{batch_id[:12]}")
    assert short.status_code == 200 and short.url.endswith(f"/batches/{batch_id}")
    assert f"<code>{batch_id[:12]}</code>" in short.text
    assert visitor.get(f"/batches/{batch_id[:12]}/progress").json()["created"] == 1
    assert visitor.get("/batches/0123456789ab").status_code == 404


def test_a_finished_batch_lists_names_and_the_invalid_rows(server, visitor, tmp_path):
    _, batch_id = _run(server, visitor, tmp_path, 2, invalid=1)
    page = visitor.get(f"/batches/{batch_id}")
    rows = re.search(r'<table class="grid" id="rows">(.*?)</table>', page.text, re.S).group(1)
    assert "Beneficiaria Núñez 1" in rows and "Beneficiaria Núñez 2" in rows
    invalid = re.search(r'<table class="grid" id="invalid-rows">(.*?)</table>', page.text, re.S).group(1)
    assert re.search(r"<td>4</td><td class=\"name\">Beneficiaria Núñez 100</td><td>[^<]*correo", invalid)
    assert "Filas inválidas (no se enviaron): 1" in text_of(page)


def test_one_reference_is_cancelled_from_its_row_after_a_confirmation(server, visitor, tmp_path, sandbox):
    _, batch_id = _run(server, visitor, tmp_path, 3)
    page = visitor.get(f"/batches/{batch_id}")
    links = re.findall(rf'href="/batches/{batch_id}/cancel\?row=(\d+)"', page.text)
    assert links == ["2", "3", "4"]
    ask = visitor.get(f"/batches/{batch_id}/cancel?row=3")
    assert "Se cancelará 1 referencia" in text_of(ask) and 'name="row" value="3"' in ask.text
    assert all(o["status"] != "cancelled" for o in sandbox.payout_orders())  # asking cancels nothing
    done = visitor.post(f"/batches/{batch_id}/cancel", {"count": "1", "row": "3"})
    assert "Cancelación: 1 cancelada." in flashes(done)
    assert [o["status"] for o in sandbox.payout_orders()].count("cancelled") == 1
    cancelled = next(o for o in sandbox.payout_orders() if o["status"] == "cancelled")
    assert cancelled["reference"] in re.search(r'<tr class="state-created[^"]*"><td>3</td>.*?</tr>', done.text, re.S).group(0)
    again = visitor.get(f"/batches/{batch_id}")
    assert re.findall(rf'href="/batches/{batch_id}/cancel\?row=(\d+)"', again.text) == ["2", "4"]
    assert visitor.get(f"/batches/{batch_id}/cancel?row=99").status_code == 409  # not a row of this batch


# -- 16: the planned counts from the first moment ---------------------------------------------------
def test_the_progress_shows_the_planned_rows_even_before_the_run_reads_the_file(server, visitor, tmp_path, sandbox):
    """A run that stops before it has read the file again (here: the key is revoked after the
    review) never updates its counters: the page must still say how many rows were planned."""
    review = visitor.upload(write_csv(tmp_path / "lote.csv", [beneficiary(n) for n in range(1, 4)]))
    sandbox.revoke_key(API_KEY)
    started = visitor.confirm(review.url)
    batch_id = batch_id_of(started)
    server.web.runs.wait(batch_id, 60)
    progress = visitor.get(f"/batches/{batch_id}/progress").json()
    assert (progress["total"], progress["pending"], progress["done"]) == (3, 3, 0)
    page = text_of(visitor.get(f"/batches/{batch_id}"))
    assert "Pendientes: 3" in page


def test_review_and_confirm_show_the_amount_figures_and_the_unit_warning(web_settings, tmp_path):
    """The pesos/cents trap on the web: a workbook whose amount cells Excel shows as money, uploaded as
    cents, is read as cents (the person chose) with the warning, and both pages show total, largest, median."""
    import xlsxwriter

    path = tmp_path / "pesos.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet, money = book.add_worksheet("Pagos"), book.add_format({"num_format": "$#,##0.00"})
    sheet.write_row(0, 0, ["nombre", "correo", "monto", "motivo"])
    for row, amount in enumerate((150000, 250000, 90000), start=1):
        sheet.write_row(row, 0, [f"Persona {row}", f"p{row}@ejemplo.mx"])
        sheet.write_number(row, 2, amount, money)
        sheet.write_string(row, 3, "Pago")
    book.close()
    with WebServer(web_settings) as running:
        visitor = Visitor(running.url)
        review = visitor.upload(path)
        assert review.status_code == 200, review.text
        page = text_of(review)
        assert "MXN: 3 filas válidas, total $4,900.00, monto mayor $2,500.00, mediana $1,500.00" in page
        assert ("Se usa la unidad que elegiste al subir el archivo, pero el formato de moneda de las "
                "celdas dice pesos") in page
        assert "--amount-unit" not in review.text  # a web user chose the unit on the form, not with an option
        confirm = text_of(visitor.get(review.url.replace(running.url, "") + "/confirm"))
        assert "total $4,900.00, monto mayor $2,500.00" in confirm
