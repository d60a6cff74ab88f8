"""Reports that must not grow with the whole log or square with a patient's history (issue 18 item 3):
``pgf audit exceptions`` on a 5,000-event patient, ``pgf report --as-of`` and ``pgf audit
signatures`` on the big log, the read models catching up one new event of a 5,000-event patient,
and the ODM export's throughput.

Each runs the real command in its own process, in interleaved rounds with its baseline (the median).
The big log is the one the rebuild figures use (``ctx.cohort_log``), so it is generated once.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import data
from baselines import baseline_select_loads
from figures import Context, Figure, group, indicative_if_quick, plain_figure
from harness import Rounds, Run, interleave, pgf, python_c


def _patient_rows_code(db: Path, subject: str) -> str:
    """A ``python -c`` selecting and json.loads-ing one patient's rows: the least any per-patient report does."""
    from pgf_events.domain.patient import patient_id

    stream = patient_id(subject).hex
    return (f"import sqlite3, json; c = sqlite3.connect({str(db)!r}); "
            f"[json.loads(s) for (s,) in c.execute('SELECT state FROM stored_events WHERE originator_id = ? "
            f"ORDER BY originator_version', ({stream!r},))]")


def _absolute(ctx: Context, name: str, rounds: Rounds, *, value: float, unit: str, target: float, higher: bool,
              baseline: float | None, note: str, fixed: str | None = None) -> Figure:
    """A figure judged on its value (the issue's absolute targets), its baseline shown beside it."""
    met = value >= target if higher else value <= target
    seconds = rounds.median("engine")
    share = rounds.median(fixed) / seconds if fixed else None
    figure = Figure(name, value, unit, baseline, value / baseline if baseline else None,
                    f"{'≥' if higher else '≤'} {target:g} {unit}", met, note, rounds.load_before, rounds.load_after,
                    len(rounds.samples["engine"]), share)
    return indicative_if_quick(ctx, figure)


def _long_store(ctx: Context, events: int) -> tuple[str, Path]:
    def make() -> tuple[str, Path]:
        db = ctx.tmp / f"long{events}.db"
        url = f"sqlite:///{db}"
        data.long_patient(url, "L0001", events)
        data.long_patient(url, "F0001", 8)  # a patient with a handful of events: the commands' fixed cost
        return url, db

    return ctx.once(f"long_store:{events}", make)  # type: ignore[no-any-return]


def _exceptions(ctx: Context, events: int) -> Figure:
    url, db = _long_store(ctx, events)
    empty = ctx.empty_store()
    code = _patient_rows_code(db, "L0001")
    pgf(url, "audit", "exceptions", "--json")  # warm the OS caches up (not timed)
    rounds = interleave(ctx.rounds, {
        "engine": lambda: pgf(url, "audit", "exceptions", "--json"),
        "baseline": lambda: python_c(code),
        "fixed": lambda: pgf(empty, "audit", "exceptions", "--json"),
    })
    seconds = rounds.median("engine")
    return _absolute(ctx, f"pgf audit exceptions, one patient with {events:,} events", rounds, value=seconds,
                     unit="s", target=0.5, higher=False, baseline=rounds.median("baseline"), fixed="fixed",
                     note="--json (the table's rendering is extra); baseline: python -c select + json.loads of "
                          "the patient's rows")


def _catch_up(ctx: Context, events: int) -> Figure:
    """A new event, then ``pgf report dosing``: the read models catch that one event up, then are read."""
    url, _ = _long_store(ctx, events)
    pgf(url, "report", "dosing", "--json")  # the read models built first (not timed)
    days = iter(range(1700, 2500))  # dates in the past, after most of the history

    def engine() -> Run:
        day = (data.ENROLLED_ON + timedelta(days=next(days))).isoformat()
        pgf(url, "record", "lab", "L0001", "--date", day, "--anc", "0.8")  # not timed
        return pgf(url, "report", "dosing", "--json")

    rounds = interleave(ctx.size(max(ctx.rounds, 5), ctx.rounds),
                        {"engine": engine, "fixed": lambda: pgf(url, "report", "dosing", "--json")})
    seconds, fixed = rounds.median("engine"), rounds.median("fixed")
    return plain_figure(f"pgf report right after one new event of a {events:,}-event patient", seconds, "s",
                        "report", None,
                        note=f"the read models catch the event up, then are read: {1000 * (seconds - fixed):.0f} ms "
                             f"more than the same report with nothing to catch up ({fixed:.3f} s)",
                        load_before=rounds.load_before, load_after=rounds.load_after,
                        rounds=len(rounds.samples["engine"]))


def _as_of(ctx: Context, url: str, events: int) -> Figure:
    when = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()  # every event: the whole log streamed
    rounds = interleave(ctx.rounds, {"engine": lambda: pgf(url, "report", "endpoints", "--as-of", when, "--json",
                                                           sample_rss=True)})
    rss = max(r.max_rss_mb for r in rounds.runs["engine"])
    return plain_figure(f"pgf report endpoints --as-of, {events:,} events: peak RSS", rss, "MB", "≤ 300 MB",
                        None if ctx.quick else rss <= 300,
                        note=f"{rounds.median('engine'):.1f} s; streams the log a chunk of streams at a time",
                        load_before=rounds.load_before, load_after=rounds.load_after,
                        rounds=len(rounds.samples["engine"]))


def _signatures(ctx: Context, url: str, db: Path, events: int) -> Figure:
    from pgf_events.domain.patient import Patient
    from pgf_events.topics import topic_of

    code = (f"import sqlite3, json; c = sqlite3.connect({str(db)!r}); "
            f"[json.loads(s) for (s,) in c.execute('SELECT state FROM stored_events WHERE topic = ?', "
            f"({topic_of(Patient.Signed)!r},))]")
    with sqlite3.connect(db) as conn:
        signed = conn.execute("SELECT COUNT(*) FROM stored_events WHERE topic = ?",
                              (topic_of(Patient.Signed),)).fetchone()[0]
    rounds = interleave(ctx.rounds, {"engine": lambda: pgf(url, "audit", "signatures", "--json"),
                                     "baseline": lambda: python_c(code)})
    return plain_figure(f"pgf audit signatures, {events:,} events ({signed} signatures)", rounds.median("engine"), "s",
                        "report", None,
                        note=f"baseline {rounds.median('baseline'):.2f} s: python -c selecting the signature rows "
                             "by topic; the signed patients' streams are the only ones read",
                        load_before=rounds.load_before, load_after=rounds.load_after,
                        rounds=len(rounds.samples["engine"]))


def _odm(ctx: Context, url: str, db: Path, events: int) -> Figure:
    out = ctx.tmp / "export.xml"
    count = 0

    def baseline() -> float:
        nonlocal count
        seconds, count = baseline_select_loads(db)
        return seconds

    def engine() -> Run:
        run = pgf(url, "export", "odm", str(out))
        out.unlink()
        return run

    empty = ctx.empty_store()
    rounds = interleave(ctx.rounds, {"engine": engine, "baseline": baseline,
                                     "fixed": lambda: pgf(empty, "export", "odm", str(ctx.tmp / "empty.xml"))})
    value = events / rounds.median("engine")
    return _absolute(ctx, f"pgf export odm, {events:,} events", rounds, value=value, unit="events/s", target=50_000,
                     higher=True, baseline=count / rounds.median("baseline"), fixed="fixed",
                     note="every event a transaction, written to a file; baseline: select + json.loads of the log")


@group("reports", order=45, help="exceptions, --as-of, signatures, catch-up per event, ODM export (issue 18 item 3)")
def report_figures(ctx: Context) -> list[Figure]:
    ctx.say("reports: exceptions and catch-up on a 5,000-event patient; --as-of, signatures, ODM on the big log")
    long = ctx.size(5_000, 1_000)
    figures = [_exceptions(ctx, long), _catch_up(ctx, long)]
    events = ctx.size(1_000_000, 20_000)
    url, db = ctx.cohort_log(events)
    figures += [_as_of(ctx, url, events), _signatures(ctx, url, db, events), _odm(ctx, url, db, events)]
    return figures
