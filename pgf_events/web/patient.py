"""``/patient/{subject}``: one patient's casebook (issue 17 item 4): the haematology course, the
derived status with its reasons and source events, the full history (old -> new), queries on any
event (raise, answer, close as the role allows), SDV ticks for monitors, and signatures."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from starlette.responses import Response

from pgf_events import monitoring
from pgf_events.application import normalise_subject
from pgf_events.domain.errors import ValidationError
from pgf_events.web.core import Page, redirect
from pgf_events.web.figures.course import course_svg
from pgf_events.web.readers import casebook

# What a POST may ask for: the permission it needs, and what it is called in a refusal.
ACTIONS = {"query-open": ("query-open", "raise a query"), "query-answer": ("query-answer", "answer a query"),
           "query-close": ("query-close", "close a query"), "sdv": ("sdv", "verify source data")}
DONE = {"query-open": "Query raised.", "query-answer": "Answer recorded.", "query-close": "Query closed.",
        "sdv": "Source data verification recorded."}
MAX_TEXT = 2000


async def patient_page(page: Page) -> Response:
    subject = normalise_subject(page.request.path_params["subject"])
    if page.request.method == "POST":
        return await _act(page, subject)
    data = await page.run(lambda app: casebook(app, page.seat.store, subject, page.when))
    done = DONE.get(page.request.query_params.get("done", ""), "")
    may = {name: page.viewer.may(need) for name, (need, _) in ACTIONS.items()}
    return page.render("patient.html", title=f"Patient {data['doc']['subject']}", d=data, doc=data["doc"],
                       figure=Markup(course_svg(data["course"])), done=done, may=may,  # noqa: S704 - built by escaping
                       acting=not page.when.active)


def _field(page: Page, name: str, *, required: bool = True) -> str:
    assert page.form is not None
    value: Any = page.form.get(name)
    text = value.strip() if isinstance(value, str) else ""
    if required and not text:
        raise ValidationError(f"{name} is required")
    if len(text) > MAX_TEXT:
        raise ValidationError(f"{name} is longer than {MAX_TEXT} characters")
    return text


async def _act(page: Page, subject: str) -> Response:
    assert page.form is not None
    action = _field(page, "action")
    if action not in ACTIONS:
        raise ValidationError(f"unknown action {action!r}")
    if page.when.active:
        raise ValidationError("you are looking at the past (as of / cut-off): go back to now to act")
    need, what = ACTIONS[action]
    page.require(need, what)
    user = page.viewer.user

    def ours(ref_or_qid: str, sep: str) -> str:
        value = ref_or_qid.strip().upper()
        if value.partition(sep)[0] != subject:
            raise ValidationError(f"{value} is not about patient {subject}")
        return value

    def work(app: Any) -> None:
        app.authorise(user, need)
        app.patient(subject)  # refuses a patient of a site the viewer may not see
        if action == "query-open":
            field = _field(page, "field", required=False) or None
            monitoring.open_query(app, ours(_field(page, "ref"), "#"), _field(page, "text"), user=user, field=field)
        elif action == "query-answer":
            monitoring.answer_query(app, ours(_field(page, "qid"), "-"), _field(page, "text"), user=user)
        elif action == "query-close":
            monitoring.close_query(app, ours(_field(page, "qid"), "-"), _field(page, "text", required=False) or None,
                                   user=user)
        else:
            refs = [ours(r, "#") for r in page.form.getlist("ref") if isinstance(r, str)]  # type: ignore[union-attr]
            if not refs:
                raise ValidationError("tick at least one record to verify")
            monitoring.verify_source(app, refs, user=user)

    await page.run(work)
    anchor = "#queries" if action.startswith("query") else "#history"
    return redirect(page.url(f"/patient/{subject}", done=action) + anchor)


PAGES = [("/patient/{subject}", patient_page, ("GET", "POST"))]
