"""Web workspace figures: the server time of each page (dashboard, worklist, patient list, patient,
audit) on the 68-patient demo (target < 300 ms) and on a 5,000-patient store (target < 1 s).

The pages are served in this process by the real application (``build_app``: sign-in, session,
time travel, templates) through Starlette's test client; the baseline, in the same rounds, is a bare
Starlette route returning a static page of the same size through the same client, so the ratio is
what the page's own work costs over HTTP handling. The dashboard is measured *after a change* (its
rendered figures dropped, as a new event does: the read models' rows are refreshed incrementally and
every figure is drawn again) and, in the note, warm (nothing changed: served from its cache). A page
this build does not have is left out (the run says so).

After a change: the worklist and the audit page are also measured with one new event recorded before
each look (a registration weight correction of a patient not frozen, through ``pgf``, not timed):
their read models then catch up that event and recompute that patient. Time travel: each page at
``?as_of=`` and at ``?cutoff=`` on its *first look* (every kept cohort, figure and audit table
dropped before each sample: as of a time, the patients whose streams were whole by then are read
from the read models kept in memory, the others decoded and derived from the log; at a cut-off
the demo derives every patient, while the big store has declared it (``pgf projections cutoff``,
when the store is made) and reads its kept rows from the table, as a new process would), judged on
the demo and on the big store; on the big store every page at a cut-off nobody declared (every
patient derived) is a report. The
note gives the second look (a page at a time travel already derived: the cohort is shared by
every page). The audit page's "verify the chain now" (a POST recomputing the hash chain over every
event) is a report.
"""

from __future__ import annotations

import subprocess
import time
import warnings
from typing import Any

from figures import Context, Figure, group
from harness import _pgf_argv, interleave, load, pgf

DECLARED = "2025-03-31"  # the big store keeps rows at this cut-off (pgf projections cutoff)
UNDECLARED = "2025-06-30"  # and not at this one: every patient derived
PAGES = (("dashboard", "/"), ("worklist", "/worklist"), ("patient list", "/patients"),
         ("patient", "/patient/{subject}"), ("audit", "/audit"))


def cohort_store(url: str, patients: int, *, seed: int = 11, group_size: int = 400, per_round: int = 6) -> int:
    """Every event of ``patients`` demo-model patients (bench/data.py's cohort model, recorded through
    the coordinator's command path in round-robin batches); returns the number of events."""
    import data
    from pgf_events.application import UnitOfWork
    from pgf_events.demo import commands_for, plan_cohort

    app = data.open_store(url)
    written = 0
    try:
        cohort = plan_cohort(patients, seed)
        for start in range(0, len(cohort), group_size):
            plans = [commands_for(s) for s in cohort[start:start + group_size]]
            unit = UnitOfWork(app, app.acting_user())
            step = 0
            while batch := [c for commands in plans for c in commands[step:step + per_round]]:
                for command in batch:
                    unit.apply(command)
                app.save(*[p for p in unit.patients.values() if p.pending_events])
                step += per_round
                written += len(batch)
    finally:
        app.close()
    return written


def _stores(ctx: Context) -> list[tuple[str, str, float]]:
    """(label, url, target seconds): the demo and the big cohort, read models built (not timed)."""
    def demo() -> str:
        url = f"sqlite:///{ctx.tmp / 'web-demo.db'}"
        pgf(url, "demo")
        return url

    def big() -> tuple[str, int]:
        patients = ctx.size(5000, 300)
        url = f"sqlite:///{ctx.tmp / f'web-{patients}.db'}"
        ctx.say(f"  generating a {patients:,}-patient store (not timed)")
        started = time.perf_counter()
        events = cohort_store(url, patients)
        pgf(url, "projections", "rebuild")
        pgf(url, "projections", "cutoff", DECLARED)  # a DSMB's cut-off, declared: its rows kept (not timed)
        ctx.say(f"  {events:,} events generated in {time.perf_counter() - started:.0f} s")
        return url, patients

    big_url, patients = ctx.once("web_big", big)
    return [("68-patient demo", ctx.once("web_demo", demo), 0.3), (f"{patients:,}-patient store", big_url, 1.0)]


def _test_client() -> Any:
    with warnings.catch_warnings():  # newer Starlette suggests httpx2; httpx is what the tests install
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    return TestClient


def _client(url: str) -> tuple[Any, Any, Any]:
    """A signed-in test client of the real application on ``url``, its feed, and the dashboard module."""
    import data
    from pgf_events.feed import ChangeFeed
    from pgf_events.serve.app import build_app
    from pgf_events.serve.auth import TokenAuth
    from pgf_events.web import dashboard

    app = data.open_store(url)
    feed = ChangeFeed(app)
    auth = TokenAuth(app.acting_user())
    client = _test_client()(build_app(feed, auth=auth), follow_redirects=False)
    client.__enter__()  # runs the lifespan (the change-feed pulse) as uvicorn would
    signed = client.get(f"/?token={auth.token}")
    if signed.status_code != 303:
        raise RuntimeError(f"signing in to the web workspace failed: {signed.status_code}")
    return client, feed, dashboard


def _baseline(size: int) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    body = "<!doctype html><title>static</title>" + "x" * max(size - 40, 0)

    async def static(request: Any) -> HTMLResponse:
        return HTMLResponse(body)

    return _test_client()(Starlette(routes=[Route("/", static)]))


def _get(client: Any, path: str) -> float:
    started = time.perf_counter()
    r = client.get(path)
    seconds = time.perf_counter() - started
    if r.status_code != 200:
        raise RuntimeError(f"GET {path}: {r.status_code}")
    return seconds


@group("web", order=70, help="server time of each web page: the 68-patient demo and a 5,000-patient store")
def web_figures(ctx: Context) -> list[Figure]:
    ctx.say("web: server time of each page")
    try:
        import jinja2  # noqa: F401
        import starlette  # noqa: F401
    except ModuleNotFoundError as e:
        return [Figure(f"web page {name}", None, "s", None, None, "report", None,
                       f"skipped: the serve extra is missing ({e.name})") for name, _ in PAGES]
    out = []
    for label, url, target in _stores(ctx):
        client, feed, dashboard = _client(url)
        try:
            subject = feed.store.rows("eligibility")[0]["subject"]
            for name, path in PAGES:
                figure = _page_figure(ctx, client, dashboard, name, path.format(subject=subject), label, target)
                if figure is not None:
                    out.append(figure)
            out.append(_time_travel_figure(ctx, client, dashboard, label, target))
            changed = _changer(url, [r["subject"] for r in feed.store.rows("eligibility")])
            for name, path in (("worklist", "/worklist"), ("audit", "/audit")):
                out.append(_after_change_figure(ctx, client, name, path, label, target, changed))
            for name, path in TRAVEL_PAGES:
                travels = [f"as_of={_as_of(feed)}", f"cutoff={DECLARED}"]
                if target >= 1.0:  # the big store: a cut-off nobody declared is derived (a report)
                    travels.append(f"cutoff={UNDECLARED}")
                for travel in travels:
                    out.append(_travel_figure(ctx, client, dashboard, name, path.format(subject=subject), travel,
                                              label, target))
            out += _trail_figures(ctx, client, dashboard, feed, label, target)
            out.append(_verify_figure(ctx, client, label))
        finally:
            client.__exit__(None, None, None)
            feed.close()
    return out


def _page_figure(ctx: Context, client: Any, dashboard: Any, name: str, path: str, label: str,
                 target: float) -> Figure | None:
    figure = f"web page {name} ({label})"
    started = time.perf_counter()
    first = client.get(path)
    first_seconds = time.perf_counter() - started
    if first.status_code == 404:
        ctx.say(f"  no {path} page in this build: not measured")
        return None
    if first.status_code != 200:
        raise RuntimeError(f"GET {path}: {first.status_code} {first.text[:300]}")
    base = _baseline(len(first.content))

    def page() -> float:
        if name == "dashboard":
            dashboard.CACHE.clear()  # as after a change: every figure drawn again from the read models
        return _get(client, path)

    rounds = interleave(max(ctx.rounds, 5), {"page": page, "baseline": lambda: _get(base, "/")})
    value, baseline = rounds.median("page"), rounds.median("baseline")
    note = f"{len(first.content) / 1024:.0f} kB; first request of the process {first_seconds * 1000:.0f} ms"
    if name == "dashboard":
        warm = sorted(_get(client, path) for _ in range(5))[2]
        note = f"after a change (figures redrawn); unchanged store (cached) {warm * 1000:.1f} ms; {note}"
    quick_big = ctx.quick and target >= 1.0  # the scaled-down store says nothing about 5,000 patients: a report
    met = None if quick_big else value < target
    return Figure(figure, value, "s", baseline, value / baseline,
                  "report" if quick_big else f"< {target * 1000:.0f} ms", met, note,
                  rounds.load_before, rounds.load_after, len(rounds.samples["page"]))


def _time_travel_figure(ctx: Context, client: Any, dashboard: Any, label: str, target: float) -> Figure:
    """The dashboard at a data cut-off, then drawn: on the demo every patient derived from the log; on
    the big store the cut-off is declared (``pgf projections cutoff``), its kept rows read. Judged on
    both (--quick's small store: a report)."""
    path = f"/?cutoff={DECLARED}"

    def page() -> float:
        _drop_caches(dashboard)  # the figures and the derived cohort: every patient derived again
        return _get(client, path)

    judged = target < 1.0 or not ctx.quick
    rounds = interleave(max(ctx.rounds, 5) if judged else 1, {"page": page})
    value = rounds.median("page")
    how = ("each patient derived from the log" if target < 1.0
           else "a declared cut-off: its kept rows read from the table")
    return Figure(f"web page dashboard at a cut-off ({label})", value, "s", None, None,
                  f"< {target * 1000:.0f} ms" if judged else "report", value < target if judged else None,
                  f"?cutoff={DECLARED}: {how}, then every figure drawn; a second look "
                  "is served from the cache", rounds.load_before, rounds.load_after, len(rounds.samples["page"]))


TRAVEL_PAGES = (("dashboard", "/"), ("worklist", "/worklist"), ("patient list", "/patients"),
                ("patient", "/patient/{subject}"), ("audit", "/audit"))


def _as_of(feed: Any) -> str:
    """A time half-way through the log's recording (what the store knew then)."""
    app = feed.store.app
    head = app.recorder.max_notification_id() or 1
    middle = app.mapper.to_domain_event(app.recorder.select_notifications(start=max(1, head // 2), limit=1)[0])
    return middle.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _changer(url: str, subjects: list[str]) -> Any:
    """A step recording one new event per call (a weight correction of a patient not frozen), not timed."""
    state = {"subject": None, "weight": 60.0}

    def change() -> None:
        for subject in [state["subject"]] if state["subject"] else subjects[::-1]:
            state["weight"] = 121.0 - state["weight"]  # 60 <-> 61 kg: a real change every time
            done = subprocess.run([*_pgf_argv(), "--db", url, "correct", f"{subject}#1", "--set",
                                   f"weight_kg={state['weight']:g}", "--reason", "bench: re-weighed"],
                                  capture_output=True, check=False)
            if done.returncode == 0:
                state["subject"] = subject
                return
        raise RuntimeError("no patient could be corrected (every one frozen?)")

    return change


def _drop_caches(dashboard: Any) -> None:
    from pgf_events.projections import cutoff_rows, travel
    from pgf_events.web import audit

    dashboard.CACHE.clear()
    travel.forget()  # a first look: nothing derived yet
    audit.TRAVEL.clear()
    cutoff_rows._KEPT.clear()  # noqa: SLF001 - a declared cut-off's rows read from the table again, as a new process does


def _after_change_figure(ctx: Context, client: Any, name: str, path: str, label: str, target: float,
                         change: Any) -> Figure:
    before = load()[0]
    samples = []
    for _ in range(max(ctx.rounds, 5)):
        change()
        samples.append(_get(client, path))
    value = sorted(samples)[len(samples) // 2]
    quick_big = ctx.quick and target >= 1.0
    return Figure(f"web page {name} after a new event ({label})", value, "s", None, None,
                  "report" if quick_big else f"< {target * 1000:.0f} ms", None if quick_big else value < target,
                  f"one event recorded before each look (not timed); range {min(samples) * 1000:.0f}–"
                  f"{max(samples) * 1000:.0f} ms", before, load()[0], len(samples))


def _travel_figure(ctx: Context, client: Any, dashboard: Any, name: str, path: str, travel: str, label: str,
                   target: float) -> Figure:
    full = f"{path}?{travel}"

    def first_look() -> float:
        _drop_caches(dashboard)
        return _get(client, full)

    # At 5,000 patients the first look as of a time is judged (the read models hold whole streams, the
    # audit model's rows included), and at the declared cut-off (its kept rows); every page at a cut-off
    # nobody declared (every patient derived) is a report, one round. --quick's small store: a report.
    judged = target < 1.0 or (travel.startswith("as_of=") and not ctx.quick)
    judged = judged or (travel == f"cutoff={DECLARED}" and not ctx.quick)  # read from the declared cut-off's rows
    rounds = interleave(max(ctx.rounds, 5) if judged else 1, {"page": first_look})
    value = rounds.median("page")
    second = sorted(_get(client, full) for _ in range(3))[1]
    how = ("streams whole by then read from the read models, the others derived from the log"
           if travel.startswith("as_of=") else "a declared cut-off: its kept rows read from the table"
           if travel == f"cutoff={DECLARED}" and target >= 1.0 else "every patient derived from the log")
    at = f"?{travel.split('=')[0]}=" if travel != f"cutoff={UNDECLARED}" else "an undeclared ?cutoff="
    return Figure(f"web page {name} at {at} ({label})", value, "s", None, None,
                  f"< {target * 1000:.0f} ms" if judged else "report", value < target if judged else None,
                  f"?{travel}; first look ({how}); second look {second * 1000:.0f} ms",
                  rounds.load_before, rounds.load_after, len(rounds.samples["page"]))


def _trail_searches(feed: Any) -> list[tuple[str, str]]:
    """(name, query) of the audit page's trail searches: the whole trail, by the user who recorded
    everything, by a kind with few events spread over many patients (corrections: the newest 200 are
    in ~200 streams, the most the page makes into rows), by the recorded day half-way through the
    log, and the whole trail as of that time."""
    as_of = _as_of(feed)
    day = as_of[:10]
    return [("all", "trail=all"), ("by user", f"user={feed.store.app.acting_user()}"), ("by kind", "kind=Corrected"),
            ("by date range", f"from={day}&to={day}"), ("all at ?as_of=", f"trail=all&as_of={as_of}")]


def _trail_figures(ctx: Context, client: Any, dashboard: Any, feed: Any, label: str, target: float) -> list[Figure]:
    """The audit page with a trail search, first look (every kept page and audit table dropped; the
    read models' rows in memory stay, as for every page): judged; --quick's small store: a report."""
    out = []
    for name, query in _trail_searches(feed):
        path = f"/audit?{query}#trail"

        def first_look(path: str = path) -> float:
            _drop_caches(dashboard)
            return _get(client, path)

        first = first_look()  # the process's first search also reads the trail model's rows (in the note)
        judged = not (ctx.quick and target >= 1.0)
        rounds = interleave(max(ctx.rounds, 5), {"page": first_look})
        value = rounds.median("page")
        page = client.get(path).text
        matching = page.split(" matching rows", 1)[0].rsplit("<caption>", 1)[-1] if " matching rows" in page else "?"
        shown = ", the newest 200 shown" if "the newest 200 shown" in page else ""
        out.append(Figure(f"web audit trail search {name} ({label})", value, "s", None, None,
                          f"< {target * 1000:.0f} ms" if judged else "report", value < target if judged else None,
                          f"?{query}; {matching} matching rows{shown}; first look; the process's first search "
                          f"{first * 1000:.0f} ms", rounds.load_before, rounds.load_after,
                          len(rounds.samples["page"])))
    return out


def _verify_figure(ctx: Context, client: Any, label: str) -> Figure:
    """POST /audit action=verify-chain: the whole hash chain recomputed (an explicit action; a report)."""
    page = client.get("/audit")
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]

    def verify() -> float:
        started = time.perf_counter()
        r = client.post("/audit", data={"csrf": csrf, "action": "verify-chain"})
        seconds = time.perf_counter() - started
        if r.status_code != 303:
            raise RuntimeError(f"POST /audit verify-chain: {r.status_code} {r.text[:300]}")
        return seconds

    rounds = interleave(3 if "demo" in label else 1, {"verify": verify})
    value = rounds.median("verify")
    return Figure(f"web audit 'verify the chain now' ({label})", value, "s", None, None, "report", None,
                  "POST with the CSRF token: every event's link recomputed (as pgf audit verify); a view then shows "
                  "the result kept for that head", rounds.load_before, rounds.load_after,
                  len(rounds.samples["verify"]))
