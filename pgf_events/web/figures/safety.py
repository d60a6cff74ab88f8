"""The safety summary as HTML tables (screen readers read tables better than pictures): events
by term and CTCAE grade (reported and from lab values), and the SAEs with their reporting clocks.

Input: the safety report's ``summary`` (:mod:`pgf_events.projections.sections.safety`);
``patient_href`` turns a subject into the link of its page (None: no links).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

GRADES = range(1, 6)
CLOCK_NAMES = {"sponsor": "sponsor", "regulator": "regulator", "regulator_complete": "regulator (complete)"}


def _grade_table(lines: Sequence[Mapping[str, Any]], caption: str, ident: str) -> str:
    head = "".join(f'<th scope="col">grade {g}</th>' for g in GRADES)
    rows = []
    for line in lines:
        cells = "".join(f'<td class="num">{line[f"grade_{g}"] or ""}</td>' for g in GRADES)
        rows.append(f'<tr><th scope="row">{escape(line["term"])}</th>{cells}'
                    f'<td class="num">{line["events"]}</td><td class="num">{line["patients"]}</td></tr>')
    total = sum(line["events"] for line in lines)
    if not rows:
        rows.append(f'<tr><td colspan="{len(GRADES) + 3}">none recorded</td></tr>')
    return (f'<table class="data safety" id="{ident}"><caption>{escape(caption)} ({total} events)</caption>'
            f'<thead><tr><th scope="col">term</th>{head}<th scope="col">events</th>'
            f'<th scope="col">patients</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def when(text: Any) -> str:
    """An ISO time to the minute, as UTC ("2024-05-10 14:33 UTC"); a date stays a date."""
    s = str(text)
    if len(s) > 16 and s[10] == "T":
        return s[:16].replace("T", " ") + (" UTC" if s.endswith(("Z", "+00:00")) else "")
    return s


def _clock(c: Mapping[str, Any]) -> str:
    state = "met" if c["met"] is True else "MISSED" if c["met"] is False else "pending"
    reported = f", reported {escape(when(c['reported']))}" if c.get("reported") else ""
    return (f'<li class="clock {state.lower()}">{escape(CLOCK_NAMES.get(c["name"], c["name"]))}: due '
            f'{escape(when(c["due"]))}{reported} — <strong>{state}</strong></li>')


def _subject(subject: str, patient_href: Callable[[str], str] | None) -> str:
    text = escape(subject)
    return f'<a href="{escape(patient_href(subject))}">{text}</a>' if patient_href else text


URGENCY = {False: 0, None: 1, True: 2}  # a missed clock first, then one still running, then all met


def sae_table(saes: Sequence[Mapping[str, Any]], patient_href: Callable[[str], str] | None = None, *,
              limit: int = 60) -> str:
    """The SAEs, the most urgent first (a clock missed, then running), at most ``limit`` of them."""
    shown = sorted(saes, key=lambda s: (URGENCY[s.get("met")], str(s["onset"])))[:limit]
    rows = []
    for s in shown:
        flags = [label for key, label in (("susar", "SUSAR"), ("awareness_missing", "no awareness time"),
                                          ("expectedness_missing", "expectedness missing")) if s.get(key)]
        clocks = "".join(_clock(c) for c in s.get("clocks") or [])
        rows.append(
            f'<tr><th scope="row">{_subject(s["subject"], patient_href)}</th><td>{escape(s["ref"])}</td>'
            f'<td>{escape(s["term"])}</td><td class="num">{s["grade"]}</td><td>{escape(str(s["onset"]))}</td>'
            f'<td>{escape(", ".join(s.get("serious") or []))}</td><td>{escape(str(s.get("related") or ""))}</td>'
            f'<td>{escape("; ".join(flags))}</td><td><ul class="clocks">{clocks}</ul></td></tr>')
    if not rows:
        rows.append('<tr><td colspan="9">no serious adverse events</td></tr>')
    more = (f"; the {len(shown)} most urgent shown (missed clocks first), every one in "
            "<code>pgf report safety --listing saes</code>") if len(saes) > len(shown) else ""
    return ('<table class="data safety" id="saes"><caption>Serious adverse events and their reporting clocks'
            f' ({len(saes)}{more})</caption><thead><tr><th scope="col">patient</th><th scope="col">event</th>'
            '<th scope="col">term</th><th scope="col">grade</th><th scope="col">onset</th>'
            '<th scope="col">seriousness</th><th scope="col">related</th><th scope="col">flags</th>'
            f'<th scope="col">clocks</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def safety_html(summary: Mapping[str, Any], patient_href: Callable[[str], str] | None = None) -> str:
    """The three tables and a one-line overview (patients with an AE, SAEs, clocks met/missed/pending)."""
    p = summary["patients_with_ae"]
    clocks = summary["clocks"]
    share = f" ({p['estimate']:.0%})" if p.get("estimate") is not None else ""
    overview = (f'<p class="overview">{p["k"]} of {p["n"]} enrolled patients had an adverse event{share}; '
                f'{summary["adverse_events"]} events, {summary["serious_adverse_events"]} serious '
                f'({summary["susars"]} SUSAR). Reporting clocks: {clocks["met"]} met, '
                f'<strong>{clocks["missed"]} missed</strong>, {clocks["pending"]} pending.</p>')
    return (overview
            + _grade_table(summary["by_term_grade"], "Adverse events by term and CTCAE grade", "ae-by-grade")
            + _grade_table(summary["lab_worsening_by_term_grade"],
                           "Lab abnormalities (worst CTCAE grade from the lab values)", "lab-by-grade")
            + sae_table(summary["saes"], patient_href))
