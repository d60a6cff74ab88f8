"""How value objects are persisted. Transcoding names are stored in every event: never change them.

:class:`FastJSONTranscoder` writes and reads the library's JSON format (compact separators, UTF-8,
custom types as ``{"_type_": NAME, "_data_": ...}``) with orjson instead of the ``json`` module:
the same documents, three times faster either way. Stores written by the standard transcoder load
unchanged, and what it writes loads with the standard transcoder (tests/store/test_transcoding.py
checks both, and that the bytes are identical for every kind of event).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import attrs
import orjson
from eventsourcing.persistence import (
    DatetimeAsISO,
    JSONTranscoder,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Transcoding,
    find_id_convertor,
)
from eventsourcing.utils import TopicError, get_topic, resolve_topic

from pgf_events import bound_cipher
from pgf_events.domain.errors import StoreError
from pgf_events.topic_names import STORED_TOPIC_NAMES

if TYPE_CHECKING:
    from pgf_events.domain import values as vo


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class RecordAsDict(Transcoding):
    """One transcoding per record class, named ``pgf.<kind>``; decoding never re-runs validation."""

    def __init__(self, cls: type[vo.Record]):
        from pgf_events.domain.entries import restore  # noqa: PLC0415 - the domain, loaded on first use

        self.type = cls
        self.name = f"pgf.{cls.KIND}"
        self._tuples = any("tuple" in str(a.type) for a in attrs.fields(cls))  # only AdverseEvent.serious
        self._restore = restore

    def encode(self, obj: vo.Record) -> dict[str, Any]:
        values = obj.as_input()
        if self._tuples:
            return {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()}
        return values

    def decode(self, data: dict[str, Any]) -> vo.Record:
        return self._restore(self.type, data)


# date and datetime go to ``default`` (our transcodings), as they do with the json module. Other
# types orjson writes natively (UUID, dataclasses) would bypass the transcodings: events carry none,
# and the byte-identity test fails if one ever does.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME


class FastJSONTranscoder(JSONTranscoder):
    """The library's JSON transcoder, format unchanged, with orjson doing the parsing and printing.

    Reading, each typed value goes straight to the function that rebuilds it (``date.fromisoformat``,
    a record class's restorer), looked up once by transcoding name: the result is what the
    transcoding's ``decode`` returns, two calls fewer per value.

    Transcodings given to :meth:`register_later` (the domain's records) are registered when a value
    no registered transcoding knows is first met, reading or writing: a command that never reads or
    writes a record (``pgf audit verify``) never imports the domain that defines them.
    """

    def __init__(self) -> None:
        super().__init__()
        self._decoders: dict[str, Callable[[Any], Any]] = {}
        self._encoders: dict[type, Callable[[Any], dict[str, Any]]] = {}
        self._later: list[Callable[[], Iterable[Transcoding]]] = []
        self._all_registered = True  # nothing waits in _later
        self._registering = threading.Lock()

    def register(self, transcoding: Transcoding) -> None:
        super().register(transcoding)
        self._decoders[transcoding.name] = _direct_decoder(transcoding)
        self._encoders[transcoding.type] = _direct_encoder(transcoding)

    def register_later(self, transcodings: Callable[[], Iterable[Transcoding]]) -> None:
        """Register what ``transcodings()`` returns on first meeting a value of an unregistered type or name."""
        with self._registering:
            self._later.append(transcodings)
            self._all_registered = False

    def _register_waiting(self) -> bool:
        """Register the transcodings :meth:`register_later` was given; False if none were waiting (the
        caller's value is then of a type or name no transcoding knows, as the library reports)."""
        if self._all_registered:
            return False
        with self._registering:  # another thread may be registering them: wait until it is done
            while self._later:
                for transcoding in list(self._later[0]()):  # a failure leaves them waiting (and raises again)
                    self.register(transcoding)
                self._later.pop(0)
            self._all_registered = True
        return True

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=self._encode_typed, option=_ORJSON_OPTIONS)

    def _encode_typed(self, o: Any) -> dict[str, Any]:
        """The library's ``_encode_obj`` (``{"_type_": NAME, "_data_": ...}``), one lookup per value."""
        encode = self._encoders.get(type(o))
        if encode is None and self._register_waiting():
            encode = self._encoders.get(type(o))
        return encode(o) if encode is not None else self._encode_obj(o)

    def _encode_obj(self, o: Any) -> dict[str, Any]:
        if type(o) not in self.types:
            self._register_waiting()
        return super()._encode_obj(o)

    def _decode_obj(self, d: dict[str, Any]) -> Any:
        if not self._all_registered and len(d) == 2 and "_data_" in d and isinstance(d.get("_type_"), str) \
                and d["_type_"] not in self.names:
            self._register_waiting()
        return super()._decode_obj(d)

    def _decode_late(self, value: dict[str, Any]) -> Any:
        """A typed value whose transcoding is not registered (yet): registered now if it waits in
        :meth:`register_later`, else decoded (or refused) by the library."""
        if self._register_waiting():
            decode = self._decoders.get(value["_type_"])
            if decode is not None:
                return decode(value["_data_"])
        return self._decode_obj(value)

    def decode(self, data: bytes) -> Any:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:  # e.g. NaN, which only the json module accepts: read it that way
            return super().decode(data)
        return self._revive(obj)

    @staticmethod
    def parse(data: bytes) -> Any:
        """The JSON document ``data`` holds, typed values left as ``{"_type_", "_data_"}`` (what
        :meth:`decode` reads before reviving them): raises as it does when ``data`` is no JSON."""
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return json.loads(data.decode("utf8"))

    def _revive(self, obj: Any) -> Any:
        """Turn ``{"_type_", "_data_"}`` objects back into values, innermost first (like an object_hook)."""
        if type(obj) is list:
            return [self._revive(v) if type(v) is dict or type(v) is list else v for v in obj]
        decoders = self._decoders
        for key, value in obj.items():
            kind = type(value)
            if kind is dict:
                # A typed value is decoded here rather than in a call of its own: most events are a
                # flat dict of a timestamp, a record and strings, so this halves the calls per event.
                if len(value) == 2 and "_type_" in value and "_data_" in value:
                    data = value["_data_"]
                    if type(data) is dict or type(data) is list:
                        value["_data_"] = data = self._revive(data)
                    decode = decoders.get(value["_type_"])
                    # replacing a value while iterating is allowed
                    obj[key] = decode(data) if decode is not None else self._decode_late(value)
                else:
                    obj[key] = self._revive(value)
            elif kind is list:
                obj[key] = self._revive(value)
        if len(obj) == 2 and "_type_" in obj and "_data_" in obj:
            decode = decoders.get(obj["_type_"])
            return decode(obj["_data_"]) if decode is not None else self._decode_late(obj)
        return obj


def _direct_decoder(transcoding: Transcoding) -> Callable[[Any], Any]:
    """What rebuilds a value of this transcoding from its ``_data_``: the transcoding's own ``decode``,
    or for the ones whose ``decode`` only calls one function, that function."""
    if type(transcoding) is DatetimeAsISO:
        return datetime.fromisoformat  # a non-string raises TypeError, as the library's transcoding asserts
    if type(transcoding) is DateAsISO:
        return date.fromisoformat
    if type(transcoding) is RecordAsDict:
        from pgf_events.domain.entries import restorer  # noqa: PLC0415 - registered with the domain's records

        return restorer(transcoding.type)
    return transcoding.decode


def _direct_encoder(transcoding: Transcoding) -> Callable[[Any], dict[str, Any]]:
    """What the library's ``_encode_obj`` makes of a value of this transcoding's type, with the
    transcoding's ``encode`` inlined where it only calls ``isoformat`` or lists a record's fields."""
    name = transcoding.name
    if type(transcoding) is DatetimeAsISO:
        # orjson prints a UTC time exactly as isoformat does (every year, with and without microseconds:
        # tests/store/test_transcoding.py), in a third of the time; every event's timestamp is one.
        return lambda o: {"_type_": name, "_data_": orjson.dumps(o)[1:-1].decode() if o.tzinfo is UTC
                          else o.isoformat()}
    if type(transcoding) is DateAsISO:
        return lambda o: {"_type_": name, "_data_": o.isoformat()}
    if type(transcoding) is RecordAsDict and not transcoding._tuples:
        names = transcoding.type.field_names()  # type: ignore[attr-defined] # a Record class
        return lambda o: {"_type_": name, "_data_": {n: getattr(o, n) for n in names}}
    encode = transcoding.encode
    return lambda o: {"_type_": name, "_data_": encode(o)}


# Payload fields naming who acted; on PostgreSQL the database's recorded_by replaces them on read.
ACTOR_FIELDS = ("recorded_by", "granted_by", "revoked_by", "opened_by")


class FastMapper(Mapper[Any]):
    """The library's mapper with the per-event lookups done once per event type.

    ``decode`` takes the stored fields directly, so readers that select rows themselves (projection
    replays) need not build a ``StoredEvent`` for each. Behaviour is the library's: decrypt,
    decompress, transcode, convert the stream id, upcast old class versions.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._classes: dict[str, tuple[type, int]] = {}
        self._topics: dict[type, tuple[str, int]] = {}
        self._memo: dict[tuple[Any, ...], Any] | None = None
        self._memo_size = 0
        self._layouts: dict[type, tuple[str, int, tuple[tuple[str, Any], ...], frozenset[str], frozenset[str]]] = {}

    def remember(self, size: int) -> None:
        """Keep up to ``size`` decoded events (a long-running process: ``pgf daemon``, ``pgf shell``).

        Sound because a stored event never changes (append-only, under triggers) and the key is the
        whole stored row: a row that did change (tampering) is decoded again, as it is stored now.
        """
        self._memo, self._memo_size = {}, size

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        """The library's, except that an encrypted payload is bound to its stream, version and topic."""
        if not self.cipher:
            return self._to_stored(domain_event)
        cipher, self.cipher = self.cipher, None
        try:
            stored = super().to_stored_event(domain_event)
        finally:
            self.cipher = cipher
        state = bound_cipher.seal(cipher, stored.state, stored.originator_id, stored.originator_version, stored.topic)
        return StoredEvent(stored.originator_id, stored.originator_version, stored.topic, state)

    def stored_fields(self, cls: type, originator_id: UUID, originator_version: int,
                      fields: dict[str, Any]) -> StoredEvent | None:
        """What :meth:`to_stored_event` stores for ``cls(originator_id=..., originator_version=..., **fields)``,
        without making the event (a bulk import's history-free records); None when the store encrypts or
        compresses (then make the event). The payload is the event's fields in its dataclass order, a
        field left out taking its default, as the event's ``__init__`` sets them
        (``tests/app/test_bulk_property.py`` compares the bytes with those of the event itself)."""
        if self.cipher or self.compressor:
            return None
        try:
            topic, class_version, layout, required, names = self._layouts[cls]
        except KeyError:
            layout = tuple((f.name, f.default) for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                           if f.name not in ("originator_id", "originator_version"))
            required = frozenset(n for n, d in layout if d is dataclasses.MISSING)
            names = frozenset(n for n, _ in layout)
            topic, class_version = get_topic(cls), getattr(cls, "class_version", 1)
            self._layouts[cls] = (topic, class_version, layout, required, names)
        if not required <= fields.keys() <= names:  # what the event's __init__ would refuse
            raise TypeError(f"{cls.__name__} is made with {sorted(required)} and may take {sorted(names)}, "
                            f"not {sorted(fields)}")
        state = {name: fields.get(name, default) for name, default in layout}
        if class_version > 1:
            state["class_version"] = class_version
        # StoredEvent is a frozen dataclass: its __init__ sets each field through object.__setattr__ (half
        # the cost of making one); its four fields are set at once, as _decode does for an event.
        stored: StoredEvent = object.__new__(StoredEvent)
        object.__setattr__(stored, "__dict__", {"originator_id": originator_id, "originator_version": originator_version,
                                               "topic": topic, "state": self.transcoder.encode(state)})
        return stored

    def _to_stored(self, domain_event: Any) -> StoredEvent:
        """The library's ``to_stored_event`` (no cipher), its topic and class version looked up once per class."""
        cls = type(domain_event)
        try:
            topic, class_version = self._topics[cls]
        except KeyError:
            topic, class_version = self._topics.setdefault(cls, (get_topic(cls), getattr(cls, "class_version", 1)))
        event_state = dict(vars(domain_event))
        originator_id = event_state.pop("originator_id")
        originator_version = event_state.pop("originator_version")
        if class_version > 1:
            event_state["class_version"] = class_version
        stored_state = self.transcoder.encode(event_state)
        if self.compressor:
            stored_state = self.compressor.compress(stored_state)
        return StoredEvent(originator_id=originator_id, originator_version=originator_version, topic=topic,
                           state=stored_state)

    def to_domain_event(self, stored_event: Any) -> Any:
        return self.decode(stored_event.originator_id, stored_event.originator_version, stored_event.topic,
                           stored_event.state, getattr(stored_event, "recorded_by", None),
                           getattr(stored_event, "recorded_at", None))

    def decoder(self) -> Callable[..., Any]:
        """:meth:`decode` itself, or without its memo's indirection when nothing is remembered (a
        replay decodes every event once: one call fewer each)."""
        return self.decode if self._memo is not None else self._decode

    def decode(self, originator_id: Any, originator_version: int, topic: str, state: bytes,
               recorded_by: str | None = None, recorded_at: datetime | None = None) -> Any:
        """``recorded_by``/``recorded_at``: the database's stamps (PostgreSQL), which replace the
        client-written ones in the payload: who and when are what the notary says."""
        if self._memo is None:
            return self._decode(originator_id, originator_version, topic, state, recorded_by, recorded_at)
        key = (originator_id, originator_version, topic, state, recorded_by, recorded_at)
        event = self._memo.get(key)
        if event is None:
            event = self._decode(originator_id, originator_version, topic, state, recorded_by, recorded_at)
            if len(self._memo) >= self._memo_size:
                self._memo.clear()
            self._memo[key] = event
        return event

    def _class_of(self, topic: str) -> tuple[type, int]:
        """The event class a stored topic names, and its class version (kept for the next event)."""
        try:
            cls = resolve_topic(topic)
        except TopicError:
            # A stored topic whose class has moved resolves once every stored name is registered
            # where its class now lives (pgf_events.topics, which imports the whole domain).
            from pgf_events import topics  # noqa: F401, PLC0415

            try:
                cls = resolve_topic(topic)
            except TopicError:
                raise StoreError(
                    f"the store holds events of type {topic!r}, which this version of pgf does not know "
                    "(written by another version of the program?); nothing was changed"
                ) from None
        return self._classes.setdefault(topic, (cls, getattr(cls, "class_version", 1)))

    def opens(self, stored_event: Any) -> None:
        """What decoding ``stored_event`` checks that needs no domain class (whether a store opens with
        the key given, :meth:`pgf_events.application.TrialConduct._check_cipher`): its topic is one this
        version knows, and its payload decrypts in its place, decompresses and is JSON. Raises what
        :meth:`decode` raises for each; its typed values and class are left unread (``pgf audit
        verify`` never imports the patient domain)."""
        topic, originator_id, originator_version = stored_event.topic, stored_event.originator_id, \
            stored_event.originator_version
        if topic not in STORED_TOPIC_NAMES and topic not in self._classes:
            self._class_of(topic)
        state = stored_event.state
        try:
            if self.cipher:
                state = bound_cipher.unseal(self.cipher, state, originator_id, originator_version, topic)
            if self.compressor:
                state = self.compressor.decompress(state)
            parse = getattr(self.transcoder, "parse", None)
            parse(state) if parse is not None else self.transcoder.decode(state)
        except bound_cipher.MisplacedCiphertext:
            raise
        except Exception as e:
            raise MapperDeserialisationError(
                f"Failed to deserialise state of stored event with topic '{topic}', "
                f"originator_id '{originator_id}' and originator_version {originator_version}: {e}"
            ) from e

    def _decode(self, originator_id: Any, originator_version: int, topic: str, state: bytes,
                recorded_by: str | None = None, recorded_at: datetime | None = None) -> Any:
        try:
            cls, class_version = self._classes[topic]
        except KeyError:
            cls, class_version = self._class_of(topic)
        try:
            if self.cipher:
                state = bound_cipher.unseal(self.cipher, state, originator_id, originator_version, topic)
            if self.compressor:
                state = self.compressor.decompress(state)
            event_state: dict[str, Any] = self.transcoder.decode(state)
        except bound_cipher.MisplacedCiphertext:
            raise
        except Exception as e:
            raise MapperDeserialisationError(
                f"Failed to deserialise state of stored event with topic '{topic}', "
                f"originator_id '{originator_id}' and originator_version {originator_version}: {e}"
            ) from e
        if type(originator_id) is not UUID:
            originator_id = find_id_convertor(cls, type(originator_id))(originator_id)  # type: ignore[arg-type]
        event_state["originator_id"] = originator_id
        event_state["originator_version"] = originator_version
        if recorded_at is not None:
            event_state["timestamp"] = recorded_at.astimezone(UTC)
        if recorded_by is not None:
            for key in ACTOR_FIELDS:
                if key in event_state:
                    event_state[key] = recorded_by
        from_version = event_state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
            from_version += 1
        domain_event: Any = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", event_state)
        return domain_event


def record_transcodings() -> list[Transcoding]:
    """One ``pgf.<kind>`` transcoding per record kind (imports the domain that defines them)."""
    from pgf_events.domain.kinds import KINDS  # noqa: PLC0415 - the patient domain: only when records are met

    return [RecordAsDict(kind.record) for kind in KINDS.values()]


def register_all(transcoder: JSONTranscoder) -> None:
    """Register pgf's transcodings with ``transcoder`` now."""
    transcoder.register(DateAsISO())
    for transcoding in record_transcodings():
        transcoder.register(transcoding)


def register_on_first_use(transcoder: JSONTranscoder) -> None:
    """:func:`register_all`, the records' transcodings left until a record is first read or written
    when ``transcoder`` can wait for them (a :class:`FastJSONTranscoder`); the same names and encodings."""
    if not isinstance(transcoder, FastJSONTranscoder):
        register_all(transcoder)
        return
    transcoder.register(DateAsISO())
    transcoder.register_later(record_transcodings)
