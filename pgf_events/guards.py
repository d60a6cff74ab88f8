"""What every write to the trial checks first, and the automatic queries it raises: the database
lock, a patient's freeze, and the edit checks (used by the unit of work, signing and the monitoring
use cases in :mod:`pgf_events.monitoring`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from eventsourcing.application import AggregateNotFoundError

from pgf_events.domain.errors import RuleViolation

if TYPE_CHECKING:
    from pgf_events.application import TrialConduct
    from pgf_events.domain.lock import StoreLock
    from pgf_events.domain.review import Review

# The lock and review aggregates are imported by the functions that use them: ``project`` serves
# every reader, ``pgf audit verify`` too, which loads no aggregate it does not meet.


def project(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's ``project_aggregate`` without its per-event ``assert isinstance(event,
    CanMutateProtocol)``: a runtime Protocol check that costs more than applying the event."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def store_lock(app: TrialConduct) -> StoreLock | None:
    from pgf_events.domain.lock import LOCK_ID  # noqa: PLC0415

    try:
        return app.repository.get(LOCK_ID, projector_func=project)  # type: ignore[no-any-return]
    except AggregateNotFoundError:
        return None


def review_of(app: TrialConduct, subject: str, *, create: bool = True) -> Review | None:
    """The patient's review stream (a new, unsaved one if nothing was reviewed yet)."""
    from pgf_events import topics  # noqa: F401, PLC0415 - stored names registered before a stream is made
    from pgf_events.domain.review import Review, review_id  # noqa: PLC0415

    patient_uuid = app.patient_id(subject)
    try:
        return app.repository.get(review_id(patient_uuid), projector_func=project)  # type: ignore[no-any-return]
    except AggregateNotFoundError:
        return Review.start(subject, patient_uuid) if create else None


def check_not_locked(app: TrialConduct) -> None:
    lock = store_lock(app)
    if lock is not None:
        lock.check_writable()


def check_not_frozen(review: Review | None) -> None:
    if review is not None and review.frozen is not None:
        raise RuleViolation(f"patient {review.subject} is {review.frozen_note()}; a data manager must "
                            f"'pgf unfreeze {review.subject} --reason ...' before it changes")


# ---------------------------------------------------------------------- automatic queries

AUTO_USER = "pgf-edit-check"


def auto_queries(app: TrialConduct, patients: Iterable[Any], reviews: dict[str, Review | None],
                 now: Any) -> list[Review]:
    """Raise a query for each new edit-check finding and close those whose finding is gone.

    Called by the unit of work for every patient it changed, so the queries are saved with the
    records that raised or resolved them. Returns the reviews with new events.
    """
    from pgf_events.domain.patient import Patient  # noqa: PLC0415
    from pgf_events.domain.rules.editchecks import edit_checks  # noqa: PLC0415

    out = []
    for patient in patients:  # a Patient, or what a bulk import keeps of one (its facts, or its checks)
        checks = edit_checks(patient, app.protocol) if isinstance(patient, Patient) else \
            patient.edit_checks(app.protocol)
        findings = {f.key: f for f in checks}
        review = reviews.get(patient.subject)
        if review is None:
            if not findings:
                continue
            review = review_of(app, patient.subject)
            assert review is not None
            reviews[patient.subject] = review
        raised = {q.check: q for q in review.queries.values() if q.check}
        for key, finding in findings.items():
            if key not in raised:
                review.open_query(finding.ref, finding.field, finding.text, AUTO_USER, check=key)
        for key, query in raised.items():
            if key not in findings and query.status != "closed":
                review.close(query.qid, "resolved: the edit check no longer finds this", AUTO_USER)
        if review.pending_events:
            out.append(review)
    return out
