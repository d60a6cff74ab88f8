"""What ``pgf status`` and ``pgf report`` answer, now (from the caught-up tables) or as of a time.

Both paths end in the same pure functions: a patient's slices -> :func:`status_document`, and
the cohort's slices of one projection -> :func:`build_report`. Now: catch the projections up,
then read their rows. ``as_of``: fold each patient's events recorded up to that time (the
longest prefix of the stream with ``timestamp <= as_of``), :func:`derive_patient` it, and slice.

One patient's status without a projection store (``pgf status``) is derived from that patient's
stream alone, with the same functions the read models are built with: its cost is that patient's
events, however far behind the read models are, and the command needs no SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from pgf_events.application import TrialConduct, normalise_subject
from pgf_events.domain.errors import DomainError, PatientNotFoundError
from pgf_events.domain.patient import Patient
from pgf_events.formatting import iso
from pgf_events.projections import replay
from pgf_events.projections.cohort import build_report, scope_note
from pgf_events.projections.derive import derive_patient, fold
from pgf_events.projections.signatures import signatures
from pgf_events.projections.slices import all_slices, status_document

if TYPE_CHECKING:
    from pgf_events.projections.store import ProjectionStore


def slices_of(patient: Patient, recorded: dict[int, datetime], app: TrialConduct,
              cutoff: date | None = None) -> dict[str, dict[str, Any]]:
    """The patient's slice of every projection, derived under the application's protocol (evaluated
    at the data ``cutoff`` if given): the rows the read models would hold for it."""
    return all_slices(derive_patient(patient, app.protocol, recorded, cutoff=cutoff).as_json())


def _first_trial_date(patient: Patient) -> date:
    """The registration date, or an earlier clinical record's date (consent, screening, ...)."""
    return min([patient.registration.clinical_date] + [r.clinical_date for _, r in patient.clinical_records()])


def registered_by(patient: Patient, cutoff: date | None) -> bool:
    """Whether the patient was in the cohort at the data cut-off (registered, or seen, on or before it)."""
    return cutoff is None or _first_trial_date(patient) <= cutoff


def fold_as_of(events: Any, as_of: datetime) -> tuple[Patient | None, dict[int, datetime]]:
    """The patient as the database knew it at ``as_of``: events up to the first one recorded later."""
    prefix = []
    for event in events:
        if event.timestamp > as_of:
            break
        prefix.append(event)
    return fold(prefix)


def patients_as_of(app: TrialConduct, as_of: datetime) -> Iterator[tuple[Patient, dict[int, datetime]]]:
    """Every patient registered by ``as_of``, folded to what was recorded by then.

    Streamed: the streams are read one chunk of about :data:`replay.CHUNK_EVENTS` events at a time
    (:mod:`.replay`), each patient folded and handed on before the next chunk is read, so memory is
    bounded by a chunk whatever the size of the log (the whole log was held before: 954 MB at 1M
    events). Patients come in the order of their streams' last events; reports sort by subject.
    """
    head = app.recorder.max_notification_id() or 0
    for chunk in replay.chunks(replay.stream_heads(app, 0, head)):
        for _, events in replay.patient_streams(app, chunk):  # reviews, the directory, batches: skipped
            patient, recorded = fold_as_of(events, as_of)
            if patient is not None:
                yield patient, recorded


def patient_status(app: TrialConduct, subject: str, *, as_of: datetime | None = None,
                   store: ProjectionStore | None = None, cutoff: date | None = None) -> tuple[dict[str, Any], Patient]:
    """``pgf status`` as one JSON document, and the patient it describes (for plotting).

    Now, with a ``store``: from its caught-up rows; now, without one (or with a data ``cutoff``):
    derived from the stream.
    """
    subject = normalise_subject(subject)
    if cutoff is not None:
        store = None
    if as_of is None and store is None:
        events = app.stream(subject)
        patient, recorded = fold(events)
        assert patient is not None
        if not registered_by(patient, cutoff):
            raise DomainError(f"patient {subject} entered the trial on {_first_trial_date(patient)}, "
                              f"after the data cut-off {iso(cutoff)}")
        slices, version = slices_of(patient, recorded, app, cutoff), patient.version
    elif as_of is None and store is not None:
        store.catch_up()
        found = store.patient(subject)
        if found is None:
            raise PatientNotFoundError(subject)
        slices, version = found
        events = [e for e in app.stream(subject) if e.originator_version <= version]
        patient = fold(events)[0]
    else:
        assert as_of is not None
        events = app.stream(subject)
        patient, recorded = fold_as_of(events, as_of)
        if patient is None:
            raise DomainError(f"patient {subject} was not yet registered as of {iso(as_of)}")
        if not registered_by(patient, cutoff):
            raise DomainError(f"patient {subject} entered the trial on {_first_trial_date(patient)}, "
                              f"after the data cut-off {iso(cutoff)}")
        slices, version = slices_of(patient, recorded, app, cutoff), patient.version
        events = events[:version]
    doc = status_document(slices, version)
    doc["signatures"] = [
        {**sig, "signed_at": iso(sig["signed_at"])} for sig in signatures(events)
    ]
    assert patient is not None
    return {"subject": doc.pop("subject"), "as_of": iso(as_of), **doc}, patient


_ACTING = object()  # cohort_report's default scope: the acting user's (TrialConduct.site_scope)


def cohort_report(app: TrialConduct, name: str, *, as_of: datetime | None = None,
                  store: ProjectionStore | None = None, cutoff: date | None = None,
                  sites: Any = _ACTING) -> dict[str, Any]:
    """``pgf report NAME`` as one JSON document.

    ``as_of`` (what the store knew) and ``cutoff`` (the clinical data cut-off date) are independent;
    either one, or no ``store`` (a protocol override), derives the rows from the log in memory
    instead of reading the read models (a cut-off declared for the store is read from its rows by
    :func:`.cutoff_rows.cohort_report_at` instead). ``sites`` (default: the acting user's site scope) limits the
    cohort to those sites' patients, derived in memory from their events (the read models hold every
    site, and row-level security keeps them from a site-scoped login); the document then says so in
    ``site_scope``.
    """
    scope: frozenset[str] | None = app.site_scope if sites is _ACTING else sites
    if as_of is None and cutoff is None and store is not None and scope is None:
        store.catch_up()
        rows = store.rows(name)
    else:
        known = patients_as_of(app, as_of) if as_of is not None else _all_patients(app)
        rows = [slices_of(p, rec, app, cutoff)[name] for p, rec in known if registered_by(p, cutoff)
                and (scope is None or str(p.registration.site).upper() in scope)]
    return {**build_report(name, rows, app.protocol, as_of=as_of, cutoff=cutoff), **scope_note(scope)}


def _all_patients(app: TrialConduct) -> Iterator[tuple[Patient, dict[int, datetime]]]:
    return patients_as_of(app, datetime.max.replace(tzinfo=UTC))


def cohort_slices(app: TrialConduct, names: tuple[str, ...], *, as_of: datetime | None = None,
                  store: ProjectionStore | None = None, cutoff: date | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every patient's slices of the projections ``names``: the read models' rows (caught up) now,
    else each patient derived once from the log as of ``as_of`` and/or evaluated at ``cutoff``."""
    if as_of is None and cutoff is None and store is not None:
        store.catch_up()
        return {name: store.rows(name) for name in names}
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    known = patients_as_of(app, as_of) if as_of is not None else _all_patients(app)
    for p, rec in known:
        if registered_by(p, cutoff):
            slices = slices_of(p, rec, app, cutoff)
            for name in names:
                out[name].append(slices[name])
    return out
