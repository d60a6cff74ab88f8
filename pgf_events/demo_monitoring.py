"""The demo cohort's monitoring: queries in every status, source data verification in progress and
one frozen patient, planned from each subject's commands (pure) and applied after the recording.

* SDV. Each enrolled subject draws a progress of 0, 30, 60 or 100% and the monitor verifies that
  share of the records the risk-based plan needs (consent, screening, enrolment, infusions, serious
  AEs, labs from MSC D1 to the response evaluation day), oldest first.
* Queries. About a third of the subjects get one or two queries on a lab or AE; each ends open,
  answered, or answered and closed.
* Freeze. The first subject with complete SDV and no query left open is frozen.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import attrs

from pgf_events.commands import Command
from pgf_events.protocol import DEFAULT_PROTOCOL, Protocol

QUESTIONS = {
    "lab": [("anc", "ANC differs from the LIS print-out in the source binder; please confirm"),
            ("plt", "platelets taken before or after the transfusion that day?"),
            ("hb", "Hb unit: g/L or g/dL on the source report?")],
    "ae": [("grade", "grade not supported by the clinic note; please review against CTCAE v5"),
           ("end", "end date missing in the source; is the event ongoing?")],
}
ANSWERS = ["checked against source: the value entered is correct", "confirmed with the treating physician",
           "source re-read: entry matches the signed lab report"]
PROGRESS = (0.0, 0.3, 0.6, 1.0)


@attrs.frozen
class Plan:
    subject: str
    verify: tuple[str, ...]
    queries: tuple[tuple[str, str, str, str], ...]  # (ref, field, text, outcome: open|answered|closed)
    answer: str = ""
    complete: bool = False  # every record the SDV plan needs is verified
    stream_version: int = 0  # the patient's version once its batch is recorded (what SDV covers)


def required_refs(subject: str, commands: Sequence[Command], params: Protocol = DEFAULT_PROTOCOL) -> list[str]:
    """The refs the risk-based SDV plan needs, from the batch (ref = position + 1)."""
    records = [(n, c) for n, c in enumerate(commands, start=1) if c.action == "record"]
    infusions = [date.fromisoformat(c.fields["date"]) for _, c in records if c.kind == "infusion"]
    d1 = min(infusions) if infusions else None
    out = []
    for n, c in records:
        keep = c.kind in ("consent", "screen", "enrol", "infusion") or (c.kind == "ae" and c.fields.get("serious"))
        if c.kind == "lab" and d1 is not None:
            day = date.fromisoformat(c.fields["date"])
            keep = d1 <= day <= d1 + timedelta(days=params.nr_evaluation_day)
        if keep:
            out.append(f"{subject}#{n}")
    return out


def plan(subject: str, commands: Sequence[Command], seed: int) -> Plan:
    rng = random.Random(f"{seed}/{subject}/monitoring")
    needed = required_refs(subject, commands)
    share = rng.choice(PROGRESS) if any(c.kind == "enrol" for c in commands) else 0.0
    verify = tuple(needed[: round(len(needed) * share)])
    candidates = [(n, c) for n, c in enumerate(commands, start=1) if c.action == "record" and c.kind in QUESTIONS]
    queries = []
    if candidates and rng.random() < 0.35:
        for n, c in rng.sample(candidates, min(len(candidates), rng.choice((1, 2)))):
            field, text = rng.choice(QUESTIONS[c.kind])
            queries.append((f"{subject}#{n}", field, text, rng.choice(("open", "answered", "closed"))))
    return Plan(subject, verify, tuple(queries), rng.choice(ANSWERS), complete=bool(needed) and share == 1.0,
                stream_version=len(commands))


def apply_plans(app: Any, plans: Sequence[Plan], user: str) -> dict[str, int]:
    """Record every plan: one save per subject (its review stream); returns what was done."""
    from pgf_events.monitoring import check_not_locked, review_of  # noqa: PLC0415

    check_not_locked(app)
    done = {"queries": 0, "open": 0, "answered": 0, "closed": 0, "verified": 0, "frozen": 0}
    frozen = False
    for p in plans:
        if not p.verify and not p.queries:
            continue
        review = review_of(app, p.subject)
        assert review is not None  # created when missing
        if p.verify:
            review.verify(list(p.verify), p.stream_version, user)  # the batch's last ref: no replay needed
            done["verified"] += len(p.verify)
        for ref, field, text, outcome in p.queries:
            qid = review.open_query(ref, field, text, user)
            if outcome != "open":
                review.answer(qid, p.answer, user)
            if outcome == "closed":
                review.close(qid, "answer accepted", user)
            done["queries"] += 1
            done[outcome] += 1
        if not frozen and p.complete and all(q[3] == "closed" for q in p.queries):
            review.freeze("reviewed: source data verified, queries closed", user)
            frozen = True
            done["frozen"] += 1
        app.save(review)
    return done
