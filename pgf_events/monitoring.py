"""Monitoring use cases on the application: queries, source data verification, freeze and lock.

Each function loads the aggregates it needs, lets them check the rule, and saves their new events
in one transaction (re-running on a concurrent write). Writes to patients go through
:func:`check_writable`, which names the database lock or the patient's freeze that refuses them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import IntegrityError

from pgf_events.commands import normalise_subject, parse_ref
from pgf_events.domain.errors import ConcurrencyError, RuleViolation, ValidationError
from pgf_events.domain.lock import StoreLock
from pgf_events.domain.review import Query, Review, parse_qid
from pgf_events.guards import check_not_frozen, check_not_locked, review_of, store_lock

__all__ = ["check_not_frozen", "check_not_locked", "review_of", "store_lock"]  # re-exported for the CLI

if TYPE_CHECKING:
    from pgf_events.application import TrialConduct

MAX_ATTEMPTS = 8


def _save(app: TrialConduct, work: Callable[[], list[Any]]) -> None:
    """Run ``work`` (which loads aggregates and changes them) and save its result, retrying on conflicts."""
    for attempt in range(MAX_ATTEMPTS):
        check_not_locked(app)
        aggregates = [a for a in work() if a.pending_events]
        try:
            app.save(*aggregates)
            return
        except IntegrityError:
            time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
    raise ConcurrencyError("could not save: others kept writing to the same patient; nothing was written, try again")


def _existing_ref(app: TrialConduct, ref: str) -> tuple[str, int, Any]:
    subject, version = parse_ref(ref)
    patient = app.patient(subject)
    entry = patient._existing(version)  # noqa: SLF001 - raises EventNotFoundError naming the patient
    return subject, version, entry


# ---------------------------------------------------------------------- queries

def open_query(app: TrialConduct, ref: str, text: str, *, user: str, field: str | None = None) -> str:
    subject, version, entry = _existing_ref(app, ref)
    if field is not None:
        field = field.strip().replace("-", "_")
        record = entry.record
        if record is None or not hasattr(record, field):
            raise ValidationError(f"{subject}#{version} ({entry.kind}) has no field {field!r}")
    qid: list[str] = []

    def work() -> list[Any]:
        review = review_of(app, subject)
        assert review is not None
        qid[:] = [review.open_query(f"{subject}#{version}", field, text, user)]
        return [review]

    _save(app, work)
    return qid[0]


def _on_query(app: TrialConduct, qid: str, action: Callable[[Review, str], None]) -> None:
    subject, _ = parse_qid(qid)
    qid = qid.strip().upper()
    if not app.has_patient(subject):
        app.check_hidden(subject)
        raise ValidationError(f"there is no query {qid}")
    # Defence in depth: the callers (CLI, web) check the patient's site too, but a query of another
    # site's patient is refused here whoever calls (AccessDenied from the site scope, nothing written).
    registered = next(iter(app.events.get(app.patient_id(subject), lte=1)))
    app.check_site(subject, registered.record.site)  # type: ignore[attr-defined]

    def work() -> list[Any]:
        review = review_of(app, subject)
        assert review is not None
        action(review, qid)
        return [review]

    _save(app, work)


def answer_query(app: TrialConduct, qid: str, text: str, *, user: str) -> None:
    _on_query(app, qid, lambda r, q: r.answer(q, text, user))


def close_query(app: TrialConduct, qid: str, text: str | None, *, user: str) -> None:
    _on_query(app, qid, lambda r, q: r.close(q, text, user))


def reopen_query(app: TrialConduct, qid: str, text: str, *, user: str) -> None:
    _on_query(app, qid, lambda r, q: r.reopen(q, text, user))


def all_reviews(app: TrialConduct, subjects: Iterable[str] | None = None) -> list[Review]:
    out = []
    for subject in app.subjects() if subjects is None else subjects:
        review = review_of(app, subject, create=False)
        if review is not None:
            out.append(review)
    return out


def query_rows(app: TrialConduct, reviews: Iterable[Review], sites: dict[str, str]) -> list[dict[str, Any]]:
    """One row per query: id, subject, site, ref, field, status, age in days, who/when, last message."""
    now = app.clock()
    rows = []
    for review in reviews:
        for query in review.queries.values():
            rows.append(query_row(query, review.subject, sites.get(review.subject, ""), now))
    return rows


def query_row(query: Query, subject: str, site: str, now: Any) -> dict[str, Any]:
    end = query.closed_at or now
    last = query.thread[-1]
    return {
        "qid": query.qid, "subject": subject, "site": site, "ref": query.ref, "field": query.field,
        "status": query.status, "age_days": max(0, (end - query.opened_at).days),
        "opened_by": query.opened_by, "opened_at": query.opened_at, "check": query.check,
        "text": query.text, "last": f"{last['action']} by {last['by']}" + (f": {last['text']}" if last["text"] else ""),
        "thread": query.thread,
    }


# ---------------------------------------------------------------------- SDV, freeze, lock

def verify_source(app: TrialConduct, refs: Iterable[str], *, user: str) -> list[str]:
    by_subject: dict[str, list[str]] = {}
    for ref in refs:
        subject, version, entry = _existing_ref(app, ref)
        if entry.record is None:
            raise ValidationError(f"{subject}#{version} is a {entry.kind}, not a record; verify the record it changes")
        by_subject.setdefault(subject, []).append(f"{subject}#{version}")
    if not by_subject:
        raise ValidationError("name at least one event to verify, e.g. S001#3")

    def work() -> list[Any]:
        out = []
        for subject, subject_refs in by_subject.items():
            review = review_of(app, subject)
            assert review is not None
            review.verify(subject_refs, app.patient(subject).version, user)
            out.append(review)
        return out

    _save(app, work)
    return [r for rs in by_subject.values() for r in rs]


def freeze(app: TrialConduct, subject: str, reason: str, *, user: str, unfreeze: bool = False) -> None:
    subject = normalise_subject(subject)
    app.patient(subject)  # raises PatientNotFoundError

    def work() -> list[Any]:
        review = review_of(app, subject)
        assert review is not None
        (review.unfreeze if unfreeze else review.freeze)(reason, user)
        return [review]

    _save(app, work)


def lock(app: TrialConduct, reason: str, *, user: str, checkpoint: Callable[[], str]) -> str:
    digest = ""
    for attempt in range(MAX_ATTEMPTS):
        current = store_lock(app) or StoreLock.create()
        if current.locked is not None:  # before the (slow, key-checking) checkpoint
            raise RuleViolation(f"the database is already locked ({current.note()})")
        digest = checkpoint()
        current.lock(reason, user, digest)
        try:
            app.save(current)
            return digest
        except IntegrityError:
            time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
    raise ConcurrencyError("could not save the lock; try again")


def unlock(app: TrialConduct, reason: str, *, user: str) -> None:
    current = store_lock(app)
    if current is None:
        raise RuleViolation("the database is not locked")
    current.unlock(reason, user)
    app.save(current)


# ---------------------------------------------------------------------- SDV report

def sdv_report(app: TrialConduct, site: str | None = None) -> dict[str, Any]:
    """Per patient and per site: required / verified / not yet / invalidated under the risk-based plan."""
    from pgf_events.domain.rules import sdv  # noqa: PLC0415

    patients: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    sites: dict[str, dict[str, Any]] = {}
    for subject in app.subjects():
        patient = app.patient(subject)
        where = patient.registration.site
        if site is not None and where.upper() != site.upper():
            continue
        review = review_of(app, subject, create=False)
        rows = sdv.sdv_status(patient, review.verified if review else {}, app.protocol)
        records.extend({"subject": subject, "site": where, **r} for r in rows)
        counts = sdv.summary(rows)
        patients.append({"subject": subject, "site": where, **counts,
                         "frozen": bool(review and review.frozen)})
        total = sites.setdefault(where, {"site": where, "patients": 0, **dict.fromkeys(counts, 0)})
        total["patients"] += 1
        for key, value in counts.items():
            total[key] += value
    scoped = {} if app.site_scope is None else {"site_scope": sorted(app.site_scope)}  # a site-scoped user's sites
    return {"plan": list(sdv.DEFAULT_PLAN), "patients": patients, "sites": list(sites.values()), "records": records,
            **scoped}
