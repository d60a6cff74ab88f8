"""The web workspace: server-rendered HTML pages on ``pgf serve`` (issue 17).

Jinja2 templates (``templates/``), one local stylesheet (``static/web.css``), no CDN and no
JavaScript. Mounted by :func:`pgf_events.serve.app.build_app` beside the JSON API; the API's
authenticator decides how people sign in (:mod:`.session`).

- ``core.py``: :class:`~.core.Page` (what a handler gets), :class:`~.core.Viewer` (user, roles,
  sites), :class:`~.core.TimeTravel` (``?as_of=`` and ``?cutoff=``), rendering and error pages;
- ``session.py``: sign-in (database password on PostgreSQL, the start-up token on SQLite), the
  signed session cookie, CSRF tokens, sign-out, idle timeout;
- ``app.py``: the routes (:data:`~.app.PAGE_MODULES`);
- ``figures/``: pure functions from data to an SVG string;
- one module per page: ``dashboard.py`` (``/``), ...

How to add a page
-----------------
1. Write ``pgf_events/web/mypage.py`` with an ``async def handler(page: Page) -> Response`` and
   ``PAGES = [("/mypage", handler, ("GET",))]`` (add ``"POST"`` for a form).
2. Do database work in a worker thread as the viewer: ``rows = await page.run(fn, arg)`` calls
   ``fn(app, arg)`` with the viewer's roles re-checked and their site scope set, so ``app.patient``,
   ``app.stream`` and ``app.subjects()`` refuse or leave out other sites. Filter anything else by
   ``page.viewer.sees(site)``; refuse an action with ``page.require("sdv", "tick SDV")``.
3. Honour time travel: ``page.when.as_of`` (a datetime or None: what the store knew then) and
   ``page.when.cutoff`` (a date or None: the clinical data cut-off); build every link with
   ``page.url("/path", key=value)`` so the URL carries both.
4. Render ``return page.render("mypage.html", title="My page", rows=rows)`` where the template
   starts ``{% extends "base.html" %}`` and fills ``{% block main %}``. Every POST form carries
   ``<input type="hidden" name="csrf" value="{{ csrf }}">`` (checked before the handler runs; the
   submitted fields are in ``page.form``); every control has a ``<label>``.
5. Add the module to :data:`pgf_events.web.app.PAGE_MODULES` and, for the menu, to
   :data:`pgf_events.web.core.NAV`.

A :class:`~pgf_events.domain.errors.PgfError` raised by a handler becomes an error page (403 for a
refusal, 404 for an unknown patient, 400 for bad input).
"""
