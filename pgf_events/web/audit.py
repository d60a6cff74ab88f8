"""``/audit`` (issue 17 item 5): the chain and read-model verification status, signed checkpoint
statements, the exception report, the deviation log and an audit-trail search; each table is
exportable as CSV (``/audit/{table}.csv`` with the same filters).

Everything is read as the viewer (a site-scoped grant sees only its sites' patients) and as the
store knew it ``as_of``; the deviation log also honours the data ``cutoff``.

Speed (issue 17's bar: a view under 1 s at 5,000 patients). The hash chain is verified on demand only
("Verify the chain now", a POST with the CSRF token, for an unscoped reader): the result is kept per
server and store with the log head it covered, and the page says against which head it was verified
and how many events came since; it never calls a later head verified. The exception report and the
deviation log now come from :mod:`pgf_events.audit.findings` (per-patient rows, only changed
streams recomputed). With time travel (``as_of``) they get the treatment of
:mod:`pgf_events.projections.travel`: the rows of the streams whole by then are the audit model's,
streams not yet registered are left out, and only the streams straddling that time are read from the
log (:meth:`~pgf_events.audit.findings.AuditModel.findings_as_of`); the result is kept per (as-of,
cut-off, log head, viewer's sites) for the next look (:data:`TRAVEL`). Without read models (a
site-scoped PostgreSQL login) every stream is read as of then. An audit-trail search for one
patient reads that patient's streams only; a search by user, kind or recorded date alone, or the
whole trail, still reads every stream (seconds at 5,000 patients).
"""

from __future__ import annotations

import io
import threading
import weakref
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time
from itertools import chain
from typing import Any

from defusedcsv import csv
from starlette.responses import Response

from pgf_events.audit import checkpoints
from pgf_events.audit.chain import Checkpoint
from pgf_events.audit.exceptions import COLUMNS as EXCEPTION_COLUMNS
from pgf_events.audit.exceptions import KINDS as EXCEPTION_KINDS
from pgf_events.audit.exceptions import Merged, exception_rows, merge_exceptions, patient_exceptions
from pgf_events.audit.findings import model_of
from pgf_events.audit.source import patient_streams
from pgf_events.audit.trail import COLUMNS as TRAIL_COLUMNS
from pgf_events.audit.trail import trail_rows
from pgf_events.audit.trail_monitoring import monitoring_trail_rows
from pgf_events.audit.verify import chain_reader, check_ciphertexts, describe_break
from pgf_events.audit.verify import verify as verify_chain
from pgf_events.domain.errors import ValidationError
from pgf_events.domain.parsing import parse_date
from pgf_events.formatting import show
from pgf_events.projections.deviations import COLUMNS as DEVIATION_COLUMNS
from pgf_events.projections.deviations import deviation_report, patient_deviations
from pgf_events.projections.verify import last_check, verified_note, verify_read_models
from pgf_events.web.core import SECURITY_HEADERS, Forbidden, Page, redirect

SHOWN = 200  # trail rows on the page; the CSV has every match
TRAIL_FILTERS = ("user", "subject", "kind", "from", "to", "exception")


def chain_status(app: Any) -> dict[str, Any]:
    """``pgf audit verify``: recompute the hash chain over every stored event."""
    result = verify_chain(chain_reader(app))
    broken = result.broken if result.broken is not None else check_ciphertexts(app) if result.ok else None
    head = result.head
    return {"ok": broken is None, "events": result.events, "seconds": round(result.seconds, 3),
            "head": str(Checkpoint.of(head.position, head.hash)) if head and head.position else None,
            "position": head.position if head else 0,
            "backfilled": result.backfilled, "broken": describe_break(app, broken)["message"] if broken else None}


# The last chain verification on this server, per store (its result names the head it covered).
_VERIFIED: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
_VERIFIED_LOCK = threading.Lock()


def verify_now(app: Any, store: Any, user: str) -> dict[str, Any]:
    """Verify the chain, keep the result (with who asked and when) as the last verification."""
    result = {**chain_status(app), "verified_by": user, "verified_at": app.clock()}
    if store is not None:
        with _VERIFIED_LOCK:
            _VERIFIED[store] = result
    return result


def last_verification(app: Any, store: Any) -> dict[str, Any] | None:
    """The last verification of this store on this server, with ``current`` (it covered today's log
    head) and ``since`` (events recorded after the head it covered), or None."""
    if store is None:
        return None
    with _VERIFIED_LOCK:
        found = _VERIFIED.get(store)
    if found is None:
        return None
    head = app.recorder.max_notification_id() or 0
    return {**found, "current": head == found["position"], "since": max(0, head - found["position"]),
            "log_head": head}


# Time travel: the exception and deviation rows of an (as-of, cut-off, head, sites), kept for the next look.
TRAVEL: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
TRAVEL_SIZE = 8
_TRAVEL_LOCK = threading.Lock()


def trail_filters(query: Any) -> dict[str, str]:
    out = {k: (query.get(k) or "").strip() for k in TRAIL_FILTERS}
    for key in ("from", "to"):
        if out[key]:
            parse_date(out[key], key)  # a clear 400 for a bad date
    return out


def trail(app: Any, as_of: datetime | None, filters: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Audit-trail rows (records and monitoring) matching the filters: user, patient, kind, and a
    recorded-date range (inclusive, UTC). With a patient, only that patient's streams are read (the
    rows of every other stream would be left out); otherwise every stream's."""
    start = datetime.combine(parse_date(filters["from"], "from"), time.min) if filters["from"] else None
    end = datetime.combine(parse_date(filters["to"], "to"), time.max) if filters["to"] else None
    user, subject, kind = filters["user"].lower(), filters["subject"].upper(), filters["kind"].lower()
    scoped = app.site_scope is not None
    subjects = _registered(app, subject) if subject else None
    for row in chain(trail_rows(app, as_of, subjects), monitoring_trail_rows(app, as_of, subjects)):
        if scoped and not row["subject"]:
            continue  # the store's lock and other rows of no patient: for unscoped readers only
        stamp = datetime.fromisoformat(str(row["recorded_utc"]).replace("Z", ""))
        if ((user and row["user"].lower() != user) or (subject and row["subject"] != subject)
                or (kind and kind not in (str(row["kind"]).lower(), str(row["type"]).lower()))
                or (start and stamp < start) or (end and stamp > end)):
            continue
        yield row


def _registered(app: Any, subject: str) -> list[str]:
    """``[subject]`` if it is a patient ``app.subjects()`` lists (registered, at a site the viewer may
    see), else ``[]``: its registration read, not every patient's."""
    registration = next(iter(app.events.get(app.patient_id(subject), lte=1)), None)
    if registration is None or getattr(registration, "subject", None) != subject:
        return []
    return [subject] if app.in_scope(registration.record.site) else []


def _findings(app: Any, page: Page, wanted: tuple[str, ...]) -> tuple[Sequence[dict[str, Any]], list[dict[str, Any]]]:
    """The exception rows (of the ``wanted`` kinds) and the deviation log's rows the viewer may see."""
    when, store = page.when, page.seat.store
    if when.as_of is None and store is not None:
        exceptions, every = model_of(store).tables(app.in_scope, app.clock(), wanted)
        return exceptions, deviation_report(app, cutoff=when.cutoff, every=every)["rows"]
    if when.as_of is None:  # no read models (a site-scoped PostgreSQL login): from the log
        return exception_rows(app, None, wanted), deviation_report(app, cutoff=when.cutoff)["rows"]
    key = (id(app.store), app.recorder.max_notification_id(), when.as_of, when.cutoff, app.site_scope, wanted)
    with _TRAVEL_LOCK:
        found = TRAVEL.get(key)
        if found is not None:
            TRAVEL.move_to_end(key)
            return found["exceptions"], found["deviations"]
    found = _travelled(app, when.as_of, when.cutoff, wanted, store)
    with _TRAVEL_LOCK:
        TRAVEL[key] = found
        while len(TRAVEL) > TRAVEL_SIZE:
            TRAVEL.popitem(last=False)
    return found["exceptions"], found["deviations"]


def _travelled(app: Any, as_of: datetime, cutoff: date | None, wanted: tuple[str, ...],
               store: Any = None) -> dict[str, Any]:
    """``exception_rows(app, as_of, wanted)`` and ``deviation_report(app, as_of, cutoff)["rows"]``: with
    read models, from the audit model's rows of the streams whole by then, only the streams straddling
    that time read from the log (:meth:`~pgf_events.audit.findings.AuditModel.findings_as_of`); without
    them (a site-scoped PostgreSQL login), from every stream as of then (read once for both)."""
    if store is not None:
        exceptions, every = model_of(store).findings_as_of(app, as_of, wanted)
        return {"exceptions": exceptions,
                "deviations": deviation_report(app, as_of=as_of, cutoff=cutoff, every=every)["rows"]}
    found, deviations = [], []
    for subject, events in patient_streams(app, as_of):
        found.append(patient_exceptions(subject, events, app.protocol))
        deviations += patient_deviations(subject, events, app.protocol, now=as_of)
    return {"exceptions": merge_exceptions(found, wanted),
            "deviations": deviation_report(app, as_of=as_of, cutoff=cutoff, every=deviations)["rows"]}


def _tables(app: Any, page: Page, which: Sequence[str], filters: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "exceptions" in which or "deviations" in which:
        wanted = (filters["exception"],) if filters["exception"] in EXCEPTION_KINDS else EXCEPTION_KINDS
        out["exceptions"], out["deviations"] = _findings(app, page, wanted)
    if "trail" in which:
        out["trail"] = list(trail(app, page.when.as_of, filters))
    if "chain" in which:  # the CSV: the last verification if it covered today's head, else verified now
        last = last_verification(app, page.seat.store)
        out["chain"] = [last if last is not None and last["current"] else verify_now(app, page.seat.store,
                                                                                     page.viewer.user)]
    return out


async def audit_page(page: Page) -> Response:
    if page.request.method == "POST":
        return await _post(page)
    filters = trail_filters(page.request.query_params)
    store = page.seat.store

    searched = any(v for k, v in filters.items() if k != "exception") or page.request.query_params.get("trail") == "all"

    def read(app: Any) -> dict[str, Any]:
        which = ["exceptions", "deviations"] + (["trail"] if searched else [])
        data = _tables(app, page, which, filters)
        data["chain"] = last_verification(app, store)
        found = data["exceptions"]
        data["exception_counts"] = found.counts if isinstance(found, Merged) else Counter(r["kind"] for r in found)
        data["trail"] = sorted(data.get("trail", []), key=lambda r: str(r["recorded_utc"]), reverse=True)  # newest first
        data["read_models"] = last_check(store) if store is not None else None
        return data

    data = await page.run(read)
    return page.render("audit.html", title="Audit", data=data, chain=data["chain"],
                       may_verify=_may_verify(page),
                       read_models=data["read_models"], read_note=verified_note(data["read_models"]),
                       filters=filters, shown=SHOWN, searched=searched, exception_kinds=EXCEPTION_KINDS,
                       done=page.request.query_params.get("done", ""), csv_query=_csv_query(page, filters))


async def _post(page: Page) -> Response:
    assert page.form is not None
    action = page.form.get("action")
    if action == "verify-read-models":
        if page.when.active:
            raise ValidationError("read models are verified now, not as of a past time: go back to now")
        store = page.seat.store
        if store is None:
            raise ValidationError("this session has no read models to verify")
        await page.run(lambda app: verify_read_models(store, checked_by=page.viewer.user))
        return redirect(page.url("/audit", done="read-models") + "#verification")
    if action == "verify-chain":
        if not _may_verify(page):
            raise Forbidden(f"{page.viewer.user} may not verify the whole chain: it covers every site's events, "
                            "so it needs a reading role for every site (an auditor, or a monitor of every site)")
        await page.run(lambda app: verify_now(app, page.seat.store, page.viewer.user))
        return redirect(page.url("/audit", done="chain") + "#verification")
    if action == "check-statements":
        text = page.form.get("statements")
        if not isinstance(text, str) or not text.strip():
            raise ValidationError("paste the signed checkpoint statements (one JSON line each)")
        if len(text) > 2_000_000:
            raise ValidationError("the statements are longer than 2 MB")
        parsed = checkpoints.parse(text.splitlines())

        def check(app: Any) -> list[dict[str, Any]]:
            reader = chain_reader(app)
            result = verify_chain(reader)
            return [c.as_json() for c in checkpoints.check(app, reader, result, parsed)]

        checked = await page.run(check)
        filters = trail_filters(page.request.query_params)
        return page.render("checkpoints.html", title="Checkpoint statements", checked=checked, filters=filters)
    raise ValidationError(f"unknown action {action!r}")


def _may_verify(page: Page) -> bool:
    """Verifying the chain reads every site's events: a reader of every site (and the read models kept)."""
    return page.viewer.may("read") and page.viewer.sites is None and page.seat.store is not None


def _csv_query(page: Page, filters: dict[str, str]) -> str:
    return page.url("", **filters)


async def export(page: Page) -> Response:
    """``/audit/{table}.csv``: one table, every matching row, as CSV (formula-like cells neutralised)."""
    table = page.request.path_params["table"]
    columns = {"exceptions": EXCEPTION_COLUMNS, "deviations": DEVIATION_COLUMNS, "trail": TRAIL_COLUMNS,
               "chain": ("ok", "events", "head", "seconds", "backfilled", "broken")}.get(table)
    if columns is None:
        raise ValidationError(f"no table {table!r}; choose from exceptions, deviations, trail, chain")
    filters = trail_filters(page.request.query_params)
    rows = (await page.run(lambda app: _tables(app, page, [table], filters)))[table]
    stamp = page.when.as_of_text or date.today().isoformat()
    name = f"pgf-{table}-{stamp}".replace(":", "")
    return Response(to_csv(rows, columns), media_type="text/csv; charset=utf-8",
                    headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}.csv"'})


def to_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return out.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return "" if value is None else value if isinstance(value, str) else show(value)


PAGES = [("/audit", audit_page, ("GET", "POST")), ("/audit/{table}.csv", export, ("GET",))]
