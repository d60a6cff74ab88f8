"""SAE and SUSAR reporting clocks (docs/rules.md, "Safety"; ICH E2A, 21 CFR 312.32).

Clocks run from the recorded awareness time, never typed: investigator -> sponsor within
``sae_sponsor_hours``; a SUSAR (serious, related: possible/probable/definite, and unexpected)
-> regulator within ``susar_fatal_days`` calendar days when fatal or life-threatening, with the
complete report ``susar_fatal_followup_days`` later, otherwise within ``susar_other_days``.

Times: a naive datetime is UTC; a bare date means the start of that day (00:00 UTC), the
earliest reading, so a clock is never later than the record can justify.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta

import attrs

from pgf_events.domain.vocabulary import RELATEDNESS
from pgf_events.protocol import Protocol

SERIOUSNESS_CRITERIA = ("death", "life-threatening", "hospitalisation", "disability",
                        "congenital-anomaly", "important-medical-event")
RELATED = ("possible", "probable", "definite")
FATAL_OR_LIFE_THREATENING = ("death", "life-threatening")


@attrs.frozen
class Clock:
    """One reporting obligation: due time, when it was reported, and whether it was met.

    ``met`` is True when reported by the due time, False when reported late or still unreported
    after the due time as of ``as_of``, and None while pending.
    """

    name: str  # sponsor | regulator | regulator_complete
    due: datetime
    reported: datetime | None
    met: bool | None


@attrs.frozen
class SaeClocks:
    serious: bool
    susar: bool
    fatal_or_life_threatening: bool
    awareness: datetime
    sponsor: Clock | None
    regulator: Clock | None
    regulator_complete: Clock | None
    refs: tuple[str, ...]
    protocol_version: str


def as_utc(moment: date | datetime) -> datetime:
    """A date -> 00:00 UTC that day; a naive datetime -> UTC; an aware one is converted to UTC."""
    if not isinstance(moment, datetime):
        return datetime.combine(moment, time.min, tzinfo=UTC)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _clock(name: str, due: datetime, reported: date | datetime | None, as_of: date | datetime | None) -> Clock:
    done = None if reported is None else as_utc(reported)
    if done is not None:
        met: bool | None = done <= due
    else:
        met = False if as_of is not None and as_utc(as_of) > due else None
    return Clock(name, due, done, met)


def is_susar(seriousness: Collection[str], relatedness: str | None, expected: bool = False) -> bool:
    """Serious and related (possible, probable or definite) and unexpected."""
    return bool(seriousness) and relatedness in RELATED and not expected


def sae_clocks(
    awareness: date | datetime, params: Protocol, *, seriousness: Collection[str],
    relatedness: str | None = None, expected: bool = False,
    sponsor_reported: date | datetime | None = None, regulator_reported: date | datetime | None = None,
    complete_reported: date | datetime | None = None, as_of: date | datetime | None = None,
    refs: tuple[str, ...] = (),
) -> SaeClocks:
    """Due times of every clock an adverse event starts; no clock when it is not serious.

    ValueError for an unknown seriousness criterion or relatedness.
    """
    unknown = sorted(set(seriousness) - set(SERIOUSNESS_CRITERIA))
    if unknown:
        raise ValueError(f"unknown seriousness criterion {', '.join(unknown)}; "
                         f"expected one of {', '.join(SERIOUSNESS_CRITERIA)}")
    if relatedness is not None and relatedness not in RELATEDNESS:
        raise ValueError(f"unknown relatedness {relatedness!r}; expected one of {', '.join(RELATEDNESS)}")
    aware = as_utc(awareness)
    serious = bool(seriousness)
    fatal = any(c in FATAL_OR_LIFE_THREATENING for c in seriousness)
    susar = is_susar(seriousness, relatedness, expected)
    sponsor = regulator = complete = None
    if serious:
        sponsor = _clock("sponsor", aware + timedelta(hours=params.sae_sponsor_hours), sponsor_reported, as_of)
    if susar and fatal:
        initial = aware + timedelta(days=params.susar_fatal_days)
        regulator = _clock("regulator", initial, regulator_reported, as_of)
        complete = _clock("regulator_complete", initial + timedelta(days=params.susar_fatal_followup_days),
                          complete_reported, as_of)
    elif susar:
        regulator = _clock("regulator", aware + timedelta(days=params.susar_other_days), regulator_reported, as_of)
    return SaeClocks(serious, susar, fatal, aware, sponsor, regulator, complete, tuple(refs), params.version)
