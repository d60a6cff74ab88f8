"""The event mapper: stored rows to events and back, the library's :class:`Mapper` with the per-event
lookups done once per event type (:class:`FastMapper`). Its payloads are written and read by
:class:`pgf_events.transcodings.FastJSONTranscoder`; topics are stored in every event: never change them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    find_id_convertor,
)
from eventsourcing.utils import TopicError, get_topic, resolve_topic

from pgf_events import bound_cipher
from pgf_events.domain.errors import StoreError
from pgf_events.topic_names import STORED_TOPIC_NAMES

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
        parse = getattr(self.transcoder, "parse", None)
        self._payload(originator_id, originator_version, topic, stored_event.state,
                      parse if parse is not None else self.transcoder.decode)

    def _payload(self, originator_id: Any, originator_version: int, topic: str, state: bytes,
                 read: Callable[[bytes], Any]) -> Any:
        """A stored payload decrypted in its place, decompressed and ``read``; a failure worded as the library words it."""
        try:
            if self.cipher:
                state = bound_cipher.unseal(self.cipher, state, originator_id, originator_version, topic)
            if self.compressor:
                state = self.compressor.decompress(state)
            return read(state)
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
        event_state: dict[str, Any] = self._payload(originator_id, originator_version, topic, state,
                                                    self.transcoder.decode)
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
