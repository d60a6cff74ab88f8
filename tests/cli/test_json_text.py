"""``--json`` text (:func:`pgf_events.formatting.to_json`): orjson writes what json.dumps writes, byte for
byte, and every document it might write differently goes through json.dumps (issue 18: a 5,000-row
report spent 0.1 s in the standard library's pure-Python indenting encoder)."""

from __future__ import annotations

import json
import math
import random
import string
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from pgf_events import formatting
from pgf_events.formatting import json_default, to_json

TEXT = string.printable + "é\u2028\u2029\x00\x1f\x7f\U0001f600\"\\/<>&"


def reference(obj: Any) -> str:
    return json.dumps(obj, default=json_default, ensure_ascii=False, indent=2)


def leaf(rng: random.Random) -> Any:
    return rng.choice([
        lambda: "".join(rng.choice(TEXT) for _ in range(rng.randrange(10))),
        lambda: rng.randint(-(10 ** 20), 10 ** 20), lambda: rng.randint(-100, 100), lambda: 2 ** 64 - 1 + rng.randrange(3),
        lambda: rng.choice([True, False, None]), lambda: rng.uniform(-1e3, 1e3), lambda: round(rng.uniform(0, 100), 2),
        lambda: 10 ** rng.uniform(-8, 20) * rng.choice([1, -1]),
        lambda: rng.choice([0.0, -0.0, math.inf, -math.inf, math.nan, 1e16, 1e-4, 9.999e-5, 5e-324, 1.7976931348623157e308]),
        lambda: date(2020, 1, 1) + timedelta(days=rng.randrange(3000)),
        lambda: datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.random() * 1e8),
        lambda: datetime(2020, 1, 1) + timedelta(seconds=rng.random() * 1e6),
        lambda: datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        lambda: "\ud800 lone surrogate",
    ])()


def document(rng: random.Random, depth: int = 0) -> Any:
    r = rng.random()
    if depth > 4 or r < 0.45:
        return leaf(rng)
    if r < 0.65:
        return [document(rng, depth + 1) for _ in range(rng.randrange(5))]
    if r < 0.72:
        return tuple(document(rng, depth + 1) for _ in range(rng.randrange(4)))
    if r < 0.77:
        return {rng.randrange(6) for _ in range(rng.randrange(4))}
    if r < 0.82:  # keys json turns into text, orjson refuses
        return {rng.choice([1, "a", 2.5, None, True]): document(rng, depth + 1) for _ in range(rng.randrange(3))}
    return {"".join(rng.choice("abcé\n") for _ in range(3)): document(rng, depth + 1) for _ in range(rng.randrange(6))}


def outcome(f: Any, obj: Any) -> Any:
    try:
        return f(obj)
    except (TypeError, ValueError, RecursionError) as e:  # the same refusal either way
        return type(e).__name__


def test_to_json_writes_what_json_dumps_writes() -> None:
    rng = random.Random(18)
    fast = 0
    for _ in range(20_000):
        obj = document(rng)
        assert outcome(to_json, obj) == outcome(reference, obj), repr(obj)[:500]
        fast += formatting._orjson_alike(obj, 0)
    assert fast > 10_000  # most documents took orjson's way, so both ways were compared


def test_what_only_json_dumps_writes_goes_its_way() -> None:
    class Text(str):
        pass

    deep: Any = []
    for _ in range(300):
        deep = [deep]
    for obj in ({"x": 1e-05}, {"x": 1e16}, [math.nan], {1: "a"}, [Text("a")], {"k": {1, 2.5e-7}}, [2 ** 64], deep,
                {"when": datetime(2025, 3, 4, 9, 30, tzinfo=UTC), "day": date(2025, 3, 4), "pair": (1, "b")}):
        assert to_json(obj) == reference(obj)
    assert not formatting._orjson_alike({"x": 1e-05}, 0) and not formatting._orjson_alike([Text("a")], 0)
    assert formatting._orjson_alike({"when": datetime(2025, 3, 4, tzinfo=UTC), "n": [1, 2.5, None]}, 0)
