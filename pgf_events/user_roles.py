"""Use cases of users and roles (application layer, mixed into :class:`TrialConduct`): who is acting,
what their roles allow, and granting or revoking a role (``self`` is the application).

Who acts is never taken from the user: on PostgreSQL it is the database login (``session_user``), on
an embedded store the operating-system account (:mod:`pgf_events.identity`). The roles are the
database's own on PostgreSQL (:mod:`pgf_events.audit.dbroles`), the user directory's elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from pgf_events.domain.errors import AccessDenied
from pgf_events.domain.roles import DIRECTORY_ID, PERMISSIONS
from pgf_events.guards import project
from pgf_events.retry import retry

if TYPE_CHECKING:
    from pgf_events.domain.users import UserDirectory


class UserRoles:
    """Methods of :class:`TrialConduct` for users and roles."""

    _session_user: str | None  # the PostgreSQL login, asked once (set to None by the application)

    def directory(self: Any) -> UserDirectory | None:
        try:
            return self.repository.get(DIRECTORY_ID, projector_func=project)
        except AggregateNotFoundError:
            return None

    def session_user(self: Any) -> str | None:
        """On PostgreSQL, the login the server authenticated (``session_user``); None on embedded stores."""
        if self.store.backend != "postgresql":
            return None
        if self._session_user is None:
            with self.recorder.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
                c.execute("SELECT session_user AS login")
                self._session_user = str(c.fetchone()["login"])
        return self._session_user

    def acting_user(self: Any, requested: str | None = None) -> str:
        """Who is acting (see :mod:`pgf_events.identity`); ``requested`` (--user) may only restate it."""
        from pgf_events import identity  # noqa: PLC0415

        login = self.session_user()
        if login is not None:
            actual, how = login, "your PostgreSQL login"
        else:
            actual, how = identity.local_account(), "your operating-system account"
        identity.check_restated(requested, actual, how)
        return actual

    def authorise(self: Any, user: str, need: str, *, scope: bool = True) -> None:
        """Raise AccessDenied unless ``user`` holds a role that ``need`` allows (open stores allow all).

        ``user`` is the authenticated identity (:meth:`acting_user`). On PostgreSQL the roles are the
        database's own (see :mod:`pgf_events.audit.dbroles`), which it also enforces by itself. With
        ``scope`` (a process acting as ``user``), ``site_scope`` becomes the user's sites; a server
        answering many users passes ``scope=False`` and asks :meth:`scope_of` per request.
        """
        allowed = PERMISSIONS[need]
        held = self._roles_held(user)
        if held is None:
            return
        if not held & allowed:
            names = ", ".join(sorted(held)) or "no role"
            raise AccessDenied(
                f"{user} ({names}) may not do this: it needs the {' or '.join(sorted(allowed))} role"
            )
        if scope:
            self.site_scope, self.scoped_user = self.scope_of(user, held), user

    def _roles_held(self: Any, user: str) -> set[str] | None:
        """The pgf roles ``user`` holds, or None while the store is open (no admin granted yet)."""
        if self.store.backend == "postgresql":
            from pgf_events.audit import dbroles  # noqa: PLC0415

            return dbroles.roles_held(self, user)
        directory = self.directory()
        if directory is None or not directory.controlled:
            return None
        return directory.roles_of(user)

    def _check_actor(self: Any, user: Any) -> str:
        """The name stamped on new events; on PostgreSQL it must be the database login (which the
        database stamps beside every event anyway)."""
        from pgf_events.commands import check_user  # noqa: PLC0415 - writers only: commands loads the patient domain

        user = check_user(user)
        login = self.session_user()
        if login is not None and user != login:
            raise AccessDenied(f"{user!r} is not the database login {login!r}: on PostgreSQL you act as your login")
        return user

    def change_role(self: Any, action: str, user: str, role: str, *, by: str, reason: str | None = None,
                    sites: list[str] | None = None) -> None:
        by = self._check_actor(by)
        from pgf_events import topics  # noqa: F401, PLC0415 - stored names registered before the directory is made
        from pgf_events.domain.users import UserDirectory  # noqa: PLC0415

        def attempt() -> None:
            directory = self.directory() or UserDirectory.open(by)
            if action == "grant":
                directory.grant(user, role, by, reason, sites)
            else:
                directory.revoke(user, role, by, reason)
            if self.store.backend == "postgresql":  # the GRANT goes in the transaction that records it
                from pgf_events.audit.dbroles import set_role_statement  # noqa: PLC0415

                granted = directory.sites.get(user, {}).get(role) if action == "grant" else None
                self.recorder.after_insert = [  # type: ignore[attr-defined]
                    set_role_statement(self, user, role, action == "grant", sorted(granted) if granted else None)]
            try:
                self.save(directory)
            finally:
                if self.store.backend == "postgresql":
                    self.recorder.after_insert = []  # type: ignore[attr-defined]

        retry(attempt, on=(IntegrityError,), failure=lambda e: "could not save the role change; try again")
