"""Site scope of the acting user (application layer, mixed into :class:`TrialConduct`; issue 15).

A grant with ``--site`` limits a coordinator, investigator, monitor or data manager to those sites'
patients: :meth:`TrialConduct.authorise` sets ``site_scope``, every read and write of a patient checks
it here, and listings filter with :meth:`in_scope`. On PostgreSQL the database enforces the same by
row-level security (:mod:`pgf_events.audit.pg_sites`): this mixin tells it each new patient's site
(:meth:`site_claims`) and names the site of a patient the login cannot read (:meth:`check_hidden`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pgf_events.domain.errors import AccessDenied

if TYPE_CHECKING:
    from uuid import UUID

    from pgf_events.domain.users import UserDirectory
    from pgf_events.store import StoreConfig


class SiteScope:
    site_scope: frozenset[str] | None
    scoped_user: str
    store: StoreConfig
    recorder: Any

    if TYPE_CHECKING:
        def _roles_held(self, user: str) -> set[str] | None: ...
        def directory(self) -> UserDirectory | None: ...
        def patient_id(self, subject: str) -> UUID: ...

    def scope_of(self, user: str, held: set[str] | None = None) -> frozenset[str] | None:
        """The sites ``user``'s grants cover, or None for every site (see ``UserDirectory.sites_of``)."""
        held = self._roles_held(user) if held is None else held
        directory = self.directory()
        if held is None or directory is None:
            return None
        return directory.sites_of(user, held)

    def check_hidden(self, subject: str) -> None:
        """A patient this login cannot read at all: on PostgreSQL with the site scope, row-level
        security hides other sites' patients; the refusal still names the site (``pgf_site_of``)."""
        if self.site_scope is None or self.store.backend != "postgresql":
            return
        if not self.recorder.meta.get("site_scope"):  # type: ignore[attr-defined]
            return
        from psycopg.sql import SQL, Identifier  # noqa: PLC0415

        with self.recorder.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            c.execute(SQL("SELECT {0}.pgf_site_of(%s) AS site").format(Identifier(self.store.schema or "public")),
                      (self.patient_id(subject),))
            site = c.fetchone()["site"]
        if site is not None:
            self.check_site(subject, site)

    @contextmanager
    def site_claims(self, events: Iterable[Any]) -> Iterator[None]:
        """While saving ``events``, tell a PostgreSQL store each new patient's site (the database stamps
        and checks it; it reads it from the payload itself unless the store is encrypted:
        :mod:`pgf_events.audit.pg_sites`)."""
        sites = getattr(self.recorder, "stream_sites", None)
        if sites is None:
            yield
            return
        from pgf_events.domain.patient import Patient  # noqa: PLC0415 - PostgreSQL writers only

        for event in events:
            if isinstance(event, Patient.Registered):
                sites[str(event.originator_id)] = str(event.record.site).upper()
        try:
            yield
        finally:
            sites.clear()

    def check_site(self, subject: str, site: str) -> None:
        """Refuse a patient outside the acting user's site-scoped grants (``pgf users grant --site``)."""
        if self.site_scope is not None and str(site).upper() not in self.site_scope:
            raise AccessDenied(f"{self.scoped_user} may act only on patients of site "
                               f"{', '.join(sorted(self.site_scope))}; {subject} is at site {site}")

    def in_scope(self, site: Any) -> bool:
        """Whether a patient of ``site`` is visible to the acting user (listings filter with this)."""
        return self.site_scope is None or str(site).upper() in self.site_scope
