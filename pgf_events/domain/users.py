"""Users and roles, kept as events in their own aggregate (one directory per store).

Roles: coordinator and investigator record; only investigators sign; monitors and auditors read;
monitors also raise and close queries and verify against source; data managers raise and close
queries, freeze patients and lock the database; admins manage users (and unlock). A store with no directory yet is open (as a file anyone can open is); the
first grant must make someone an admin, and from then on every command is checked.
"""

from __future__ import annotations

import attrs
from eventsourcing.domain import Aggregate

from pgf_events.domain.errors import RuleViolation, ValidationError
from pgf_events.domain.parsing import parse_text
from pgf_events.domain.roles import DIRECTORY_ID, PERMISSIONS, ROLES, SCOPED, UNSCOPED

# The roles and what each kind of command needs live in domain.roles (checked on every command,
# without loading this aggregate); re-exported here.
__all__ = ["DIRECTORY_ID", "PERMISSIONS", "ROLES", "SCOPED", "UNSCOPED", "UserDirectory"]


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
        sites: list[str] | None = None  # None (and grants stored before sites existed): every site

        def apply(self, directory: UserDirectory) -> None:
            directory.roles.setdefault(self.user, set()).add(self.role)
            directory.sites.setdefault(self.user, {})[self.role] = frozenset(self.sites) if self.sites else None

    class RoleRevoked(Event):
        user: str
        role: str
        revoked_by: str
        reason: str | None

        def apply(self, directory: UserDirectory) -> None:
            directory.roles[self.user].discard(self.role)
            directory.sites.get(self.user, {}).pop(self.role, None)

    class KeyRegistered(Event):
        """A user's Ed25519 public key (PEM), registered by its owner or by an admin for them (version 2
        records who); usable once an admin other than the owner approves it."""

        class_version = 2
        user: str
        key_id: str
        public_key: str
        reason: str | None
        registered_by: str
        upcast_v1_v2 = staticmethod(lambda state: state.setdefault("registered_by", state["user"]))

        def apply(self, directory: UserDirectory) -> None:
            directory.keys[self.key_id] = SigningKey(self.user, self.key_id, self.public_key)

    class KeyApproved(Event):
        key_id: str
        approved_by: str
        reason: str | None

        def apply(self, directory: UserDirectory) -> None:
            directory.keys[self.key_id].approved_by = self.approved_by

    class KeyRevoked(Event):
        key_id: str
        revoked_by: str
        reason: str | None

        def apply(self, directory: UserDirectory) -> None:
            directory.keys[self.key_id].revoked_by = self.revoked_by

    def __init__(self, opened_by: str):
        self.opened_by = opened_by
        self.roles: dict[str, set[str]] = {}
        self.keys: dict[str, SigningKey] = {}
        self.sites: dict[str, dict[str, frozenset[str] | None]] = {}  # user -> role -> sites (None: all)

    @classmethod
    def open(cls, opened_by: str) -> UserDirectory:
        return cls._create(cls.Opened, id=DIRECTORY_ID, opened_by=opened_by)

    def grant(self, user: str, role: str, by: str, reason: str | None = None,
              sites: list[str] | None = None) -> None:
        user, role = _user(user), _role(role)
        sites = sorted({parse_text(s, "site", 64).upper() for s in sites}) if sites else None
        if sites and role in UNSCOPED:
            raise ValidationError(f"the {role} role reads every site; --site applies to {', '.join(SCOPED)}")
        if not any(self.roles.values()) and role != "admin":
            raise RuleViolation("the first grant must make someone an admin (it switches access control on)")
        if role in self.roles.get(user, set()):
            raise RuleViolation(f"{user} already has the {role} role")
        self.trigger_event(self.RoleGranted, user=user, role=role, granted_by=by, reason=reason, sites=sites)

    def revoke(self, user: str, role: str, by: str, reason: str | None = None) -> None:
        user, role = _user(user), _role(role)
        if role not in self.roles.get(user, set()):
            raise RuleViolation(f"{user} does not have the {role} role")
        if role == "admin" and sum("admin" in r for r in self.roles.values()) == 1:
            raise RuleViolation(f"{user} is the last admin; grant another admin first")
        self.trigger_event(self.RoleRevoked, user=user, role=role, revoked_by=by, reason=reason)

    def register_key(self, user: str, key_id: str, public_key: str, reason: str | None = None, *,
                     by: str | None = None) -> None:
        """Register ``user``'s public key: by ``user`` themselves, or by an admin who received it from them
        (on PostgreSQL with roles on only admins write the directory)."""
        user, by = _user(user), _user(by or user)
        if by != user and self.controlled and "admin" not in self.roles_of(by):
            raise RuleViolation(f"{by} may register only their own key; an admin registers a key for {user}")
        if key_id in self.keys:
            owner = self.keys[key_id].user
            raise RuleViolation(f"key {key_id} is already registered (to {owner})")
        self.trigger_event(self.KeyRegistered, user=user, key_id=key_id, public_key=public_key, reason=reason,
                           registered_by=by)

    def approve_key(self, key_id: str, by: str, reason: str | None = None) -> None:
        key = self._key(key_id)
        if key.revoked_by:
            raise RuleViolation(f"key {key_id} of {key.user} was revoked by {key.revoked_by}")
        if key.approved_by:
            raise RuleViolation(f"key {key_id} of {key.user} is already approved (by {key.approved_by})")
        if by == key.user:
            raise RuleViolation(f"{by} cannot approve their own key: another admin must approve it")
        self.trigger_event(self.KeyApproved, key_id=key_id, approved_by=by, reason=reason)

    def revoke_key(self, key_id: str, by: str, reason: str | None = None) -> None:
        key = self._key(key_id)
        if key.revoked_by:
            raise RuleViolation(f"key {key_id} of {key.user} is already revoked")
        self.trigger_event(self.KeyRevoked, key_id=key_id, revoked_by=by, reason=reason)

    def _key(self, key_id: str) -> SigningKey:
        if key_id not in self.keys:
            raise RuleViolation(f"key {key_id} is not registered in this store's user directory")
        return self.keys[key_id]

    def signing_key(self, key_id: str, user: str) -> SigningKey:
        """The registered, approved, unrevoked key ``key_id`` of ``user``; RuleViolation naming what is wrong."""
        key = self._key(key_id)
        if key.user != user:
            raise RuleViolation(f"key {key_id} belongs to {key.user}, not to {user}: sign with your own key")
        if key.revoked_by:
            raise RuleViolation(f"key {key_id} of {user} was revoked by {key.revoked_by}")
        if not key.approved_by:
            raise RuleViolation(f"key {key_id} of {user} is registered but not yet approved by an admin "
                                f"(pgf keys approve {user} {key_id})")
        return key

    def sites_of(self, user: str, roles: set[str] | None = None) -> frozenset[str] | None:
        """The sites ``user`` may act on, or None for every site: an auditor or admin, or any role
        granted without --site, reaches every site; otherwise the union of the grants' sites."""
        held = self.roles_of(user) if roles is None else roles
        if not held or held & set(UNSCOPED):
            return None
        scopes = [self.sites.get(user, {}).get(role) for role in held]
        if any(scope is None for scope in scopes):
            return None
        return frozenset().union(*[s for s in scopes if s is not None])

    def roles_of(self, user: str) -> set[str]:
        return set(self.roles.get(user, set()))

    @property
    def controlled(self) -> bool:
        return any(self.roles.values())


@attrs.define
class SigningKey:
    """A user's registered public key; usable for signing once approved and while not revoked."""

    user: str
    key_id: str
    public_key: str  # PEM
    approved_by: str | None = None
    revoked_by: str | None = None

    @property
    def usable(self) -> bool:
        return bool(self.approved_by) and not self.revoked_by


def _user(user: str) -> str:
    return parse_text(user, "user", 64)


def _role(role: str) -> str:
    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    return role
