"""The roles of the user directory and what each kind of command needs (:mod:`pgf_events.domain.users`
keeps the grants). Apart from the aggregate, so that checking a command's role loads no aggregate
that the store does not hold (an open store has no directory at all).
"""

from __future__ import annotations

from uuid import UUID, uuid5

ROLES = ("coordinator", "investigator", "monitor", "data-manager", "auditor", "admin")
UNSCOPED = ("auditor", "admin")  # read everything: never limited to sites
SCOPED = tuple(r for r in ROLES if r not in UNSCOPED)
DIRECTORY_ID = uuid5(UUID("5d0f0c1a-3b2e-4c8e-9f1a-7e6d5c4b3a29"), "pgf-user-directory")

# What each kind of command needs: any one of these roles.
PERMISSIONS: dict[str, frozenset[str]] = {
    "record": frozenset({"coordinator", "investigator"}),
    "sign": frozenset({"investigator"}),
    "read": frozenset({"coordinator", "investigator", "monitor", "data-manager", "auditor"}),
    "admin": frozenset({"admin"}),
    # Monitoring (issue 15): who raises, answers and closes queries, verifies, freezes and locks.
    "query-open": frozenset({"monitor", "investigator", "data-manager"}),
    "query-answer": frozenset({"coordinator", "investigator"}),
    "query-close": frozenset({"monitor", "data-manager"}),
    "sdv": frozenset({"monitor"}),
    "freeze": frozenset({"data-manager"}),
    "lock": frozenset({"data-manager", "admin"}),
    "member": frozenset(ROLES),  # anyone holding a role (registering their own signing key)
    "directory": frozenset({"admin", "auditor"}),
}
