"""identity.py: the identities a rerun finds its batch and its rows by.

A batch id or a row key that changed between two versions of the tool would make
the rerun of an interrupted batch, after an upgrade, a new batch: these values are
pinned (computed by earlier versions), so a change to them is a deliberate one.
"""

from __future__ import annotations

import pandas as pd

from batch_payouts.payout import identity
from batch_payouts.rules.validation import validate

RAW = pd.DataFrame(
    {"nombre": ["Ana Núñez", "Luis", "Luis", "Eva"], "correo": ["Ana@X.mx", "l@x.mx", "l@x.mx", "e@x.mx"],
     "telefono": ["55 1234 5678", "", "", "5512345678"], "monto": ["150000", "20000", "20000", "bad"],
     "motivo": ["Pago", "Apoyo", "Apoyo", "Pago"], "folio": ["F-1", "", "", ""],
     "vence": ["2030-12-31", "", "", ""], "meta_area": ["Ventas", "", "x", ""]},
    index=[2, 3, 5, 6], dtype="str",
)


def test_batch_id_and_row_keys_are_the_ones_earlier_versions_computed():
    validated = validate(RAW, now=0, allow_duplicate_rows=True).frame
    assert identity.batch_identity(validated, "fp") == "52fac110fb0b95d449ae4dc21a177062c644c7d92a8888ff8301974de38970d6"
    assert identity.row_keys(validated).to_dict() == {
        2: "x:F-1", 3: "h:cbce2232504aa5319b37.1", 5: "h:bbe4d42786c2fa72b230.1", 6: "h:e265e38bf3e81607709a.1",
    }


def test_rows_of_gives_what_to_dict_gives():
    validated = validate(RAW, now=0, allow_duplicate_rows=True).frame
    expected = list(zip((int(n) for n in validated.index), validated.to_dict("records")))
    got = list(identity.rows_of(validated))
    assert got == expected
    assert [[type(v) for v in row.values()] for _, row in got] == [[type(v) for v in row.values()] for _, row in expected]
    assert all(type(number) is int for number, _ in got)
