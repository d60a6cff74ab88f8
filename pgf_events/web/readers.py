"""What the worklist, patient list and patient page show, read as the viewer (run through
:meth:`pgf_events.web.core.Page.run`: the application's site scope is the viewer's).

Now: from the read models where they exist; with time travel (``as_of``, ``cutoff``): as ``pgf
status`` and ``pgf report`` derive it from the log, once per (log head, as-of, cut-off) for every page
(:func:`pgf_events.projections.travel.cohort_at`), the patients whose streams were whole by then
read from the read models.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from pgf_events.domain import values as vo
from pgf_events.domain.review import Review
from pgf_events.domain.rules import sdv
from pgf_events.gc_tuning import fewer_collections
from pgf_events.monitoring import query_row
from pgf_events.projections.cohort import build_report, scope_note
from pgf_events.projections.history import describe, history_rows
from pgf_events.projections.patients import SOURCES, patient_list
from pgf_events.projections.queries import cohort_report, patient_status
from pgf_events.projections.review import review_events
from pgf_events.projections.sections import SECTIONS
from pgf_events.projections.snapshot import Snapshot, snapshot_of
from pgf_events.projections.store import ProjectionStore
from pgf_events.projections.travel import cohort_at, known_at
from pgf_events.projections.worklist import end_of, items_of, sort_items
from pgf_events.projections.worklist_model import model_of
from pgf_events.web.core import TimeTravel
from pgf_events.web.figures.course import Course

FAR = datetime.max.replace(tzinfo=UTC)


def _day(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value if isinstance(value, date) else None


def review_as_of(app: Any, subject: str, as_of: datetime | None) -> Review | None:
    events = [e for e in review_events(app, subject) if as_of is None or e.timestamp <= as_of]
    review: Any = None
    for event in events:
        review = event.mutate(review)
    return review  # type: ignore[no-any-return]


def patients(app: Any, store: ProjectionStore | None, when: TimeTravel, sites: Iterable[str] = (),
             statuses: Iterable[str] = ()) -> list[dict[str, Any]]:
    """``pgf patients`` rows the viewer may see, with each patient's open queries."""
    if when.active or store is None:
        cohort = cohort_at(app, when.as_of, when.cutoff, store)  # every site's patients: filtered below
        kept = _REPORT_ROWS.get(snapshot_of(store)) or {} if store is not None else {}
        by_name = {name: [_report_row(kept, name, s) for s in cohort.slices[name]] for name in SOURCES}
    else:
        store.catch_up(SOURCES)
        snapshot = snapshot_of(store)  # the rows kept in memory, refreshed by what changed
        by_name = {name: report_rows(snapshot, name) for name in SOURCES}
    rows = patient_list(by_name, app.protocol.dose_window_days, sites=list(sites), statuses=list(statuses))
    return [r for r in rows if app.in_scope(r["site"])]


# Each snapshot row's report row, kept while the snapshot keeps that row (a refreshed row is a new object).
_REPORT_ROWS: weakref.WeakKeyDictionary[Snapshot, dict[tuple[str, str], tuple[Any, dict[str, Any]]]] = \
    weakref.WeakKeyDictionary()


def report_rows(snapshot: Snapshot, name: str) -> list[dict[str, Any]]:
    """``SECTIONS[name].row`` of every row of the snapshot, computed again only for rows that changed
    (at 5,000 patients the survival rows' reference lists alone took 0.7 s per look)."""
    kept = _REPORT_ROWS.setdefault(snapshot, {})
    out = []
    with fewer_collections():  # a first look makes every patient's report row: no cycle scans meanwhile
        for data in snapshot.rows(name):
            key = (name, data["subject"])
            hit = kept.get(key)
            if hit is None or hit[0] is not data:
                hit = kept[key] = (data, SECTIONS[name].row(data))
            out.append(hit[1])
    return out


def _report_row(kept: dict[tuple[str, str], tuple[Any, dict[str, Any]]], name: str,
                data: dict[str, Any]) -> dict[str, Any]:
    """``SECTIONS[name].row(data)``, the one kept for that snapshot row if ``data`` is it (time travel
    reads the rows of the patients whose streams were whole by then from the snapshot)."""
    hit = kept.get((name, data["subject"]))
    return hit[1] if hit is not None and hit[0] is data else SECTIONS[name].row(data)  # type: ignore[no-any-return]


def planning_day(when: TimeTravel, now: datetime) -> tuple[date, datetime]:
    """The day the worklist plans for and the moment it is judged at: the cut-off's end, the as-of
    time's day, or now."""
    if when.cutoff is not None:
        day = when.cutoff
        at = end_of(day) if when.as_of is None else min(end_of(day), when.as_of)
        return day, at
    if when.as_of is not None:
        return when.as_of.date(), when.as_of
    return now.date(), now


def worklist_items(app: Any, when: TimeTravel, store: ProjectionStore | None = None) -> tuple[date, list[dict[str, Any]]]:
    """``pgf due`` for every patient the viewer may see, as the store knew it ``as_of``: now, from the
    worklist read model when the session has read models; with time travel, from the streams."""
    day, at = planning_day(when, app.clock())
    if not when.active and store is not None:
        model = model_of(store)
        if model.available():
            model.catch_up()
            visible = None if app.site_scope is None else set(app.subjects())
            return day, sort_items(model.items(day, at, visible))
    cohort = known_at(app, when.as_of, store)  # the worklist plans for the cut-off day, from every record
    visible = None if app.site_scope is None else set(app.subjects())
    items: list[dict[str, Any]] = []
    for inputs in cohort.inputs:
        if visible is None or inputs.subject in visible:
            items += items_of(inputs, cohort.queries.get(inputs.subject, []), app.protocol, day, at)
    return day, sort_items(items)


def casebook(app: Any, store: ProjectionStore | None, subject: str, when: TimeTravel) -> dict[str, Any]:
    """Everything the patient page shows: derived status, the course, history, queries, SDV, signatures."""
    doc, patient = patient_status(app, subject, as_of=when.as_of, cutoff=when.cutoff,
                                  store=None if when.active else store)
    events = app.stream(doc["subject"])
    history = history_rows(events, when.as_of)
    for row in history:
        row["text"] = describe(row)
    review = review_as_of(app, doc["subject"], when.as_of)
    now = when.as_of or app.clock()
    queries = [query_row(q, doc["subject"], doc["site"], now) for q in (review.queries.values() if review else ())]
    sdv_rows = sdv.sdv_status(patient, review.verified if review else {}, app.protocol)
    return {"doc": doc, "history": history, "queries": queries, "sdv": {r["ref"]: r for r in sdv_rows},
            "sdv_summary": sdv.summary(sdv_rows), "frozen": review.frozen_note() if review and review.frozen else None,
            "course": course_of(patient, doc, app.protocol), "signatures": doc.get("signatures", [])}


def course_of(patient: Any, doc: dict[str, Any], params: Any) -> Course:
    endpoints = doc.get("endpoints") or {}
    marks = [("neutrophil engraftment", endpoints.get("neutrophil_engraftment_date"), "anc"),
             ("red-cell recovery", endpoints.get("rbc_recovery_date"), "hb"),
             (f"platelet {endpoints.get('platelet_response') or 'response'}", endpoints.get("platelet_response_date"),
              "plt")]
    platelet = endpoints.get("platelet") or {}
    if endpoints.get("platelet_response") == "NR" and platelet.get("date"):
        marks.append(("platelet NR assessed", platelet["date"], "plt"))
    return Course(
        subject=doc["subject"], transplant=date.fromisoformat(doc["transplant_date"]), d1=_day(endpoints.get("msc_d1")),
        labs=sorted((r.date, r.anc, r.hb, r.plt) for _, r in patient.active(vo.LabPanel)),
        infusions=sorted((r.date, patient.ref(v)) for v, r in patient.active(vo.Infusion)),
        transfusions=sorted((r.date, str(r.product)) for _, r in patient.active(vo.Transfusion)),
        endpoints=[(name, d, panel) for name, value, panel in marks if (d := _day(value)) is not None],
        death=_day(doc.get("death_date")), end=_day(doc.get("evaluation_date")),
        thresholds={"anc": [(params.anc_threshold, f"{params.anc_comparator} {params.anc_threshold:g}")],
                    "hb": [(params.hb_threshold, f"≥ {params.hb_threshold:g}")],
                    "plt": [(params.plt_pr_threshold, f"PR ≥ {params.plt_pr_threshold:g}"),
                            (params.plt_cr_threshold, f"CR ≥ {params.plt_cr_threshold:g}")]})


def cohort(app: Any, store: ProjectionStore | None, name: str, when: TimeTravel) -> dict[str, Any]:
    """``pgf report NAME`` over the patients the viewer may see: a site-scoped grant's report (rows
    and summary) is computed from its sites' patients only."""
    if app.site_scope is None:
        return cohort_report(app, name, as_of=when.as_of, cutoff=when.cutoff, store=None if when.active else store)
    visible = set(app.subjects())
    if not when.active and store is not None:
        store.catch_up([name])
        slices = [s for s in store.rows(name) if s["subject"] in visible]
    else:
        slices = [s for s in cohort_at(app, when.as_of, when.cutoff, store).slices[name] if s["subject"] in visible]
    return {**build_report(name, slices, app.protocol, as_of=when.as_of, cutoff=when.cutoff),
            **scope_note(app.site_scope)}  # says which sites the report covers
