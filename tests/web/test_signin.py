"""The web workspace's sign-in on SQLite (the one-time token) over real HTTP: sessions, CSRF, sign-out,
where sign-in may send you afterwards, and the JSON API still asking for its own credentials."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgf_events.application import TrialConduct
from pgf_events.store import parse_url
from tests.feed.procs import create_store
from tests.helpers import enrolled

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("jinja2")

from tests.feed.test_serve import Server  # noqa: E402 - after the extras are known to be installed


@pytest.fixture
def served(sqlite_url: str, tmp_path: Path) -> Iterator[Server]:
    create_store(sqlite_url)
    app = TrialConduct(parse_url(sqlite_url))
    enrolled(app, "S001")
    app.close()
    with Server(sqlite_url, tmp_path) as srv:
        yield srv


def token_of(srv: Server) -> str:
    return srv.headers["Authorization"].split()[1]


def client(srv: Server) -> httpx.Client:
    return httpx.Client(base_url=srv.base, timeout=30, follow_redirects=False)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def test_pages_need_a_session_and_the_token_link_starts_one(served: Server) -> None:
    with client(served) as c:
        r = c.get("/?as_of=2025-01-01")
        assert r.status_code == 303 and r.headers["location"].startswith("/signin?next=")
        assert c.get("/?token=not-it").headers["location"].startswith("/signin")
        r = c.get(f"/?token={token_of(served)}&as_of=2025-06-30")
        assert r.status_code == 303 and r.headers["location"] == "/?as_of=2025-06-30"  # the token leaves the URL
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        page = c.get("/?as_of=2025-06-30")
        assert page.status_code == 200 and 'aria-current="page">Dashboard' in page.text
        assert 'href="/worklist?as_of=2025-06-30"' in page.text  # links carry the time travel
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        assert c.get("/?as_of=yesterday").status_code == 400
        # The JSON API does not take the browser's session: services send the token.
        assert c.get("/health").status_code == 401
        assert c.get("/health", headers=served.headers).status_code == 200


def test_sign_in_form_csrf_and_sign_out(served: Server) -> None:
    with client(served) as c:
        form = c.get("/signin?next=/patients")
        assert form.status_code == 200 and 'for="secret"' in form.text
        assert csrf_of(form.text)
        assert c.post("/signin", data={"secret": token_of(served), "next": "/"}).status_code == 403  # no CSRF
        form = c.get("/signin")
        wrong = c.post("/signin", data={"csrf": csrf_of(form.text), "secret": "guess", "next": "/"})
        assert wrong.status_code == 200 and "not the token" in wrong.text and 'role="alert"' in wrong.text
        assert c.get("/").status_code == 303  # and no session
        form = c.get("/signin")
        r = c.post("/signin", data={"csrf": csrf_of(form.text), "secret": token_of(served),
                                    "next": "//evil.example/x"})
        assert r.status_code == 303 and r.headers["location"] == "/"  # never off this server
        page = c.get("/")
        assert page.status_code == 200
        assert c.post("/signout", data={"csrf": "forged"}).status_code == 403
        assert c.get("/").status_code == 200  # a forged sign-out did nothing
        out = c.post("/signout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/signin?note=out"
        assert c.get("/").status_code == 303


def test_an_idle_session_ends(sqlite_url: str, tmp_path: Path) -> None:
    create_store(sqlite_url)
    with Server(sqlite_url, tmp_path, "--idle-timeout", "0.02") as srv, client(srv) as c:  # 1.2 s
        assert c.get(f"/?token={token_of(srv)}").status_code == 303
        assert c.get("/").status_code == 200
        time.sleep(1.5)
        r = c.get("/worklist")
        assert r.status_code == 303 and r.headers["location"] == "/signin?next=%2Fworklist&note=ended"
        assert "Your session ended" in c.get(r.headers["location"]).text
        assert c.get("/").status_code == 303  # the session is gone for good
        missing = c.get("/no-such-page")  # an unknown page is a page too, not JSON
        assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]


def test_the_api_answers_match_the_typed_responses_of_openapi(served: Server) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    doc = served.get("/openapi.json", auth=False).json()
    for path, schema in (("/patients/S001", "PatientStatus"), ("/reports/survival", "Report"),
                         ("/reports/eligibility", "Report"), ("/health", "Health")):
        answer = served.get(path)
        assert answer.status_code == 200, path
        jsonschema.validate(answer.json(), {"$ref": f"#/components/schemas/{schema}", "components": doc["components"]})
    refused = served.get("/patients/S999")
    assert refused.status_code == 404
    jsonschema.validate(refused.json(), {"$ref": "#/components/schemas/Error", "components": doc["components"]})
