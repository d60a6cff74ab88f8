"""Finishing a PostgreSQL store that was created just now, as its owner.

The store's owner creates the read-model tables (and the read-model checks table) with the store,
then grants access (see :mod:`pgf_events.audit.dbroles`): to PUBLIC while the store is open, to the
roles once an admin was granted. Least-privilege logins cannot CREATE, so this cannot wait for the
first report. It lives here, beside the tables it creates, and not in the application, which must
not know its readers: whoever opens a store (the CLI, the change feed) calls :func:`finish_if_created`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgf_events.audit.dbroles import controlled
from pgf_events.projections.store import ProjectionStore
from pgf_events.projections.tables import audit_metadata, trail_metadata, worklist_metadata
from pgf_events.projections.verify import checks_metadata

if TYPE_CHECKING:
    from pgf_events.application import TrialConduct


def finish_store(app: TrialConduct) -> None:
    """Create the read-model tables and grant access (PostgreSQL only; the store's owner runs it)."""
    projections = ProjectionStore(app)
    try:
        projections.setup()
        checks_metadata.create_all(projections.engine)
        worklist_metadata.create_all(projections.engine)
        audit_metadata.create_all(projections.engine)
        trail_metadata.create_all(projections.engine)
    finally:
        projections.close()
    app.recorder.grant_all(open_store=not controlled(app))  # type: ignore[attr-defined]
    app.created_now = False


def grant_read_models(app: TrialConduct) -> None:
    """Re-issue the store's privileges after its owner made a read-model table (a declared cut-off's,
    :mod:`.cutoff_rows`), so that every role reads and keeps it as it does the others (PostgreSQL only)."""
    if hasattr(app.recorder, "grant_all"):
        app.recorder.grant_all(open_store=not controlled(app))


def finish_if_created(app: TrialConduct) -> TrialConduct:
    """Finish the store if opening it just created it; return the application either way."""
    if getattr(app, "created_now", False):
        finish_store(app)
    return app
