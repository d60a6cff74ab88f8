"""One change of one projection, as the feed hands it out, and the feed position it sits at.

A feed position is derived from the event log, never from a counter of its own: the change row of
``pgf_changes`` names the notification id of the event it reflects, and one notification belongs
to one subject, so ``notification_id * STRIDE + FEED_PROJECTIONS.index(projection)`` is unique, strictly
increasing in the order the feed emits, and the same in every process and after every rebuild.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from pgf_events.projections.query_feed import FEED_PROJECTIONS

# Room for this many projections per notification: positions stay stable while PROJECTIONS grows.
STRIDE = 8


class FeedLayoutError(RuntimeError):
    """More projections than a feed position leaves room for: positions would collide."""


def check_stride(projections: tuple[str, ...], stride: int = STRIDE) -> None:
    """Refuse a projection list that does not fit the positions (a real check: asserts vanish under -O)."""
    if len(projections) > stride:
        raise FeedLayoutError(
            f"{len(projections)} projections do not fit the change feed's STRIDE of {stride}: positions "
            "(notification_id * STRIDE + projection index) would collide; raise STRIDE and migrate stored positions"
        )


check_stride(FEED_PROJECTIONS)


def feed_position(notification_id: int, projection: str) -> int:
    return notification_id * STRIDE + FEED_PROJECTIONS.index(projection)


def split_position(position: int) -> tuple[int, int]:
    """(notification id, projection index) of a feed position."""
    return divmod(position, STRIDE)


@attrs.frozen
class Change:
    """A projection's new derived values for one subject, after the event ``event_ref``.

    ``kind`` is ``insert`` (the subject's first row in that projection) or ``update``; ``data`` is
    the whole new row (not a diff); ``recorded_at`` is the event's recorded time (UTC, ``...Z``).
    """

    position: int
    projection: str
    subject: str
    kind: str
    data: dict[str, Any]
    event_ref: str
    recorded_at: str

    @property
    def notification_id(self) -> int:
        return split_position(self.position)[0]

    @property
    def protocol_version(self) -> str | None:
        return self.data.get("protocol_version")

    def as_json(self) -> dict[str, Any]:
        return {
            "position": self.position, "projection": self.projection, "subject": self.subject, "kind": self.kind,
            "event_ref": self.event_ref, "recorded_at": self.recorded_at, "protocol_version": self.protocol_version,
            "data": self.data,
        }

    def to_line(self) -> str:
        """One JSON Lines record (no newline)."""
        return json.dumps(self.as_json(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Change:
        return cls(position=doc["position"], projection=doc["projection"], subject=doc["subject"], kind=doc["kind"],
                   data=doc["data"], event_ref=doc["event_ref"], recorded_at=doc["recorded_at"])
