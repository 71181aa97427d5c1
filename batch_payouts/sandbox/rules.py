"""Conekta's rules and error shape, written once: what a request must contain,
and how a refusal looks.

Every refusal is ``{object: "error", type, log_id, details: [{code, param,
message, debug_message}]}``; ``message`` follows Accept-Language (Spanish by
default), ``debug_message`` is always English, for the developer.  Codes use
Conekta's dotted style (``conekta.errors.parameter_validation.<param>.<why>``)
so a client can branch on them.  A validator returns *every* problem of a
body at once, as Conekta's ``details`` list allows.
"""

from __future__ import annotations

import os
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass
from typing import Any

from batch_payouts.i18n import DEFAULT_LANG, Text

PARAMETER = "parameter_validation_error"
NOT_FOUND = "resource_not_found_error"
AUTHENTICATION = "authentication_error"
PRECONDITION = "precondition_required_error"
PROCESSING = "processing_error"
API_ERROR = "api_error"
RATE_LIMIT = "rate_limit_error"
CONFLICT = "conflict_error"

REASON_MAX = 40
METADATA_MAX_KEYS = 100
DEFAULT_EXPIRY_SECONDS = 48 * 3600
LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX = 20, 250

_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Rule:
    """One way a request can be refused: its code, param and message."""

    code: str
    param: str | None
    text: Text


def rule(code: str, param: str | None, es: str, en: str) -> Rule:
    return Rule(code, param, Text(es=es, en=en))


class ApiFailure(Exception):
    """A refusal on its way to the client: HTTP status, error type, details."""

    def __init__(self, status: int, type_: str, details: list[tuple[Rule, dict[str, Any]]],
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(type_)
        self.status = status
        self.type = type_
        self.details = details
        self.headers = headers or {}

    def body(self, lang: str) -> dict[str, Any]:
        return error_body(self.type, self.details, lang)


def fail(http_status: int, error_type: str, which: Rule, /, **params: Any) -> ApiFailure:
    return ApiFailure(http_status, error_type, [(which, params)])


def error_body(type_: str, details: list[tuple[Rule, dict[str, Any]]], lang: str) -> dict[str, Any]:
    return {
        "object": "error",
        "type": type_,
        "log_id": new_log_id(),
        "details": [
            {
                "code": r.code,
                "param": r.param,
                "message": r.text.format(lang, **params),
                "debug_message": r.text.format("en", **params),
            }
            for r, params in details
        ],
    }


# -- identifiers -------------------------------------------------------------
_log_counter = int.from_bytes(os.urandom(3), "big")
_log_lock = threading.Lock()
_log_process = os.urandom(5)


def new_log_id() -> str:
    """24 hex digits laid out like a MongoDB ObjectId (time, process, counter),
    as Conekta's are: unique within the process without any bookkeeping."""
    global _log_counter
    with _log_lock:
        _log_counter = (_log_counter + 1) % (1 << 24)
        counter = _log_counter
    return (int(time.time()).to_bytes(4, "big") + _log_process + counter.to_bytes(3, "big")).hex()


def random_token(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def new_customer_id() -> str:
    return "cus_" + random_token(17)


def new_payout_id() -> str:
    return "payout_" + random_token(17)


def new_reference() -> str:
    """16 digits, no leading zero (a spreadsheet that reads it as a number must
    still show 16 digits, and the client must keep it as text anyway)."""
    return str(secrets.randbelow(9 * 10**15) + 10**15)


def language(header: str | None) -> str:
    """``es`` or ``en`` from an Accept-Language header, honouring q-values; es by default."""
    if not header:
        return DEFAULT_LANG
    best: tuple[float, str] | None = None
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in ("es", "en"):
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and (best is None or q > best[0]):
            best = (q, primary)
    return best[1] if best else DEFAULT_LANG


# -- refusals that are not about a body field --------------------------------
MISSING_KEY = rule(
    "conekta.errors.authentication.missing_key", None,
    "Acceso no autorizado: falta la llave privada de API (autenticación Basic o Bearer).",
    "Unauthorized access: the private API key is missing (Basic or Bearer authentication).",
)
INVALID_KEY = rule(
    "conekta.errors.authentication.invalid_key", None,
    "Acceso no autorizado: la llave de API no es válida.",
    "Unauthorized access: the API key is not valid.",
)
REVOKED_KEY = rule(
    "conekta.errors.authentication.revoked_key", None,
    "Acceso no autorizado: la llave de API fue revocada.",
    "Unauthorized access: the API key has been revoked.",
)
BAD_ACCEPT = rule(
    "conekta.errors.parameter_validation.accept_header.invalid", "Accept",
    "Falta el encabezado Accept con la versión de la API o no es válido; "
    "usa «application/vnd.conekta-v2.0.0+json».",
    "The Accept header with the API version is missing or not valid; "
    "use 'application/vnd.conekta-v2.0.0+json'.",
)
ROUTE_NOT_FOUND = rule(
    "conekta.errors.resource_not_found.route", None,
    "La ruta {method} {path} no existe.",
    "The route {method} {path} does not exist.",
)
OBJECT_NOT_FOUND = rule(
    "conekta.errors.resource_not_found.entity", "id",
    "El recurso {kind} «{id}» no existe.",
    "The {kind} resource '{id}' does not exist.",
)
CUSTOMER_NOT_FOUND = rule(
    "conekta.errors.resource_not_found.customer", "customer_info.customer_id",
    "El cliente «{id}» no existe.",
    "The customer '{id}' does not exist.",
)
MALFORMED_JSON = rule(
    "conekta.errors.parameter_validation.body.malformed_json", None,
    "El cuerpo de la solicitud no es JSON válido.",
    "The request body is not valid JSON.",
)
NOT_AN_OBJECT = rule(
    "conekta.errors.parameter_validation.body.not_an_object", None,
    "El cuerpo de la solicitud debe ser un objeto JSON.",
    "The request body must be a JSON object.",
)
IDEMPOTENCY_REUSED = rule(
    "conekta.errors.idempotency.key_reused", "Idempotency-Key",
    "La llave de idempotencia ya se usó con una solicitud distinta.",
    "The idempotency key was already used with a different request.",
)
IDEMPOTENCY_TOO_LONG = rule(
    "conekta.errors.idempotency.key_too_long", "Idempotency-Key",
    "La llave de idempotencia no puede tener más de 255 caracteres.",
    "The idempotency key cannot be longer than 255 characters.",
)
CANNOT_CANCEL = rule(
    "conekta.errors.precondition_required.payout_order.cannot_cancel", "status",
    "La orden de retiro no se puede cancelar: su estado es «{status}».",
    "The payout order cannot be cancelled: its status is '{status}'.",
)
ALREADY_FINAL = rule(  # the back office (admin routes, `sandbox cash`): a final status never changes
    "sandbox.payout_order.already_final", "status",
    "La orden de retiro {id} ya está «{status}»: no puede pasar a «{wanted}».",
    "The payout order {id} is already '{status}': it cannot become '{wanted}'.",
)
NOT_PROCESSABLE = rule(  # what public mocks answer to a GET of an unknown id (fault unknown_order_get_402)
    "conekta.errors.processing.request.not_processable", None,
    "La solicitud no se pudo procesar.",
    "The request could not be processed.",
)
INSUFFICIENT_FUNDS = rule(
    "conekta.errors.processing.balance.insufficient_funds", "amount",
    "Saldo insuficiente para crear la orden de retiro.",
    "Insufficient balance to create the payout order.",
)
LIST_LIMIT = rule(
    "conekta.errors.parameter_validation.limit.invalid", "limit",
    "El parámetro limit debe ser un entero entre 1 y 250.",
    "The limit parameter must be an integer between 1 and 250.",
)
LIST_CURSOR = rule(
    "conekta.errors.parameter_validation.{which}.invalid", None,
    "El cursor de paginación no corresponde a ningún objeto.",
    "The pagination cursor does not match any object.",
)
SERVER_ERROR = rule(
    "conekta.errors.api.system.general_failure", None,
    "Hubo un error interno; intenta de nuevo más tarde.",
    "There was an internal error; please try again later.",
)
IN_PROGRESS = rule(
    "conekta.errors.conflict.idempotency.in_progress", "Idempotency-Key",
    "Una solicitud con la misma llave de idempotencia todavía se está procesando; consulta el resultado más tarde.",
    "A request with the same idempotency key is still being processed; check the result later.",
)
THROTTLED = rule(
    "conekta.errors.rate_limit.too_many_requests", None,
    "Demasiadas solicitudes; espera {seconds} s antes de reintentar.",
    "Too many requests; wait {seconds} s before retrying.",
)


def cursor_rule(which: str) -> Rule:
    return Rule(LIST_CURSOR.code.format(which=which), which, LIST_CURSOR.text)


# -- body validation ------------------------------------------------------------
def _missing(param: str) -> Rule:
    return rule(f"conekta.errors.parameter_validation.{param}.missing", param,
                f"El parámetro {param} es obligatorio.", f"The parameter {param} is required.")


def _invalid(param: str, es: str, en: str) -> Rule:
    return rule(f"conekta.errors.parameter_validation.{param}.invalid", param, es, en)


CUSTOMER_NAME = _invalid("name", "El nombre debe ser un texto no vacío.", "The name must be a non-empty string.")
CUSTOMER_EMAIL = _invalid("email", "El correo «{value}» no es una dirección válida.",
                          "The email '{value}' is not a valid address.")
CUSTOMER_PHONE = _invalid("phone", "El teléfono debe ser un texto.", "The phone must be a string.")
CURRENCY = _invalid("currency", "La moneda debe ser un código ISO 4217 de 3 letras mayúsculas (p. ej. MXN).",
                    "The currency must be a 3-letter uppercase ISO 4217 code (e.g. MXN).")
AMOUNT_TYPE = _invalid("amount", "El monto debe ser un entero mayor que 0, en centavos.",
                       "The amount must be an integer greater than 0, in cents.")
AMOUNT_CENTS = rule("conekta.errors.parameter_validation.amount.not_whole_pesos", "amount",
                    "El monto {value} debe terminar en 00 (pesos completos para retiro en efectivo).",
                    "The amount {value} must end in 00 (whole pesos for a cash withdrawal).")
CUSTOMER_INFO = _invalid("customer_info", "customer_info debe ser un objeto con customer_id.",
                         "customer_info must be an object with customer_id.")
CUSTOMER_ID = _invalid("customer_info.customer_id", "customer_info.customer_id debe ser un texto.",
                       "customer_info.customer_id must be a string.")
PAYOUT_METHODS = _invalid("allowed_payout_methods", "allowed_payout_methods debe ser [\"cashout\"].",
                          "allowed_payout_methods must be [\"cashout\"].")
PAYOUT_TYPE = _invalid("payout.payout_method.type", "payout.payout_method.type debe ser «cashout».",
                       "payout.payout_method.type must be 'cashout'.")
REASON = _invalid("reason", f"El motivo debe ser un texto de 1 a {REASON_MAX} caracteres.",
                  f"The reason must be a string of 1 to {REASON_MAX} characters.")
METADATA = _invalid("metadata", f"metadata debe ser un objeto con a lo más {METADATA_MAX_KEYS} llaves.",
                    f"metadata must be an object with at most {METADATA_MAX_KEYS} keys.")
EXPIRES_AT = _invalid("expires_at", "expires_at debe ser un entero (segundos Unix) en el futuro.",
                      "expires_at must be an integer (Unix seconds) in the future.")

Problems = list[tuple[Rule, dict[str, Any]]]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _absent(body: dict[str, Any], name: str) -> bool:
    return body.get(name) is None


def check_customer(body: dict[str, Any]) -> Problems:
    problems: Problems = []
    if _absent(body, "name"):
        problems.append((_missing("name"), {}))
    elif not isinstance(body["name"], str) or not body["name"].strip():
        problems.append((CUSTOMER_NAME, {}))
    if _absent(body, "email"):
        problems.append((_missing("email"), {}))
    elif not isinstance(body["email"], str) or not _EMAIL.match(body["email"].strip()):
        problems.append((CUSTOMER_EMAIL, {"value": body["email"]}))
    if not _absent(body, "phone") and not isinstance(body["phone"], str):
        problems.append((CUSTOMER_PHONE, {}))
    return problems


def check_payout_order(body: dict[str, Any], now: int) -> Problems:
    problems: Problems = []
    if _absent(body, "currency"):
        problems.append((_missing("currency"), {}))
    elif not isinstance(body["currency"], str) or not _CURRENCY.match(body["currency"]):
        problems.append((CURRENCY, {}))
    amount = body.get("amount")
    if amount is None:
        problems.append((_missing("amount"), {}))
    elif not _is_int(amount) or amount <= 0:
        problems.append((AMOUNT_TYPE, {}))
    elif amount % 100:
        problems.append((AMOUNT_CENTS, {"value": amount}))
    info = body.get("customer_info")
    if info is None:
        problems.append((_missing("customer_info.customer_id"), {}))
    elif not isinstance(info, dict):
        problems.append((CUSTOMER_INFO, {}))
    elif info.get("customer_id") is None:
        problems.append((_missing("customer_info.customer_id"), {}))
    elif not isinstance(info["customer_id"], str) or not info["customer_id"]:
        problems.append((CUSTOMER_ID, {}))
    if _absent(body, "allowed_payout_methods"):
        problems.append((_missing("allowed_payout_methods"), {}))
    elif body["allowed_payout_methods"] != ["cashout"]:
        problems.append((PAYOUT_METHODS, {}))
    payout = body.get("payout")
    method = payout.get("payout_method") if isinstance(payout, dict) else None
    kind = method.get("type") if isinstance(method, dict) else None
    if payout is None:
        problems.append((_missing("payout.payout_method.type"), {}))
    elif kind != "cashout":
        problems.append((PAYOUT_TYPE, {}))
    if _absent(body, "reason"):
        problems.append((_missing("reason"), {}))
    elif not isinstance(body["reason"], str) or not 1 <= len(body["reason"]) <= REASON_MAX:
        problems.append((REASON, {}))
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or len(metadata) > METADATA_MAX_KEYS):
        problems.append((METADATA, {}))
    expires_at = body.get("expires_at")
    if expires_at is not None and (not _is_int(expires_at) or expires_at <= now):
        problems.append((EXPIRES_AT, {}))
    return problems
