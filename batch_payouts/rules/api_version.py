"""Rules that depend on the Conekta API version a batch is sent with (``--api-version``).

Conekta's cash-withdrawal document (API 2.0.0) makes a customer's ``phone``
optional; the newest OpenAPI spec (2.3.0) lists it as required (see
/work/shared/conekta/API.md).  The generated SDKs for 2.2.0 still treat it as
optional, so the boundary is 2.3.0: from that version on, a row without a phone
is refused here, naming its row and column, instead of by Conekta one row at a
time after money has started to move.  Versions we cannot read (a typo, a
future scheme) are left to Conekta: this is a courtesy check, not a gate.

Kept apart from the schema because it is the only rule that depends on a
sending option rather than on the file itself (``validate`` has no
``--api-version`` and so never applies it).
"""

from __future__ import annotations

import re

from batch_payouts.i18n import Text
from batch_payouts.rules.messages import Message
from batch_payouts.rules.validation import Problem, Validation

PHONE_REQUIRED_FROM = (2, 3, 0)
CODE = "missing_phone"
MISSING_PHONE = Message(
    Text(es="está vacía.", en="is empty."),
    Text(
        es="La versión {api_version} de la API de Conekta pide el teléfono de cada beneficiario: "
        "escribe de 10 a 15 dígitos (por ejemplo 5512345678), o envía con --api-version 2.2.0.",
        en="Conekta API version {api_version} requires each beneficiary's phone: "
        "write 10 to 15 digits (for example 5512345678), or send with --api-version 2.2.0.",
    ),
)



def version_tuple(api_version: str | None) -> tuple[int, ...] | None:
    """"2.3.0" -> (2, 3, 0); "v2.3" -> (2, 3, 0); None when it is not a version number."""
    match = re.fullmatch(r"\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?\s*", api_version or "")
    if not match:
        return None
    return tuple(int(part or 0) for part in match.groups())


def phone_required(api_version: str | None) -> bool:
    version = version_tuple(api_version)
    return version is not None and version >= PHONE_REQUIRED_FROM


def require_phone(
    validation: Validation, header: str, api_version: str | None, lang: str, amount_unit: str = "cents"
) -> Validation:
    """Mark rows without a phone invalid when ``api_version`` requires one; ``header`` is the
    phone column as the file names it.  Rows already refused for a malformed phone keep that
    single, more precise message.  Returns ``validation`` itself, changed in place."""
    if not phone_required(api_version):
        return validation
    frame = validation.frame
    lacking = (frame["phone"].astype(str) == "") & ~frame["error_code"].astype(str).str.contains("invalid_phone", regex=False)
    validation.add([
        Problem(row=int(row), column=header, code=CODE, value="", params={"api_version": api_version.strip()},
                amount_unit=amount_unit, explained=MISSING_PHONE)
        for row in frame.index[lacking.to_numpy()]
    ], lang)
    return validation
