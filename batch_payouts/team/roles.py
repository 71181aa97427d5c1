"""The four roles and what each may do: one table, read by the web routes and the CLI.

``preparer`` uploads, reviews and submits for approval; ``approver`` approves or rejects
what others submitted and cancels references; ``auditor`` reads everything and changes
nothing; ``admin`` manages users and the policy.  A person may hold several roles, but
never approves what they submitted themselves (``approvals``).
"""

from __future__ import annotations

from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

PREPARER, APPROVER, AUDITOR, ADMIN = "preparer", "approver", "auditor", "admin"
ROLES = (PREPARER, APPROVER, AUDITOR, ADMIN)
SECOND_FACTOR_ROLES = frozenset({APPROVER, ADMIN})  # they release money or change who may

# action -> the roles allowed to do it. Reading (pages, downloads) is every role's.
ALLOWED: dict[str, frozenset[str]] = {
    "read": frozenset(ROLES),
    "upload": frozenset({PREPARER}),  # upload, review, choose a sheet, submit for approval
    "pay": frozenset({PREPARER, APPROVER}),  # start a run (only an approved plan, where a policy asks for one)
    "approve": frozenset({APPROVER}),  # approve or reject a submitted batch
    "operate": frozenset({APPROVER, PREPARER}),  # refresh statuses of a batch
    "cancel": frozenset({APPROVER}),  # cancel references
    "admin": frozenset({ADMIN}),  # users and policy
    "change": frozenset({PREPARER, APPROVER, ADMIN}),  # any other state-changing request: never an auditor
}


def parse_roles(text: str) -> tuple[str, ...]:
    """``"preparer, approver"`` -> ``("approver", "preparer")``; an unknown word is refused by name."""
    chosen = {part.strip().lower() for part in str(text or "").split(",") if part.strip()}
    for role in chosen:
        if role not in ROLES:
            raise BatchError(TEXT.UNKNOWN_ROLE, role=role, roles=", ".join(ROLES))
    if not chosen:
        raise BatchError(TEXT.UNKNOWN_ROLE, role="", roles=", ".join(ROLES))
    return tuple(sorted(chosen))


def may(roles: tuple[str, ...] | frozenset[str], action: str) -> bool:
    return bool(set(roles) & ALLOWED[action])


def needs_second_factor(roles: tuple[str, ...] | frozenset[str]) -> bool:
    return bool(set(roles) & SECOND_FACTOR_ROLES)


SEES_EVERYTHING = frozenset({APPROVER, AUDITOR, ADMIN})  # a preparer alone sees only their own batches


def sees_everything(roles: tuple[str, ...] | frozenset[str]) -> bool:
    """Whether these roles see every batch and upload, not only the ones the user submitted (``owners``)."""
    return bool(set(roles) & SEES_EVERYTHING)
