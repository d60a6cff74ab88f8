"""Exception reports for monitors and auditors (``pgf audit exceptions``).

Each row names its kind, the subject, the event references involved, who recorded the entry, when
(recorded, UTC), why (the reason given for a change) and a one-line detail. Kinds:

- ``late_entry``: a record entered more than ``late_entry_days`` after its clinical date
  (recorded UTC date minus the record's clinical date; first entries only).
- ``endpoint_edit``: a correction or void of a lab or transfusion record dated within
  ±``endpoint_edit_window_days`` of a derived hemogram endpoint date (neutrophil engraftment,
  red-cell recovery, platelet response), taking the endpoint dates both before and after the edit,
  and saying when the edit moved an endpoint.
- ``eligibility_after_enrolment``: a correction or void of a screening, consent or the
  registration's birth date while the patient was enrolled, with the eligibility before -> after.
- ``dose_after_infusion``: a correction of an infusion's cells or weight, or a void of an infusion.
- ``sae_date_edit``: a correction of the onset, awareness or end date of a serious adverse event.
- ``new_user_at_site``: the first entry of a user at a site (a user never seen before there).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any, overload

from pgf_events.audit.source import patient_streams
from pgf_events.domain import values as vo
from pgf_events.domain.kinds import EVENT_KINDS
from pgf_events.domain.kinds import KINDS as RECORD_KINDS
from pgf_events.domain.patient import CORRECTION, VOID, Patient
from pgf_events.formatting import show
from pgf_events.projections.hemogram_inputs import ENDPOINTS, HemogramInputs
from pgf_events.protocol import Protocol

KINDS = ("late_entry", "endpoint_edit", "eligibility_after_enrolment", "dose_after_infusion", "sae_date_edit",
         "new_user_at_site")
COLUMNS = ("kind", "subject", "refs", "user", "recorded_at", "reason", "detail")
SAE_DATE_FIELDS = ("onset", "aware", "end")


def _row(kind: str, subject: str, refs: list[str], event: Any, detail: str) -> dict[str, Any]:
    return {
        "kind": kind, "subject": subject, "refs": refs, "user": event.recorded_by, "recorded_at": event.timestamp,
        "reason": getattr(event, "reason", None), "detail": detail,
    }


def _day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else None


class PatientExceptions:
    def __init__(self, subject: str, params: Protocol, first_seen: dict[tuple[str, str], tuple[datetime, str, Any]]):
        self.subject = subject
        self.params = params
        self.first_seen = first_seen
        self.patient: Patient | None = None
        # The endpoint inputs follow the patient event by event, so the endpoint dates before and
        # after each lab or transfusion edit cost that edit, not a derivation of the whole patient.
        self.hemogram = HemogramInputs()
        self._hemogram = True  # whether the endpoint inputs follow the events (:meth:`rows`)

    def rows(self, events: list[Any], final: Patient | None = None) -> Iterator[dict[str, Any]]:
        """The rows of ``events`` (a stream from its first event), folding the patient event by event.

        ``final``: the same events already folded (a read model's pass has it). The patient's state
        is then needed only up to the last correction or void (an edit's rows compare before and
        after; the rows of a plain record read only its subject and site, which change by an edit
        alone): after it, ``final`` stands in and nothing is folded again; the endpoint inputs are
        followed only up to the last edit of a lab or transfusion (:func:`_folding`)."""
        fold_to, hemogram_to = _folding(events, final)
        self._hemogram = hemogram_to >= 0
        first_seen, late_days = self.first_seen, self.params.late_entry_days
        for index, event in enumerate(events):
            kind = EVENT_KINDS.get(type(event), "")
            if index > fold_to:  # no edit follows: nothing but the subject and site read, both final's
                self.patient, self._hemogram = final, False
            elif kind in (CORRECTION, VOID):
                yield from self.edit(event, kind)
            else:
                self.patient = event.mutate(self.patient)
                if self._hemogram:
                    self.hemogram.apply(self.patient, event)
            if kind in RECORD_KINDS and (event.timestamp.date() - event.record.clinical_date).days > late_days:
                yield self.late(event)
            if index == hemogram_to:
                self._hemogram = False  # no later edit reads the endpoint inputs
            assert self.patient is not None
            key = (event.recorded_by, self.patient.registration.site)
            seen = first_seen.get(key)
            if seen is None or event.timestamp < seen[0]:
                first_seen[key] = (event.timestamp, self.patient.ref(event.originator_version), event)

    def late(self, event: Any) -> dict[str, Any]:
        """The ``late_entry`` row of a first entry recorded more than ``late_entry_days`` after its date."""
        assert self.patient is not None
        clinical = event.record.clinical_date
        days = (event.timestamp.date() - clinical).days
        return _row("late_entry", self.subject, [self.patient.ref(event.originator_version)], event,
                    f"{event.record.KIND} dated {clinical} recorded {days} days later "
                    f"(late_entry_days = {self.params.late_entry_days})")

    def edit(self, event: Any, kind: str) -> Iterator[dict[str, Any]]:
        patient = self.patient
        assert patient is not None
        ref = patient.ref(event.originator_version)
        target = int(event.supersedes.rpartition("#")[2])
        root = patient._root(target)
        entry = patient.entries[root]
        root_kind, root_ref = entry.kind, patient.ref(root)
        old = entry.record
        changed = set(event.changes) if kind == CORRECTION else set()
        verb = "corrects" if kind == CORRECTION else "voids"
        what = f"{verb} {event.supersedes}" + (f" ({root_kind} {root_ref})" if event.supersedes != root_ref else
                                                f" ({root_kind})")
        enrolled_before = patient.enrolment is not None
        eligibility_data = root_kind in ("screen", "consent") or (root_kind == "register" and "birth_date" in changed)
        # derived only when the row can be made (eligibility data edited while enrolled)
        eligibility_before = patient.eligibility(self.params).status if eligibility_data and enrolled_before else None
        near_endpoint = root_kind in ("lab", "transfusion")
        assert self._hemogram or not near_endpoint, "the endpoint inputs were not followed up to this edit"
        endpoints_before = self.hemogram.endpoint_dates(patient, self.params) if near_endpoint else {}
        was_serious = isinstance(old, vo.AdverseEvent) and bool(old.serious)

        self.patient = event.mutate(patient)
        patient = self.patient
        if self._hemogram:
            self.hemogram.apply(patient, event)
        new = patient.entries[root].record
        refs = [ref, root_ref] if event.supersedes == root_ref else [ref, event.supersedes, root_ref]

        if near_endpoint:
            endpoints_after = self.hemogram.endpoint_dates(patient, self.params)
            window = self.params.endpoint_edit_window_days
            days = {d for d in (_day(getattr(old, "date", None)), _day(getattr(new, "date", None))) if d}
            near = sorted({
                (label, endpoint) for label, endpoint in [*endpoints_before.items(), *endpoints_after.items()]
                if any(abs((day - endpoint).days) <= window for day in days)
            })
            if near:
                moved = [
                    f"{label} {endpoints_before.get(label)} -> {endpoints_after.get(label)}"
                    for _, label in ENDPOINTS if endpoints_before.get(label) != endpoints_after.get(label)
                ]
                where = ", ".join(f"{label} on {endpoint}" for label, endpoint in near)
                yield _row("endpoint_edit", self.subject, refs, event,
                           f"{what} dated {', '.join(str(d) for d in sorted(days))}, within {window} days of {where}"
                           + (f"; moved {', '.join(moved)}" if moved else "; endpoints unchanged"))

        if eligibility_data and enrolled_before:
            eligibility_after = patient.eligibility(self.params).status
            yield _row("eligibility_after_enrolment", self.subject, refs, event,
                       f"{what} after enrolment; eligibility {eligibility_before} -> {eligibility_after}")

        if root_kind == "infusion" and (kind == VOID or changed & {"cells", "weight_kg"}):
            if kind == VOID:
                detail = f"{what}: the infusion of {_day(getattr(old, 'date', None))} no longer counts"
            else:
                detail = f"{what}: " + "; ".join(
                    f"{f} {show(getattr(old, f, None))} -> {show(getattr(new, f, None))}"
                    for f in sorted(changed & {"cells", "weight_kg"})
                )
            yield _row("dose_after_infusion", self.subject, refs, event, detail)

        is_serious = isinstance(new, vo.AdverseEvent) and bool(new.serious)
        if root_kind == "ae" and kind == CORRECTION and (was_serious or is_serious):
            dates = sorted(changed & set(SAE_DATE_FIELDS))
            if dates:
                yield _row("sae_date_edit", self.subject, refs, event, f"{what}: " + "; ".join(
                    f"{f} {show(getattr(old, f, None))} -> {show(getattr(new, f, None))}" for f in dates))


def _folding(events: list[Any], final: Patient | None) -> tuple[int, int]:
    """(the index of the last event the patient must be folded to, the index of the last event the
    endpoint inputs must follow), -1 for none: every event without ``final``; with it, up to the last
    correction or void, and up to the last one of a lab or transfusion (an edit's root never changes,
    so ``final`` tells which record it edits)."""
    if final is None:
        return len(events) - 1, len(events) - 1
    fold_to = hemogram_to = -1
    for index, event in enumerate(events):
        if EVENT_KINDS.get(type(event), "") in (CORRECTION, VOID):
            fold_to = index
            root = final._root(int(event.supersedes.rpartition("#")[2]))  # noqa: SLF001 - the aggregate's own chain
            if final.entries[root].kind in ("lab", "transfusion"):
                hemogram_to = index
    return fold_to, hemogram_to


def exception_rows(app: Any, as_of: datetime | None = None, kinds: tuple[str, ...] = KINDS) -> list[dict[str, Any]]:
    params = app.protocol
    return merge_exceptions([patient_exceptions(subject, events, params)
                             for subject, events in patient_streams(app, as_of)], kinds)


# One patient's rows (a list, or rows made as they are read: audit.finding_rows.ExceptionRows) and first entries.
Found = tuple[Iterable[dict[str, Any]], dict[tuple[str, str], tuple[datetime, str, Any]]]


def patient_exceptions(subject: str, events: list[Any], params: Protocol) -> Found:
    """One patient's exception rows (every kind but ``new_user_at_site``) and the first entry of each
    (user, site) in its stream: what :func:`merge_exceptions` needs of it."""
    first_seen: dict[tuple[str, str], tuple[datetime, str, Any]] = {}
    return list(PatientExceptions(subject, params, first_seen).rows(events)), first_seen


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return row["recorded_at"], row["subject"], KINDS.index(row["kind"])


def new_user_rows(found: Iterable[Found]) -> list[dict[str, Any]]:
    """A ``new_user_at_site`` row for each user's earliest entry at a site among these patients (in order)."""
    first_seen: dict[tuple[str, str], tuple[datetime, str, Any]] = {}
    for _, seen in found:
        for key, value in seen.items():
            if key not in first_seen or value[0] < first_seen[key][0]:
                first_seen[key] = value
    return [_row("new_user_at_site", ref.rpartition("#")[0], [ref], event, f"first entry by {user} at site {site}")
            for (user, site), (_, ref, event) in first_seen.items()]


def merge_exceptions(found: list[Found], kinds: tuple[str, ...] = KINDS) -> list[dict[str, Any]]:
    """The exception report of these patients (in registration order): their rows, and a
    ``new_user_at_site`` row for each user's earliest entry at a site among them."""
    rows = [row for patient_rows, _ in found for row in patient_rows]
    rows.extend(new_user_rows(found))
    rows = [r for r in rows if r["kind"] in kinds]
    rows.sort(key=_key)
    return rows


class Merged(Sequence[dict[str, Any]]):
    """:func:`merge_exceptions` of patients whose rows are each already sorted (:func:`sort_rows`),
    merged lazily: its length and per-kind counts without touching the rows, its first rows by
    merging only as far as asked, every row in :func:`merge_exceptions`' order (a stable merge of
    the patients in order, then the ``new_user_at_site`` rows)."""

    def __init__(self, found: Sequence[Found], kinds: tuple[str, ...] = KINDS,
                 counts: list[Counter[str]] | None = None) -> None:
        new = sorted((r for r in new_user_rows(found) if r["kind"] in kinds), key=_key)
        every = set(kinds) >= set(KINDS)
        self._lists = [rows if every else [r for r in rows if r["kind"] in kinds] for rows, _ in found] + [new]
        total: Counter[str] = Counter()
        for c in counts if counts is not None else (Counter(r["kind"] for r in rows) for rows, _ in found):
            total.update(c)
        self.counts = Counter({k: v for k, v in total.items() if k in kinds})
        self.counts.update(r["kind"] for r in new)
        self._length = sum(self.counts.values())
        self._head: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return self._length

    def _upto(self, n: int) -> list[dict[str, Any]]:
        if len(self._head) < min(n, self._length):
            self._head = first_rows(self._lists, n)
        return self._head

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice) and (index.start or 0) >= 0 and index.stop is not None and index.stop >= 0 \
                and (index.step or 1) > 0:
            return self._upto(index.stop)[index]
        return list(self)[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return heapq.merge(*self._lists, key=_key)


def first_rows(lists: Sequence[Iterable[dict[str, Any]]], n: int) -> list[dict[str, Any]]:
    """``list(islice(heapq.merge(*lists, key=_key), n))``, reading a list only once its first row is
    reached: a list may tell its first row's key without being read (``head_key()``: the audit read
    model's rows, which are parsed when read), so the first rows of the page read a few patients' rows."""
    heap: list[tuple[Any, int, dict[str, Any] | None, Iterator[dict[str, Any]] | None]] = []
    for i, rows in enumerate(lists):
        head = rows.head_key() if hasattr(rows, "head_key") else _key(rows[0]) if rows else None  # type: ignore[index]
        if head is not None:
            heap.append((head, i, None, None))
    heapq.heapify(heap)
    out: list[dict[str, Any]] = []
    while heap and len(out) < n:
        _, i, row, rest = heapq.heappop(heap)
        if rest is None:  # the list's first row: read it now
            rest = iter(lists[i])
            row = next(rest)
        assert row is not None
        out.append(row)
        after = next(rest, None)
        if after is not None:
            heapq.heappush(heap, (_key(after), i, after, rest))
    return out


def sort_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One patient's rows in the report's order (stable: as :func:`merge_exceptions` sorts them)."""
    return sorted(rows, key=_key)
