"""``/``: the cohort dashboard (issue 17 item 2): CONSORT flow, enrolment, endpoint rates with their
95% CIs, Kaplan–Meier OS/DFS, cumulative incidences, the dosing swimmer plot and the safety summary,
for the viewer's sites, now or as the time-travel controls say (``?as_of=``, ``?cutoff=``).

Now: the rows the read models hold (caught up first), kept in memory and refreshed by what changed
(:class:`~pgf_events.projections.snapshot.Snapshot`). Time travel: every patient derived from the
log as of then, once per (log head, as-of, cut-off) for every page (:mod:`pgf_events.projections.travel`). Either way the figures are rendered once per
(log head, as-of, cut-off, sites) and kept: a second look at an unchanged store renders nothing again.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from markupsafe import Markup
from starlette.responses import Response

from pgf_events.gc_tuning import fewer_collections
from pgf_events.projections.snapshot import snapshot_of
from pgf_events.projections.store import ProjectionStore
from pgf_events.projections.travel import cohort_at
from pgf_events.web.cohort_figures import REPORTS, dashboard_figures
from pgf_events.web.core import Page, TimeTravel, Viewer

if TYPE_CHECKING:
    from pgf_events.application import TrialConduct

CACHED = 16  # dashboards kept (each a few hundred kB of SVG)


class FigureCache:
    """The rendered figures per (log head, protocol, as-of, cut-off, sites), least recently used out."""

    def __init__(self, size: int = CACHED) -> None:
        self.size = size
        self._items: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def get(self, key: tuple[Any, ...], make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


CACHE = FigureCache()
# read models per application, for a session that has none of its own
STORES: weakref.WeakKeyDictionary[TrialConduct, ProjectionStore] = weakref.WeakKeyDictionary()


def visible(slices: Mapping[str, Sequence[Mapping[str, Any]]], sees: Callable[[str], bool]) -> dict[str, list[Any]]:
    """Only the patients of the viewer's sites (the site is on the eligibility rows)."""
    mine = {s["subject"] for s in slices["eligibility"] if sees(s["site"])}
    return {name: [s for s in rows if s["subject"] in mine] for name, rows in slices.items()}


def figures(app: TrialConduct, store: ProjectionStore | None, viewer: Viewer, when: TimeTravel,
            patient_href: Callable[[str], str] | None = None) -> dict[str, Any]:
    """The dashboard's figures for ``viewer`` and ``when``: from the cache when the log has not moved."""
    now = not when.active and store is not None
    if now:
        assert store is not None
        store.catch_up(REPORTS)
        head = store.head()
    else:
        head = app.recorder.max_notification_id() or 0
    key = (head, app.protocol.version, when.as_of, when.cutoff, viewer.sites)

    def make() -> dict[str, Any]:
        with fewer_collections():  # a whole cohort's rows are many small objects: no full scans meanwhile
            return _make()

    def _make() -> dict[str, Any]:
        if now:
            assert store is not None
            snapshot = snapshot_of(store)
            slices = {name: snapshot.rows(name) for name in REPORTS}
        else:
            cohort = cohort_at(app, when.as_of, when.cutoff, store)  # derived once for every page at this time travel
            slices = {name: cohort.slices[name] for name in REPORTS}
        figs = dashboard_figures(visible(slices, viewer.sees), app.protocol, as_of=when.as_of, cutoff=when.cutoff,
                                 patient_href=patient_href)
        return {k: Markup(v) if isinstance(v, str) else v for k, v in figs.items()}

    return CACHE.get(key, make)


def read_models(app: TrialConduct, seat_store: ProjectionStore | None) -> ProjectionStore | None:
    """The session's read models, or (a session without its own) one store per application; none
    for a site-scoped login, whom row-level security shows no read-model rows (they mix every
    site's patients): its figures are derived from the events it may read."""
    if seat_store is not None:
        return seat_store
    if app.site_scope is not None:
        return None
    store = STORES.get(app)
    if store is None:
        store = STORES[app] = ProjectionStore(app)
    return store


def _figures(app: TrialConduct, seat_store: ProjectionStore | None, viewer: Viewer, when: TimeTravel,
             patient_href: Callable[[str], str]) -> dict[str, Any]:
    return figures(app, read_models(app, seat_store), viewer, when, patient_href)


async def dashboard(page: Page) -> Response:
    seat_store = getattr(page.seat, "store", None)
    figs = await page.run(_figures, seat_store, page.viewer, page.when, lambda s: page.url(f"/patient/{s}"))
    return page.render("dashboard.html", title="Dashboard", figs=figs, s=figs["summaries"])


PAGES = [("/", dashboard, ("GET",))]
