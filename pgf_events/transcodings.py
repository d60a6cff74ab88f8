"""How value objects are persisted. Transcoding names are stored in every event: never change them.

:class:`FastJSONTranscoder` writes and reads the library's JSON format (compact separators, UTF-8,
custom types as ``{"_type_": NAME, "_data_": ...}``) with orjson instead of the ``json`` module:
the same documents, three times faster either way. Stores written by the standard transcoder load
unchanged, and what it writes loads with the standard transcoder (tests/store/test_transcoding.py
checks both, and that the bytes are identical for every kind of event).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import attrs
import orjson
from eventsourcing.persistence import (
    DatetimeAsISO,
    JSONTranscoder,
    Transcoding,
)

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
