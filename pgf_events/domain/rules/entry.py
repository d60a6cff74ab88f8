"""Rules at entry (clinical-rules.md, "Rules at entry: impossible vs deviation") as pure functions.

A patient's stream is a sequence of :class:`Item` (reference, effective record, the deviation
kinds acknowledged on it) in recording order; the first item is the registration. Entering record
k is checked against the records before it (:func:`check_entry`); a whole stream is checked by
checking every record against its prefix (:func:`check_stream`). So a stream passes the whole-stream
check exactly when entering its records one by one, with the same acknowledgements, would be
accepted: the law corrections and voids are held to (a change is accepted only if the stream with
it applied passes as if newly entered).

Each :class:`Finding` is **impossible** (refused whatever anyone says) or a **deviation** (a fact
the protocol did not want, accepted only when acknowledged with ``--deviation``). It names the
record it belongs to (``ref``), the clinical date, the related records and a sentence for the
coordinator. Records are duck-typed (``KIND``, ``dates()``, ``clinical_dates()`` and their fields),
so this module depends on nothing but the protocol parameters and the other pure rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

import attrs

from pgf_events.domain.rules import eligibility
from pgf_events.protocol import Protocol

# Deviation kinds (stored on the events that acknowledge them: never rename).
DOSE_GAP = "dose_gap"  # an infusion < min_dose_gap_days from another
DOSE_WINDOW = "dose_window"  # an infusion outside its dose's window (early or late)
EXTRA_DOSE = "extra_dose"  # an infusion beyond the planned doses (a fifth dose)
DOSE_TOLERANCE = "dose_tolerance"  # cells/kg outside dose_tolerance of the planned dose
INELIGIBLE_ENROLMENT = "ineligible_enrolment"  # enrolment while ineligible or not fully assessed
ELIGIBILITY_CORRECTED = "eligibility_corrected"  # an eligibility fact corrected or voided after enrolment
DEVIATION_KINDS = (DOSE_GAP, DOSE_WINDOW, EXTRA_DOSE, DOSE_TOLERANCE, INELIGIBLE_ENROLMENT, ELIGIBILITY_CORRECTED)
# Record kinds whose facts decide eligibility (with the registration's birth date).
ELIGIBILITY_KINDS = ("screen", "consent")


@attrs.frozen
class Item:
    """One standing record of a stream: its reference, its effective record, what was acknowledged on it."""

    ref: str
    record: Any
    acknowledged: frozenset[str] = frozenset()  # deviation kinds acknowledged for this record

    @property
    def kind(self) -> str:
        return str(self.record.KIND)


@attrs.frozen
class Finding:
    """One broken rule: ``impossible`` (refused) or a deviation of ``kind`` (needs an acknowledgement)."""

    kind: str
    impossible: bool
    ref: str  # the record the finding belongs to (the one being entered, in check_entry)
    day: date
    message: str
    refs: tuple[str, ...] = ()  # the other records it is about
    invalid_value: bool = False  # a value error (future date, before birth) rather than a rule

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.ref)


class Prior:
    """The records before the one being checked, indexed by kind (an aggregate may supply its own)."""

    def __init__(self, items: Iterable[Item] = ()):
        self._items: list[Item] = []
        self._kinds: dict[str, list[Item]] = {}
        for item in items:
            self.append(item)

    def append(self, item: Item) -> None:
        self._items.append(item)
        self._kinds.setdefault(item.kind, []).append(item)

    def items(self) -> Sequence[Item]:
        return self._items

    def of_kind(self, kind: str) -> Sequence[Item]:
        return self._kinds.get(kind, ())

    def first(self, kind: str) -> Item | None:
        found = self.of_kind(kind)
        return found[0] if found else None


def check_entry(prior: Prior, new: Item, params: Protocol, latest: date) -> list[Finding]:
    """Everything wrong with entering ``new`` after ``prior`` (``latest``: the last date not in the future)."""
    record = new.record
    out: list[Finding] = []
    dates = record.dates()
    for name, day in dates:
        if day > latest:
            out.append(Finding("future_date", True, new.ref, day, f"{_opt(name)} {day} is in the future",
                               invalid_value=True))
    if new.kind == "register":
        return out + _registration(prior, new)
    registration = prior.first("register")
    birth = registration.record.birth_date if registration is not None else None
    if birth is not None:
        for name, day in dates:
            if day < birth:
                out.append(Finding("before_birth", True, new.ref, day,
                                   f"{_opt(name)} {day} is before the birth date {birth}",
                                   (registration.ref,), invalid_value=True))  # type: ignore[union-attr]
    death = prior.first("death")
    if death is not None and new.kind != "death":
        after = [(name, day) for name, day in record.clinical_dates() if day > death.record.date]
        if after:
            name, day = after[0]
            out.append(Finding(
                "after_death", True, new.ref, day,
                f"patient {_subject(new.ref)} died on {death.record.date}; nothing clinical can be dated after that "
                f"({_opt(name)} {day}; correct or void {death.ref} if the death is wrong)", (death.ref,)))
    check = _BY_KIND.get(new.kind)
    if check is not None:
        out.extend(check(prior, new, params))
    return out


def check_stream(items: Sequence[Item], params: Protocol, latest: date) -> list[Finding]:
    """Every finding of a whole stream: each record checked against the records before it."""
    prior = Prior()
    out: list[Finding] = []
    for item in items:
        out.extend(check_entry(prior, item, params, latest))
        prior.append(item)
    return out


def unacknowledged(findings: Iterable[Finding], items: Sequence[Item] = ()) -> list[Finding]:
    """The deviations among ``findings`` that no item acknowledges (impossibilities are never acknowledged)."""
    acked = {(kind, item.ref) for item in items for kind in item.acknowledged}
    return [f for f in findings if not f.impossible and f.key not in acked]


def refusal(findings: Sequence[Finding], flag: str = "--deviation") -> str:
    """The one-line error for findings that block a command: the first impossibility, else every deviation."""
    impossible = [f for f in findings if f.impossible]
    if impossible:
        return impossible[0].message
    text = "; ".join(f.message for f in findings)
    return f'{text}: record it with {flag} "..." if it happened'


# ----------------------------------------------------------------------------------- per kind


def _registration(prior: Prior, new: Item) -> list[Finding]:
    """A registration is first; as item 0 of a corrected stream its birth date bounds every later date."""
    return []


def _enrolment(prior: Prior, new: Item, params: Protocol) -> list[Finding]:
    out: list[Finding] = []
    subject, day = _subject(new.ref), new.record.date
    enrolled = prior.first("enrol")
    if enrolled is not None:
        out.append(Finding("already_enrolled", True, new.ref, day,
                           f"patient {subject} is already enrolled ({enrolled.ref})", (enrolled.ref,)))
    withdrawn = prior.first("withdraw")
    if withdrawn is not None:
        out.append(Finding("after_withdrawal", True, new.ref, day,
                           f"patient {subject} was withdrawn on {withdrawn.record.date}", (withdrawn.ref,)))
    consents = prior.of_kind("consent")
    if not any(c.record.date <= day for c in consents):
        out.append(Finding("no_consent", True, new.ref, day,
                           f"the enrolment date {day} is before informed consent" if consents
                           else f"patient {subject} has no informed consent (IN6); record the consent before the enrolment",
                           tuple(c.ref for c in consents)))
        return out
    result = assess_eligibility(prior, params)
    if result.status == "ineligible":
        why = "; ".join(result.reasons[c] for c in result.unmet)
        out.append(Finding(INELIGIBLE_ENROLMENT, False, new.ref, day,
                           f"patient {subject} is not eligible: {why}", result.refs))
    elif result.status == "pending":
        out.append(Finding(INELIGIBLE_ENROLMENT, False, new.ref, day,
                           f"patient {subject} cannot be enrolled while eligibility is pending "
                           f"(not yet assessed: {', '.join(result.unassessed)})", result.refs))
    return out


def assess_eligibility(prior: Prior, params: Protocol) -> eligibility.Eligibility:
    registration = prior.first("register")
    assert registration is not None
    screenings = [
        eligibility.ScreeningFacts(day=s.record.date, ref=s.ref, kps=s.record.kps,
                                   expected_survival_months=s.record.expected_survival_months,
                                   answers=dict(s.record.criterion))
        for s in prior.of_kind("screen")
    ]
    consents = [eligibility.ConsentFacts(day=c.record.date, ref=c.ref) for c in prior.of_kind("consent")]
    return eligibility.assess(registration.record.birth_date, screenings, consents, params)


def _infusion(prior: Prior, new: Item, params: Protocol) -> list[Finding]:
    out: list[Finding] = []
    subject, day = _subject(new.ref), new.record.date
    enrolled = prior.first("enrol")
    if enrolled is None:
        return [Finding("not_enrolled", True, new.ref, day,
                        f"patient {subject} is not enrolled; infusions need an enrolment first")]
    if day < enrolled.record.date:
        out.append(Finding("before_enrolment", True, new.ref, day,
                           f"the infusion date {day} is before enrolment on {enrolled.record.date} ({enrolled.ref})",
                           (enrolled.ref,)))
    withdrawn = prior.first("withdraw")
    if withdrawn is not None and day >= withdrawn.record.date:
        out.append(Finding("after_withdrawal", True, new.ref, day,
                           f"patient {subject} was withdrawn on {withdrawn.record.date} ({withdrawn.ref}); "
                           "no further infusions", (withdrawn.ref,)))
    if out:
        return out
    infusions = list(prior.of_kind("infusion"))
    gap = params.min_dose_gap_days
    for other in infusions:
        days = abs((day - other.record.date).days)
        if days < gap:
            relation = "after" if day >= other.record.date else "before"
            out.append(Finding(DOSE_GAP, False, new.ref, day,
                               f"the infusion on {day} is {days} day{'s' if days != 1 else ''} {relation} "
                               f"{other.ref} (minimum {gap})", (other.ref,)))
            break
    if len(infusions) >= params.planned_doses:
        out.append(Finding(EXTRA_DOSE, False, new.ref, day,
                           f"the infusion on {day} would be dose {len(infusions) + 1} of "
                           f"{params.planned_doses} planned ({', '.join(i.ref for i in infusions)} already given)",
                           tuple(i.ref for i in infusions)))
    else:
        window = _window(infusions, new, params)
        if window is not None:
            out.append(window)
    per_kg = new.record.cells / new.record.weight_kg
    planned = params.dose_cells_per_kg
    deviation = (per_kg - planned) / planned
    if abs(deviation) > params.dose_tolerance and not _close(abs(deviation), params.dose_tolerance):
        out.append(Finding(DOSE_TOLERANCE, False, new.ref, day,
                           f"the infusion on {day} is {per_kg:.3g} cells/kg ({new.record.cells:g} cells at "
                           f"{new.record.weight_kg:g} kg), {deviation:+.0%} from the planned {planned:.3g} "
                           f"(tolerance ±{params.dose_tolerance:.0%})"))
    return out


def _window(infusions: list[Item], new: Item, params: Protocol) -> Finding | None:
    """Where the new infusion falls among the planned doses, assigned as the dosing rules assign them."""
    ordered = sorted([*infusions, new], key=lambda i: i.record.date)  # stable: same-day keeps stream order
    d1 = ordered[0].record.date
    n, w = params.planned_doses, params.dose_window_days
    targets = [d1 + timedelta(days=k * params.dose_interval_days) for k in range(n)]
    k = 1
    for item in ordered:
        if k > n:
            return None  # beyond the planned doses: an extra dose, reported as such
        day = item.record.date
        while k < n and day >= targets[k] - timedelta(days=w):
            k += 1
        if item is new:
            offset = (day - targets[k - 1]).days
            if abs(offset) <= w:
                return None
            word = "before" if offset < 0 else "after"
            return Finding(DOSE_WINDOW, False, new.ref, day,
                           f"the infusion on {day} is dose {k}, {abs(offset)} days {word} its target "
                           f"{targets[k - 1]} (window ±{w} days from MSC D1 {d1})", (ordered[0].ref,))
        k += 1
    return None


def _later_than(prior: Prior, new: Item, what: str, kinds: tuple[str, ...] | None = None) -> list[Finding]:
    """Records before ``new`` in the stream with a clinical date after ``new``'s date (death, withdrawal)."""
    cutoff = new.record.date
    for item in prior.items():
        if item.kind == "register" or (kinds is not None and item.kind not in kinds):
            continue
        for name, day in item.record.clinical_dates():
            if (day > cutoff) if what == "death" else (day >= cutoff):
                return [Finding(f"after_{what}", True, new.ref, cutoff,
                                f"{item.ref} ({item.kind}) has {name} {day}, "
                                f"{'after' if what == 'death' else 'on or after'} the {what} date {cutoff}",
                                (item.ref,))]
    return []


def _death(prior: Prior, new: Item, params: Protocol) -> list[Finding]:
    dead = prior.first("death")
    if dead is not None:
        return [Finding("already_dead", True, new.ref, new.record.date,
                        f"patient {_subject(new.ref)}'s death is already recorded ({dead.ref})", (dead.ref,))]
    return _later_than(prior, new, "death")


def _withdrawal(prior: Prior, new: Item, params: Protocol) -> list[Finding]:
    withdrawn = prior.first("withdraw")
    if withdrawn is not None:
        return [Finding("already_withdrawn", True, new.ref, new.record.date,
                        f"patient {_subject(new.ref)} is already withdrawn ({withdrawn.ref})", (withdrawn.ref,))]
    return _later_than(prior, new, "withdrawal", kinds=("infusion",))


_BY_KIND = {"enrol": _enrolment, "infusion": _infusion, "death": _death, "withdraw": _withdrawal}
# What check_entry reads of the prior records for a kind without a rule of its own: the registration
# (birth date) and the death. A record of such a kind can be checked against just those records.
HISTORY_FREE_PRIOR = ("register", "death")


def history_free(kind: str) -> bool:
    """Whether entering a record of ``kind`` is checked against :data:`HISTORY_FREE_PRIOR` only."""
    return kind != "register" and kind not in _BY_KIND


def eligibility_changed(items: Sequence[Item], changed_ref: str) -> Finding | None:
    """The change-level deviation: an eligibility fact (a screening, a consent, the birth date) that fed
    an enrolment, corrected or voided after it. ``items`` is the stream *before* the change."""
    position = {item.ref: n for n, item in enumerate(items)}
    enrolment = next((i for i in items if i.kind == "enrol"), None)
    if enrolment is None or changed_ref not in position or position[changed_ref] > position[enrolment.ref]:
        return None
    kind = items[position[changed_ref]].kind
    if kind not in (*ELIGIBILITY_KINDS, "register"):
        return None
    return Finding(ELIGIBILITY_CORRECTED, False, changed_ref, enrolment.record.date,
                   f"{changed_ref} ({kind}) is an eligibility fact of the enrolment {enrolment.ref} "
                   f"on {enrolment.record.date}; changing it after enrolment is a protocol deviation",
                   (enrolment.ref,))


def _subject(ref: str) -> str:
    return ref.rpartition("#")[0]


def _opt(name: str) -> str:
    return "--" + name.replace("_", "-")


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b))
