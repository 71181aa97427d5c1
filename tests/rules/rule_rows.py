"""Input rows for the rules' tests: a raw frame as ``read_table`` returns it."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pandas as pd

NOW = int(datetime(2025, 6, 1, tzinfo=timezone.utc).timestamp())
MX = ZoneInfo("America/Mexico_City")

BASE = {
    "nombre": "María López",
    "correo": "maria@example.com",
    "telefono": "5512345678",
    "monto": "150000",
    "moneda": "MXN",
    "motivo": "Pago de nómina",
    "folio": "",
    "vence": "",
}


def table(*rows: dict, start: int = 2) -> pd.DataFrame:
    """A raw frame as read_table returns it: all text, index = sheet row."""
    records = [{**BASE, **row} for row in rows]
    columns = list(dict.fromkeys(k for r in records for k in r))
    frame = pd.DataFrame([[r.get(c, "") for c in columns] for r in records], columns=columns, dtype="str")
    frame.index = range(start, start + len(records))
    return frame
