"""Which role may use which route: one table, checked before every signed-in page (``Pages.guard``).

Reading (every GET) is every role's.  A POST not named here needs a role that may change
something (``change``): so an auditor is refused every state-changing route, including ones
added later, with 403 and a line in the team's event trail.
"""

from __future__ import annotations

import re

POST_ACTIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"/upload"), "upload"),
    (re.compile(r"/uploads/[^/]+/(sheet|submit)"), "upload"),
    (re.compile(r"/uploads/[^/]+/confirm"), "pay"),
    (re.compile(r"/batches/[^/]+/refresh"), "operate"),
    (re.compile(r"/batches/[^/]+/cancel"), "cancel"),
    (re.compile(r"/approvals/[^/]+/(approve|reject)"), "approve"),
    (re.compile(r"/account(/[a-z-]+)?"), "read"),  # one's own second factor
    (re.compile(r"/admin(/.*)?"), "admin"),  # users and the policy
]


# Pages only some roles may even read.
GET_ACTIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"/admin(/.*)?"), "admin"),
]
# What an approver or admin without a second factor may still reach: enrolling it, and leaving.
ENROLMENT = re.compile(r"/account(/totp)?|/logout")


def action_of(method: str, path: str) -> str:
    if method in ("GET", "HEAD"):
        return next((action for pattern, action in GET_ACTIONS if pattern.fullmatch(path)), "read")
    return next((action for pattern, action in POST_ACTIONS if pattern.fullmatch(path)), "change")
