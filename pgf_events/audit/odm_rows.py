"""The ODM export's clinical transactions written from the stored rows (issue 18: ODM export >= 50k events/s).

A record inserted (every ``Patient.Recorded`` event: a lab, a transfusion, ... 97% of a registry's
log) is written straight from its stored JSON: parsed once with orjson, its values turned into item
text without making the event, its record or the patient's entry. The patient is folded (the
events decoded by the mapper and applied, as :class:`~pgf_events.audit.odm_subjects.Transactions`
does) only when something needs it: a registration, correction, void or signature (whose
transactions depend on the records they change), a patient's monitoring annotations, or an event
the rows cannot say exactly (an unexpected value type, a gap in the versions, JSON only the ``json``
module reads): those go through ``Transactions`` itself, after the inserts before them are
applied. Every text is the one ``Transactions`` writes, byte for byte
(``tests/exports/test_odm_rows.py`` compares the two on every kind of event, value and store).

Used when the store's rows hold plain JSON (no cipher, no compression) and the recorder reads
streams in batches (the chained recorders); anything else takes the decoded path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any
from xml.etree import ElementTree as ET

import orjson

from pgf_events.audit import source
from pgf_events.audit.odm_meta import _attr, _group, _text, decimal_text
from pgf_events.audit.odm_subjects import Seen, Transactions, _audit_start, _insert_start, _leaf
from pgf_events.audit.source import utc
from pgf_events.domain import values as vo
from pgf_events.domain.entries import _restore_plan
from pgf_events.domain.kinds import EVENT_KINDS, KINDS
from pgf_events.domain.patient import Patient
from pgf_events.topics import STORED_TOPICS
from pgf_events.transcodings import FastJSONTranscoder, FastMapper


class _Slow(Exception):  # noqa: N818 - not an error: the event is written by the decoded path
    """A value the rows cannot turn into text exactly as the decoded record would be."""


def usable(app: Any) -> bool:
    """Whether the rows of ``app``'s store hold the events' JSON as the fast path reads it."""
    mapper = app.mapper
    return (hasattr(app.recorder, "stream_rows") and type(mapper) is FastMapper and not mapper.cipher
            and not mapper.compressor and type(mapper.transcoder) is FastJSONTranscoder)


# ------------------------------------------------------------------------------------------ values

_STRINGS: dict[str, str] = {}  # text value -> its Value attribute (codes, units, sources repeat)
_DATES: dict[str, str] = {}  # stored date -> as the record's date writes it
_KEEP = 50_000  # entries each of these caches holds at most


def _string(value: str) -> str:
    found = _STRINGS.get(value)
    if found is None:
        found = _attr(value)
        if len(_STRINGS) < _KEEP:
            _STRINGS[value] = found
    return found


_FLOATS: dict[float, str] = {}  # a float -> decimal_text() of it (0.0 and -0.0, equal keys, are left out)


def _float(value: float) -> str:
    text = decimal_text(value)
    if value and len(_FLOATS) < _KEEP:
        _FLOATS[value] = text
    return text


def _typed(value: dict[str, Any]) -> str:
    """A ``{"_type_", "_data_"}`` value (a date or a time) as the decoded value's text."""
    name, data = value.get("_type_"), value.get("_data_")
    if len(value) != 2 or type(data) is not str:
        raise _Slow
    if name == "date_iso":
        found = _DATES.get(data)
        if found is None:
            found = date.fromisoformat(data).isoformat()
            if len(_DATES) < _KEEP:
                _DATES[data] = found
        return found
    if name == "datetime_iso":
        return utc(datetime.fromisoformat(data))
    raise _Slow


def _value(value: Any) -> str:
    """What ``odm_subjects._value`` writes for the value this stored JSON value decodes to (not None)."""
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is float:
        return _FLOATS.get(value) or _float(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is dict:
        return _typed(value)
    raise _Slow


# ------------------------------------------------------------------------------------------ records

_PLAIN, _KEYED, _CHOSEN = 0, 1, 2  # a field as one item; a dict spread over items; a list of choices


class RecordRows:
    """How one record kind's stored ``_data_`` becomes its ItemData (an Insert each): the fields in
    ``flatten()``'s order, with the defaults ``restore()`` gives a field the stored JSON lacks."""

    def __init__(self, kind: str, record: type[vo.Record]):
        self.kind = kind
        self.transcoding = f"pgf.{kind}"
        g = _group(kind)
        fields: list[tuple[str, Any, Callable[[], Any] | None, int, Any]] = []
        for name, default, factory in _restore_plan(record):
            if name == "criterion":
                parts = tuple((_insert_start(f"IT.{g}.CRITERION_{c}"), c) for c in vo.TYPED_CRITERIA)
                fields.append((name, default, factory, _KEYED, parts))
            elif name == "organ":
                parts = tuple((_insert_start(f"IT.{g}.ORGAN_{o.upper()}"), o) for o in vo.CHRONIC_ORGANS)
                fields.append((name, default, factory, _KEYED, parts))
            elif name == "serious":
                parts = tuple((_insert_start(f"IT.{g}.SERIOUS_{c.upper().replace('-', '_')}"), c)
                              for c in vo.SERIOUSNESS)
                fields.append((name, default, factory, _CHOSEN, parts))
            else:
                fields.append((name, default, factory, _PLAIN, _insert_start(f"IT.{g}.{name.upper()}")))
        self.fields = tuple(fields)
        # The stored field names (in order) -> each field's ItemData start, when every field is one item.
        self.layouts: dict[tuple[str, ...], tuple[str, ...]] = {}
        if all(shape == _PLAIN for _, _, _, shape, _ in fields):
            self.layouts[tuple(f[0] for f in fields)] = tuple(f[4] for f in fields)

    def items(self, data: dict[str, Any], tail: str) -> str:
        """The ItemData of every value the record holds, each ending with ``tail`` (its AuditRecord and end
        tag); :class:`_Slow` if unsure. A record stored with every field of its kind in order (what this
        program writes) is read by position; any other goes field by field, defaults as ``restore()``."""
        starts = self.layouts.get(tuple(data))
        if starts is None:
            return "".join([f"{start}{value}{tail}" for start, value in self.values(data)])
        out: list[str] = []
        strings, floats = _STRINGS, _FLOATS
        for start, value in zip(starts, data.values(), strict=True):
            kind = type(value)
            if kind is float:
                text = floats.get(value)
                if text is None:
                    text = _float(value)
            elif kind is str:
                text = strings.get(value)
                if text is None:
                    text = _string(value)
            elif value is None:
                continue
            elif kind is int:
                text = str(value)
            elif kind is dict:
                text = _typed(value)
            else:
                text = _value(value)
            out += (start, text, tail)
        return "".join(out)

    def values(self, data: dict[str, Any]) -> list[tuple[str, str]]:
        """(ItemData start, Value text) of every value the record holds, field by field."""
        out = []
        for name, default, factory, shape, start in self.fields:
            value = data.get(name, default) if factory is None or name in data else factory()
            if shape == _PLAIN:
                if value is not None:
                    out.append((start, _value(value)))
            elif shape == _KEYED:
                if type(value) is not dict or "_type_" in value:
                    raise _Slow
                for part_start, key in start:
                    part = value.get(key)
                    if part is not None:
                        out.append((part_start, _value(part)))
            else:
                if value is not None and type(value) is not list:
                    raise _Slow
                if value:  # flatten(): each choice's item is None (left out) when nothing was chosen
                    for part_start, choice in start:
                        out.append((part_start, "true" if choice in value else "false"))
        return out


_RECORDED: dict[str, RecordRows] = {}  # a Recorded event's stored topic -> its kind's rows


def _recorded() -> dict[str, RecordRows]:
    if not _RECORDED:
        kinds = {}
        for topic, cls in STORED_TOPICS.items():
            if (isinstance(cls, type) and issubclass(cls, Patient.Recorded) and cls in EVENT_KINDS
                    and getattr(cls, "class_version", 1) == 1):
                kind = EVENT_KINDS[cls]
                if kind not in kinds:
                    kinds[kind] = RecordRows(kind, KINDS[kind].record)
                _RECORDED[topic] = kinds[kind]
    return _RECORDED


# ------------------------------------------------------------------------------------------ times

# A UTC time as isoformat writes it (microseconds only when not zero): ``utc()`` of it is the same
# text with a Z. Anything else is parsed and written by ``utc()``.
_STAMP = re.compile(r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
                    r"(?:\.(?!000000)\d{6})?\+00:00")


def _stamp(text: str) -> str:
    if _STAMP.fullmatch(text):
        return text[:-6] + "Z"
    return utc(datetime.fromisoformat(text))


# ------------------------------------------------------------------------------------------ patients


def subject_data(app: Any, seen: Seen, as_of: datetime | None, subjects: list[str]) -> Iterator[str]:
    """What :func:`pgf_events.audit.odm_subjects.subject_data` yields (transactional), from the rows."""
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
    """One patient's rows to SubjectData texts; ``pending``: the rows written but not yet folded in."""

    def __init__(self, transactions: Transactions, oid: Any, decode: Callable[..., Any], as_of: datetime | None):
        self.tx = transactions
        self.oid = oid
        self.decode = decode
        self.as_of = as_of
        self.pending: list[tuple[Any, ...]] = []
        self.starts: dict[str, str] = {}  # user -> AuditRecord start (the patient's site: until the next fold)

    def fold(self) -> None:
        """Apply the pending rows' events to the patient, as ``Transactions.of`` would have."""
        tx, decode, oid = self.tx, self.decode, self.oid
        for row in self.pending:
            tx.patient = decode(oid, *row).mutate(tx.patient)
        self.pending.clear()

    def transactions(self, rows: list[tuple[Any, ...]]) -> Iterator[str]:
        tx, as_of, pending = self.tx, self.as_of, self.pending
        recorded = _recorded()
        users = tx.seen.users
        last = 0
        for row in rows:
            version = row[0]
            kind = recorded.get(row[1])
            if kind is not None and version == last + 1 and tx.patient is not None:
                text = self.inserted(kind, row, users)
                if text:
                    last = version
                    pending.append(row)
                    yield text
                    continue
                if text == "":
                    continue  # recorded after as_of: left out
            event = self.decode(self.oid, *row)
            if as_of is not None and event.timestamp > as_of:
                continue
            self.fold()
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
            time = _stamp(moment)
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
                + f"<SourceID>{ref}{_source(source) if source else ''}</SourceID></AuditRecord></ItemData>")
        try:
            items = kind.items(data, tail)
        except _Slow:
            return None
        users.add(user)
        return tx.container(kind.kind, row[0], "Insert", items)


_SOURCES: dict[str, str] = {}


def _source(source: str) -> str:
    found = _SOURCES.get(source)
    if found is None:
        found = _text(f" | {source}")
        if len(_SOURCES) < _KEEP:
            _SOURCES[source] = found
    return found
