"""The trial's protocol parameters: one frozen, versioned object.

Every rule reads its thresholds, windows and doses from a :class:`Protocol`, never from
literals, so a reviewer can re-derive any value from (events, protocol). The defaults are the
ones named in ``docs/rules.md`` (v2); a TOML file may override any of them
(``pgf --protocol FILE``). A file that does not name its own ``version`` gets its base version
suffixed with a digest of its overrides, so two different parameter sets never share a version.

Versions. ``NCT06171906-v2`` (the default) implements every "(v2)" rule of docs/rules.md.
``NCT06171906-v1`` is the same code with the v1 parameter values where v1 behaviour was (or is now)
a parameter: the fixed 7-day platelet window with 3 counts (``plt_rule = "window"``), no NR on an
early exit, baseline-met lineages counted as responders, relapse censored at the last date known
alive and from-transplant survival without delayed entry. Select it with ``pgf --protocol v1`` or
``base = "v1"`` in a TOML file (further keys override it).
"""

from __future__ import annotations

import hashlib
import json
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import validators as v

from pgf_events.domain.errors import ProtocolError

BASE_VERSION = "NCT06171906-v2"
V1_VERSION = "NCT06171906-v1"


def _positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, not {value!r}")


def _non_negative(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, not {value!r}")


def _zones(value: Any) -> tuple[tuple[str, str], ...]:
    """``{site: zone}`` (a TOML table) or pairs -> sorted pairs, so the protocol stays hashable."""
    items = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((str(site), str(zone)) for site, zone in items))


def _known_zones(instance: Any, attribute: attrs.Attribute, value: tuple[tuple[str, str], ...]) -> None:
    for site, zone in value:
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"site_timezones: {zone!r} (site {site}) is not an IANA time zone") from None
    if "*" not in dict(value):
        raise ValueError('site_timezones needs a "*" entry: the zone of every site not listed')


_int: list[Any] = [v.instance_of(int), _non_negative]
_num: list[Any] = [v.instance_of((int, float)), _non_negative]


def lab_schedule(text: str) -> tuple[tuple[int, int, int], ...]:
    """Parse ``"2/7 until 57; 1/7 until 100; 1/30 until 365"``: (count, per days, until MSC day), in order.

    Each segment asks for at least ``count`` blood counts (ANC, PLT and Hb) in every ``per`` days
    up to that MSC day (D1 = the first infusion); ValueError for anything else.
    """
    out: list[tuple[int, int, int]] = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        try:
            rate, until = (x.strip() for x in part.split("until"))
            count, per = (int(x) for x in rate.split("/"))
            end = int(until)
        except ValueError:
            raise ValueError(f"lab_schedule part {part!r} must look like '2/7 until 57'") from None
        if count < 1 or per < 1 or (out and end <= out[-1][2]) or end < 1:
            raise ValueError(f"lab_schedule part {part!r}: counts and days must be positive, days increasing")
        out.append((count, per, end))
    return tuple(out)


def _schedule(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    lab_schedule(value)


@attrs.frozen(kw_only=True)
class Protocol:
    """All named parameters of the MSC-for-PGF protocol, with docs/rules.md defaults."""

    trial: str = attrs.field(default="NCT06171906", validator=v.instance_of(str))
    version: str = attrs.field(default=BASE_VERSION, validator=v.instance_of(str))

    # Eligibility (IN2 age window, IN3 performance status and prognosis).
    age_min_years: int = attrs.field(default=18, validator=_int)
    age_max_years: int = attrs.field(default=60, validator=_int)
    kps_min_exclusive: int = attrs.field(default=60, validator=_int)
    expected_survival_min_months_exclusive: float = attrs.field(default=3, validator=_num)

    # Dosing: 4 weekly doses of 1e6 cells/kg anchored to MSC D1.
    planned_doses: int = attrs.field(default=4, validator=[v.instance_of(int), _positive])
    dose_cells_per_kg: float = attrs.field(default=1e6, validator=[v.instance_of((int, float)), _positive])
    dose_interval_days: int = attrs.field(default=7, validator=[v.instance_of(int), _positive])
    dose_window_days: int = attrs.field(default=2, validator=_int)
    min_dose_gap_days: int = attrs.field(default=5, validator=_int)
    dose_tolerance: float = attrs.field(default=0.10, validator=_num)

    # Endpoints.
    endpoint_anchor: str = attrs.field(
        default="first_infusion", validator=v.in_(("first_infusion", "transplant"))
    )
    consecutive_mode: str = attrs.field(
        default="measurements", validator=v.in_(("measurements", "calendar_days"))
    )
    anc_threshold: float = attrs.field(default=0.5, validator=_num)
    anc_comparator: str = attrs.field(default=">", validator=v.in_((">", ">=")))
    anc_consecutive_days: int = attrs.field(default=3, validator=[v.instance_of(int), _positive])
    hb_threshold: float = attrs.field(default=70, validator=_num)
    rbc_transfusion_free_days: int = attrs.field(default=28, validator=_int)
    plt_cr_threshold: float = attrs.field(default=50, validator=_num)
    plt_pr_threshold: float = attrs.field(default=20, validator=_num)
    # v2 sustained run ("sustained_run") or the v1 fixed window ("window", plt_window_days and
    # min_counts_in_window).
    plt_rule: str = attrs.field(default="sustained_run", validator=v.in_(("sustained_run", "window")))
    plt_min_counts: int = attrs.field(default=2, validator=[v.instance_of(int), _positive])
    plt_max_gap_days: int = attrs.field(default=14, validator=[v.instance_of(int), _positive])
    plt_sustain_days: int = attrs.field(default=7, validator=[v.instance_of(int), _positive])
    plt_window_days: int = attrs.field(default=7, validator=[v.instance_of(int), _positive])
    plt_transfusion_free_before_days: int = attrs.field(default=7, validator=_int)
    min_counts_in_window: int = attrs.field(default=3, validator=[v.instance_of(int), _positive])
    nr_evaluation_day: int = attrs.field(default=56, validator=_int)
    # Died or withdrew before the evaluation day without CR/PR: NR (v2, intention to treat) or pending (v1).
    nr_on_early_exit: bool = attrs.field(default=True, validator=v.instance_of(bool))
    # A lineage already recovered on the data up to D1: not evaluable (v2) or a responder on D1 (v1).
    baseline_met_not_evaluable: bool = attrs.field(default=True, validator=v.instance_of(bool))

    # Survival.
    survival_origin: str = attrs.field(
        default="first_infusion", validator=v.in_(("first_infusion", "transplant"))
    )
    survival_horizon_days: int = attrs.field(default=365, validator=[v.instance_of(int), _positive])
    # Relapse incidence censored at the last disease assessment (v2) or the last date known alive (v1).
    relapse_censor: str = attrs.field(default="last_disease_assessment",
                                      validator=v.in_(("last_disease_assessment", "last_known_alive")))
    # From-transplant estimates enter patients at MSC D1 (v2, left truncation) or at day 0 (v1).
    transplant_delayed_entry: bool = attrs.field(default=True, validator=v.instance_of(bool))

    # Safety reporting clocks (ICH E2A, 21 CFR 312.32).
    sae_sponsor_hours: int = attrs.field(default=24, validator=[v.instance_of(int), _positive])
    susar_fatal_days: int = attrs.field(default=7, validator=[v.instance_of(int), _positive])
    susar_fatal_followup_days: int = attrs.field(default=8, validator=[v.instance_of(int), _positive])
    susar_other_days: int = attrs.field(default=15, validator=[v.instance_of(int), _positive])
    # Site time (v2): a time typed without an offset is local time at the patient's site; "*" is
    # every site not listed (both Chongqing sites: China Standard Time).
    site_timezones: tuple[tuple[str, str], ...] = attrs.field(
        default=(("*", "Asia/Shanghai"),), converter=_zones, validator=_known_zones)

    # Monitoring (pgf due, pgf report sdv): the blood-count schedule (see lab_schedule).
    lab_schedule: str = attrs.field(default="2/7 until 57; 1/7 until 100; 1/30 until 365",
                                    validator=[v.instance_of(str), _schedule])

    # Audit exception reports.
    late_entry_days: int = attrs.field(default=7, validator=_int)
    endpoint_edit_window_days: int = attrs.field(default=7, validator=_int)

    def __attrs_post_init__(self) -> None:
        if self.age_min_years > self.age_max_years:
            raise ValueError("age_min_years must not exceed age_max_years")
        if self.plt_pr_threshold > self.plt_cr_threshold:
            raise ValueError("plt_pr_threshold must not exceed plt_cr_threshold")

    def site_zone(self, site: str | None) -> zoneinfo.ZoneInfo:
        """The IANA zone of ``site`` (the ``*`` entry for a site not listed)."""
        zones = dict(self.site_timezones)
        return zoneinfo.ZoneInfo(zones.get(site or "*", zones["*"]))

    @classmethod
    def preset(cls, name: str) -> Protocol:
        """A named protocol version: ``v2`` (the default) or ``v1``; ProtocolError otherwise."""
        if name not in PRESETS:
            raise ProtocolError(f"unknown protocol version {name!r}; expected one of {', '.join(PRESETS)}")
        return cls(**PRESETS[name])

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @property
    def digest(self) -> str:
        """A short SHA-256 of every parameter: two protocols with equal digests compute alike."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @classmethod
    def from_mapping(cls, overrides: dict[str, Any]) -> Protocol:
        known = {a.name for a in attrs.fields(cls)} | {"base"}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ProtocolError(f"unknown protocol parameter(s): {', '.join(unknown)}")
        values = dict(overrides)
        base = values.pop("base", "v2")
        if not isinstance(base, str) or base not in PRESETS:
            raise ProtocolError(f"unknown protocol base {base!r}; expected one of {', '.join(PRESETS)}")
        preset = PRESETS[base]
        if "version" not in values and values:
            canonical = json.dumps(values, sort_keys=True, separators=(",", ":"))
            digest = hashlib.sha256(canonical.encode()).hexdigest()[:8]
            values["version"] = f"{preset.get('version', BASE_VERSION)}+{digest}"
        values = {**preset, **values}
        try:
            return cls(**values)
        except (TypeError, ValueError) as e:
            raise ProtocolError(_explain(e)) from None

    @classmethod
    def from_toml(cls, path: str | Path) -> Protocol:
        """Read overrides from a TOML file of ``name = value`` lines (a ``[protocol]`` table works too)."""
        import tomllib  # noqa: PLC0415 - only --protocol needs the TOML parser

        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise ProtocolError(f"protocol file {path} does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise ProtocolError(f"protocol file {path} is not valid TOML: {e}") from None
        if set(data) == {"protocol"} and isinstance(data["protocol"], dict):
            data = data["protocol"]
        return cls.from_mapping(data)


TYPE_WORDS = {"int": "a whole number", "float": "a number", "str": "text", "bool": "true or false"}


def _explain(error: Exception) -> str:
    """One line naming the parameter, what it must be and what it got (attrs' errors carry an Attribute)."""
    args = error.args
    if len(args) >= 3 and isinstance(args[1], attrs.Attribute):
        attribute, value = args[1], args[-1]
        if isinstance(args[2], (tuple, list)) and not isinstance(args[2], type) and all(
                isinstance(o, str) for o in args[2]):
            expected = f"one of {', '.join(args[2])}"
        else:
            expected = TYPE_WORDS.get(str(attribute.type), str(attribute.type))
        return f"protocol parameter {attribute.name} must be {expected}, not {value!r}"
    return f"invalid protocol parameter: {args[0] if args else error}"


PRESETS: dict[str, dict[str, Any]] = {
    "v2": {},
    "v1": {"version": V1_VERSION, "plt_rule": "window", "nr_on_early_exit": False,
           "baseline_met_not_evaluable": False, "relapse_censor": "last_known_alive",
           "transplant_delayed_entry": False},
}

DEFAULT_PROTOCOL = Protocol()
