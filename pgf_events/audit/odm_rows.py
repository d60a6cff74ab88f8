"""The ODM export's clinical transactions written from the stored rows (issue 18: ODM export >= 50k events/s).

A record inserted (every ``Patient.Recorded`` event: a lab, a transfusion, ... 97% of a registry's
log) is written straight from its stored JSON: parsed once with orjson, its values turned into item
text (:mod:`pgf_events.audit.odm_items`) without making the event or its record. Everything else
(a registration, correction, void or signature, whose transactions depend on the records they
change, or a row the fast path cannot say exactly: an unexpected value type, a gap in the
versions, JSON only the ``json`` module reads) is decoded by the mapper and written by
:class:`~pgf_events.audit.odm_subjects.Transactions` itself, once the inserts before it are applied
to the patient: their entries made as ``Recorded.apply`` makes them, each record read from its row
only when a correction or void changes it. Monitoring annotations are written as before, the
review streams read with the patients' in batches. Every text is the one ``Transactions`` writes,
byte for byte (``tests/exports/test_odm_rows.py`` compares the two paths on every kind of event,
value and store).

Used when the store's rows hold plain JSON (no cipher, no compression) and the recorder reads
streams in batches (the chained recorders); anything else takes the decoded path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET

import orjson

from pgf_events.audit import source
from pgf_events.audit.odm_items import RecordRows, Slow, recorded, source_text, stamp_text
from pgf_events.audit.odm_subjects import Seen, Transactions, _audit_start, _leaf
from pgf_events.audit.odm_subjects import subject_data as decoded_subject_data
from pgf_events.audit.source import utc
from pgf_events.domain.entries import Entry
from pgf_events.mapper import FastMapper
from pgf_events.transcodings import FastJSONTranscoder


def usable(app: Any) -> bool:
    """Whether the rows of ``app``'s store hold the events' JSON as the fast path reads it."""
    mapper = app.mapper
    return (hasattr(app.recorder, "stream_rows") and type(mapper) is FastMapper and not mapper.cipher
            and not mapper.compressor and type(mapper.transcoder) is FastJSONTranscoder)


# ------------------------------------------------------------------------------------------ patients


def subject_data(app: Any, seen: Seen, as_of: datetime | None, snapshot: bool,
                 subjects: list[str] | None = None) -> Iterator[str]:
    """Each SubjectData of ClinicalData (of ``subjects``, default every patient), as XML text: the
    transactions from the rows where :func:`usable`, else (and ``--snapshot``) from the decoded events."""
    if snapshot or not usable(app):
        yield from decoded_subject_data(app, seen, as_of, snapshot, subjects)
        return
    yield from _from_rows(app, seen, as_of, app.subjects() if subjects is None else subjects)


def _from_rows(app: Any, seen: Seen, as_of: datetime | None, subjects: list[str]) -> Iterator[str]:
    from pgf_events.audit.odm_monitoring import monitoring_subject_data  # noqa: PLC0415

    decode = app.mapper.decode
    for subject, oid, rows, review, reviews in _streams(app, subjects):
        transactions = Transactions(subject, seen)
        writer = _Patient(transactions, oid, decode, as_of)
        yield from writer.transactions(rows)
        if transactions.patient is None:
            continue  # nothing recorded by as_of (a patient's first event is its registration)
        if reviews:
            writer.fold()
            assert transactions.patient is not None
            events = [decode(review, *row) for row in reviews]
            for element in monitoring_subject_data(app, subject, transactions.patient, seen, as_of, events):
                yield ET.tostring(element, encoding="unicode")


def _streams(app: Any, subjects: list[str]) -> Iterator[tuple[str, Any, list[Any], Any, list[Any]]]:
    """(subject, stream id, rows, review stream id, its rows) of each subject: the patient's stream and
    its review stream (queries, SDV, freezes) read together, :data:`source.BATCH` patients a transaction."""
    from pgf_events.domain.review import review_id  # noqa: PLC0415

    for start in range(0, len(subjects), source.BATCH):
        batch = subjects[start:start + source.BATCH]
        ids = [app.patient_id(subject) for subject in batch]
        reviews = [review_id(i) for i in ids]
        rows = app.recorder.stream_rows([(i, 2**62) for i in ids + reviews])
        yield from zip(batch, ids, rows[:len(ids)], reviews, rows[len(ids):], strict=True)


class _Patient:
    """One patient's rows to SubjectData texts.

    ``pending``: the inserts written but not yet applied to the patient (row, kind, parsed JSON);
    ``unread``: the versions whose entry is in the patient without its record (the row to read it from).
    """

    def __init__(self, transactions: Transactions, oid: Any, decode: Callable[..., Any], as_of: datetime | None):
        self.tx = transactions
        self.oid = oid
        self.decode = decode
        self.as_of = as_of
        self.pending: list[tuple[tuple[Any, ...], str, dict[str, Any]]] = []
        self.unread: dict[int, tuple[Any, ...]] = {}
        self.starts: dict[str, str] = {}  # user -> AuditRecord start (the patient's site: until the next fold)
        self.containers: dict[str, tuple[str, str]] = {}  # kind -> an insert's container around its key

    def fold(self) -> None:
        """Apply the pending inserts to the patient as their events' ``mutate`` does (``Recorded.apply``:
        the record's entry, its kind's index, the deviations it acknowledges; then the version and the
        time), each record itself left unread until a correction or void needs it (:meth:`read_root`).
        A patient whose entry rules' view is cached, or an unusual acknowledgement, is folded by decoding."""
        tx, pending = self.tx, self.pending
        if not pending:
            return
        patient = tx.patient
        assert patient is not None
        if patient._prior is not None:  # noqa: SLF001 - never made while exporting; kept exact if it were
            for row, _, _ in pending:
                patient = self.decode(self.oid, *row).mutate(patient)
            pending.clear()
            return
        entries, kinds, unread = patient.entries, patient._kinds, self.unread  # noqa: SLF001
        for row, kind, state in pending:
            version = row[0]
            acknowledged = state.get("acknowledged")
            if acknowledged is not None and not _plain_acknowledgements(acknowledged):
                patient = self.decode(self.oid, *row).mutate(patient)
                continue
            entries[version] = Entry(version=version, kind=kind)
            kinds.setdefault(kind, []).append(version)
            patient._acknowledge(acknowledged)  # noqa: SLF001
            unread[version] = row
            patient.version = version
        row, _, state = pending[-1]  # the time of the last (the payload's, or on PostgreSQL the database's)
        patient.modified_on = (row[4].astimezone(UTC) if len(row) > 3 and row[4] is not None
                               else datetime.fromisoformat(state["timestamp"]["_data_"]))
        pending.clear()

    def read_root(self, event: Any) -> None:
        """Read the record a correction or void changes (the root it supersedes) if its entry has none yet."""
        supersedes = getattr(event, "supersedes", None)
        if not self.unread or type(supersedes) is not str:
            return
        patient = self.tx.patient
        assert patient is not None
        try:
            root = patient._root(int(supersedes.rpartition("#")[2]))  # noqa: SLF001
        except (KeyError, ValueError):
            return  # Transactions.of says what is wrong, as it would have
        row = self.unread.pop(root, None)
        if row is not None:
            entry = patient.entries[root]
            entry.original = entry.record = self.decode(self.oid, *row).record

    def transactions(self, rows: list[tuple[Any, ...]]) -> Iterator[str]:
        tx, as_of = self.tx, self.as_of
        recorded_kinds = recorded()
        users = tx.seen.users
        last = 0
        for row in rows:
            version = row[0]
            kind = recorded_kinds.get(row[1])
            if kind is not None and version == last + 1 and tx.patient is not None:
                text = self.inserted(kind, row, users)
                if text:
                    last = version
                    yield text
                    continue
                if text == "":
                    continue  # recorded after as_of: left out
            event = self.decode(self.oid, *row)
            if as_of is not None and event.timestamp > as_of:
                continue
            self.fold()
            self.read_root(event)
            last = version
            yield tx.of(event)
            self.starts.clear()  # a correction of the registration may have moved the patient

    def inserted(self, kind: RecordRows, row: tuple[Any, ...], users: set[str]) -> str | None:
        """The SubjectData of a record's insert from its row ('' when after ``as_of``); None: not sure."""
        try:
            state = orjson.loads(row[2])
            record, stamp, user, source = state["record"], state["timestamp"], state["recorded_by"], state["source"]
            data, moment = record["_data_"], stamp["_data_"]
            if (record["_type_"] != kind.transcoding or stamp["_type_"] != "datetime_iso" or len(record) != 2
                    or len(stamp) != 2):
                return None
        except (orjson.JSONDecodeError, KeyError, TypeError, IndexError):
            return None  # not the JSON of a record's event as written: the decoder says what it is
        deviation = state.get("deviation")
        if (type(data) is not dict or type(moment) is not str or type(user) is not str
                or (source is not None and type(source) is not str)
                or (deviation is not None and type(deviation) is not str)):
            return None
        if len(row) > 3:  # PostgreSQL: the database's who and when replace the payload's
            if row[3] is not None:
                user = row[3]
            if row[4] is not None:
                when = row[4].astimezone(UTC)
                if self.as_of is not None and when > self.as_of:
                    return ""
                stamp = None
        if stamp is not None:
            if self.as_of is not None and datetime.fromisoformat(moment) > self.as_of:
                return ""
            time = stamp_text(moment)
        else:
            time = utc(when)
        tx = self.tx
        assert tx.patient is not None
        ref = f"{tx._ref}{row[0]}"  # noqa: SLF001 - the Transactions' own text
        start = self.starts.get(user)
        if start is None:
            start = self.starts[user] = _audit_start(user, tx.patient.registration.site)
        tail = (f'">{start}{time}</DateTimeStamp>'
                + (_leaf("ReasonForChange", f"protocol deviation acknowledged: {deviation}") if deviation else "")
                + f"<SourceID>{ref}{source_text(source) if source else ''}</SourceID></AuditRecord></ItemData>")
        try:
            items = kind.items(data, tail)
        except Slow:
            return None
        users.add(user)
        self.pending.append((row, kind.kind, state))
        parts = self.containers.get(kind.kind)
        if parts is None:  # what Transactions.container writes around a record kind's inserted items
            head, middle = tx.container_parts(kind.kind, "Insert")
            parts = self.containers[kind.kind] = (f'{head} StudyEventRepeatKey="', f'"{middle}')
        group = f">{items}</ItemGroupData>" if items else " />"
        return f"{parts[0]}{row[0]:d}{parts[1]}{group}</FormData></StudyEventData></SubjectData>"



def _plain_acknowledgements(acknowledged: Any) -> bool:
    """A stored ``acknowledged`` that decodes to itself: a list of {"kind": str, "ref": str, ...}."""
    return type(acknowledged) is list and all(
        type(a) is dict and type(a.get("ref")) is str and type(a.get("kind")) is str and "_type_" not in a
        for a in acknowledged)

