"""Users and roles, kept as events in their own aggregate (one directory per store).

Roles: coordinator and investigator record; only investigators sign; monitors and auditors read;
monitors also raise and close queries and verify against source; data managers raise and close
queries, freeze patients and lock the database; admins manage users (and unlock). A store with no directory yet is open (as a file anyone can open is); the
first grant must make someone an admin, and from then on every command is checked.
"""

from __future__ import annotations

from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from pgf_events.domain.errors import RuleViolation, ValidationError
from pgf_events.domain.parsing import parse_text

ROLES = ("coordinator", "investigator", "monitor", "data-manager", "auditor", "admin")
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
    "directory": frozenset({"admin", "auditor"}),
}

# Every command that opens a store, by command path (longest prefix wins). A command missing here
# cannot open a store at all: tests walk the whole CLI to make sure none is forgotten.
COMMAND_NEEDS: dict[str, str] = {
    "record": "record", "correct": "record", "void": "record", "import": "record", "demo": "record",
    "sign": "sign",
    "history": "read", "status": "read", "report": "read", "export": "read", "audit": "read",
    "follow": "read", "serve": "read", "projections": "read",
    "users list": "directory", "users grant": "admin", "users revoke": "admin", "backup": "admin",
    "db": "admin",
    "query open": "query-open", "query answer": "query-answer", "query close": "query-close",
    "query reopen": "query-close", "queries": "read", "sdv": "sdv", "freeze": "freeze", "unfreeze": "freeze",
    "lock": "lock", "unlock": "admin", "due": "read",
}
# Commands that never open a store, so need no role.
NO_STORE = frozenset({"keygen"})


def need_of(command_path: str) -> str:
    words = command_path.split()[1:]  # drop the program name
    for n in range(len(words), 0, -1):
        key = " ".join(words[:n])
        if key in COMMAND_NEEDS:
            return COMMAND_NEEDS[key]
    raise KeyError(f"command {' '.join(words)!r} has no permission class in COMMAND_NEEDS")


class UserDirectory(Aggregate):
    class Event(Aggregate.Event):  # see Patient.Event
        pass

    class Opened(Event, Aggregate.Created):
        opened_by: str

    class RoleGranted(Event):
        user: str
        role: str
        granted_by: str
        reason: str | None

        def apply(self, directory: UserDirectory) -> None:
            directory.roles.setdefault(self.user, set()).add(self.role)

    class RoleRevoked(Event):
        user: str
        role: str
        revoked_by: str
        reason: str | None

        def apply(self, directory: UserDirectory) -> None:
            directory.roles[self.user].discard(self.role)

    def __init__(self, opened_by: str):
        self.opened_by = opened_by
        self.roles: dict[str, set[str]] = {}

    @classmethod
    def open(cls, opened_by: str) -> UserDirectory:
        return cls._create(cls.Opened, id=DIRECTORY_ID, opened_by=opened_by)

    def grant(self, user: str, role: str, by: str, reason: str | None = None) -> None:
        user, role = _user(user), _role(role)
        if not any(self.roles.values()) and role != "admin":
            raise RuleViolation("the first grant must make someone an admin (it switches access control on)")
        if role in self.roles.get(user, set()):
            raise RuleViolation(f"{user} already has the {role} role")
        self.trigger_event(self.RoleGranted, user=user, role=role, granted_by=by, reason=reason)

    def revoke(self, user: str, role: str, by: str, reason: str | None = None) -> None:
        user, role = _user(user), _role(role)
        if role not in self.roles.get(user, set()):
            raise RuleViolation(f"{user} does not have the {role} role")
        if role == "admin" and sum("admin" in r for r in self.roles.values()) == 1:
            raise RuleViolation(f"{user} is the last admin; grant another admin first")
        self.trigger_event(self.RoleRevoked, user=user, role=role, revoked_by=by, reason=reason)

    def roles_of(self, user: str) -> set[str]:
        return set(self.roles.get(user, set()))

    @property
    def controlled(self) -> bool:
        return any(self.roles.values())


def _user(user: str) -> str:
    return parse_text(user, "user", 64)


def _role(role: str) -> str:
    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    return role
