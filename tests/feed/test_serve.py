"""``pgf serve`` against a real uvicorn server started by the test on a free 127.0.0.1 port."""

from __future__ import annotations

import base64
import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgf_events.application import TrialConduct
from pgf_events.projections.slices import PROJECTIONS
from pgf_events.store import parse_url
from tests.conftest import Pgf
from tests.feed.procs import create_store, run_pgf, sse_events, start_pgf, stop, wait_for
from tests.helpers import USER, enrolled

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

TIMEOUT = httpx.Timeout(30.0)


def credentials(url: str, started: str) -> str:
    """The Authorization header: the one-time token printed at start (SQLite), or the store URL's
    database login and password in HTTP Basic (PostgreSQL; a server that trusts local logins takes any)."""
    if url.startswith("postgresql"):
        from pgf_events.store import parse_url

        env = parse_url(url).env
        login, password = env["POSTGRES_USER"], env["POSTGRES_PASSWORD"] or "any-password"
        return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()
    token = re.search(r"Authorization: Bearer (\S+)", started)
    assert token, started
    return f"Bearer {token.group(1)}"


class Server:
    def __init__(self, url: str, tmp_path: Path, *args: str):
        self.err = tmp_path / "serve.err"
        self.proc = start_pgf(url, "serve", "--port", "0", "--keepalive", "0.5", *args,
                              out=tmp_path / "serve.out", err=self.err)
        try:
            found = wait_for(lambda: re.search(r"http://127\.0\.0\.1:\d+", self.err.read_text())
                             or self.proc.poll() is not None, timeout=60, what="the server's address")
            assert not isinstance(found, bool), self.err.read_text()
            self.base = found.group(0)
            self.headers = {"Authorization": credentials(url, self.err.read_text())}
            wait_for(self._healthy, timeout=60, what="the server to answer /health")
        except BaseException:
            self.proc.kill()
            self.proc.wait(timeout=30)
            raise

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Kill the server (if it still runs) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.base + "/health", headers=self.headers, timeout=TIMEOUT).status_code == 200
        except httpx.TransportError:
            return False

    def get(self, path: str, *, headers: dict[str, str] | None = None, auth: bool = True, **kw: Any) -> Any:
        sent = {**(self.headers if auth else {}), **(headers or {})}
        return httpx.get(self.base + path, headers=sent, timeout=TIMEOUT, **kw)

    def events(self, path: str, *, count: int, headers: dict[str, str] | None = None,
               comments: int = 0) -> tuple[list[dict[str, Any]], list[str]]:
        """Read ``count`` events (and at least ``comments`` comment lines) from an SSE stream, then hang up."""
        got: list[dict[str, Any]] = []
        notes: list[str] = []
        with httpx.stream("GET", self.base + path, headers={**self.headers, **(headers or {})},
                          timeout=TIMEOUT) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            for item in sse_events(response.iter_lines()):
                if "comment" in item:
                    notes.append(item["comment"])
                elif "data" in item:
                    got.append(item)
                if len(got) >= count and len(notes) >= comments:
                    break
        return got, notes


@pytest.fixture
def server(store_url: str, tmp_path: Path) -> Iterator[tuple[Server, TrialConduct]]:
    create_store(store_url)
    app = TrialConduct(parse_url(store_url))
    enrolled(app, "S001")
    enrolled(app, "S002")
    with Server(store_url, tmp_path) as srv:
        yield srv, app
        app.close()


def _changes(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for event in events:
        assert int(event["id"]) == json.loads(event["data"])["position"]
    return [json.loads(event["data"]) for event in events]


def test_sse_feed_resumes_from_last_event_id_and_streams_live(server: tuple[Server, TrialConduct],
                                                              store_url: str) -> None:
    srv, app = server
    snapshot = [json.loads(line) for line in run_pgf(store_url, "follow", "--once").stdout.splitlines()]
    first, _ = srv.events("/changes?after=0", count=len(snapshot))
    assert _changes(first) == snapshot
    cut = len(snapshot) // 2
    resumed, _ = srv.events("/changes?after=0", count=len(snapshot) - cut,
                            headers={"Last-Event-ID": first[cut - 1]["id"]})
    assert _changes(resumed) == snapshot[cut:]  # Last-Event-ID wins over ?after=, nothing repeated or lost

    # Live: a stream caught up at the end receives an event recorded after it connected, then keep-alives.
    got: list[dict[str, Any]] = []
    with httpx.stream("GET", srv.base + "/changes", headers=srv.headers, params={"after": snapshot[-1]["position"],
                                                            "projection": "safety"}, timeout=TIMEOUT) as response:
        lines = sse_events(response.iter_lines())
        assert next(lines).get("retry") == "1000"  # the stream is open (headers and first bytes sent)
        ref = app.record("ae", "S002", {"onset": "2025-03-05", "term": "headache", "grade": 1}, user=USER).ref
        comments = 0
        for item in lines:
            if "comment" in item:
                comments += 1
            elif "data" in item:
                got.append(item)
            if got and comments:
                break
    live = _changes(got)
    assert live[0]["event_ref"] == ref and live[0]["projection"] == "safety" and live[0]["kind"] == "update"
    assert live[0]["position"] > snapshot[-1]["position"]


def test_server_stops_cleanly_with_a_stream_open(server: tuple[Server, TrialConduct]) -> None:
    srv, _ = server
    with httpx.stream("GET", srv.base + "/changes", headers=srv.headers, timeout=TIMEOUT) as response:
        next(response.iter_lines())
        assert stop(srv.proc, signal.SIGINT, timeout=60) == 0
    assert "Traceback" not in srv.err.read_text()


def test_bad_positions_and_projections_are_400(server: tuple[Server, TrialConduct]) -> None:
    srv, _ = server
    for path, headers in (("/changes?after=x", None), ("/changes?after=-1", None),
                          ("/changes?projection=adverse", None), ("/changes", {"Last-Event-ID": "soon"})):
        response = srv.get(path, headers=headers)
        assert response.status_code == 400 and "error" in response.json(), path


def test_openapi_lists_every_path_the_server_answers(server: tuple[Server, TrialConduct]) -> None:
    from pgf_events.serve.app import PATHS

    srv, _ = server
    doc = srv.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1") and set(doc["paths"]) == set(PATHS)
    assert "authenticat" in doc["info"]["description"]
    assert doc["paths"]["/reports/{name}"]["get"]["parameters"][0]["schema"]["enum"] == list(PROJECTIONS)
    assert srv.get("/health").json()["status"] == "ok"


def test_the_openapi_document_is_valid_openapi_3_1() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    from pgf_events.serve.openapi import openapi_document

    validator.validate(openapi_document("http://127.0.0.1:8765"))


def test_report_and_status_endpoints_equal_the_cli(server: tuple[Server, TrialConduct], store_url: str) -> None:
    srv, _ = server
    pgf = Pgf(store_url)
    assert srv.get("/reports/endpoints").json() == json.loads(pgf.ok("report", "endpoints", "--json").stdout)
    assert srv.get("/reports/safety").json() == json.loads(pgf.ok("report", "safety", "--json").stdout)
    assert srv.get("/patients/S001").json() == json.loads(pgf.ok("status", "S001", "--json").stdout)
    assert srv.get("/patients/s002").json()["subject"] == "S002"
    assert srv.get("/patients/S001").headers["x-read-models-verified"].startswith("read models never verified")
    pgf.ok("projections", "verify")
    checked = srv.get("/reports/survival")
    assert checked.json()["read_models_verified"]["ok"] is True
    assert checked.headers["x-read-models-verified"].startswith("read models last verified ")
    missing = srv.get("/patients/S404")
    assert missing.status_code == 404 and "S404" in missing.json()["error"]
    assert srv.get("/reports/adverse").status_code == 404
    assert srv.get("/nowhere").status_code == 404


def test_serve_without_the_extra_says_how_to_install_it(pgf: Pgf, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    create_store(pgf.url)
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn -> ModuleNotFoundError
    pgf.rejected("serve", contains="pgf-events[serve]")


def test_serve_refuses_a_port_in_use(pgf: Pgf) -> None:
    import socket

    create_store(pgf.url)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        pgf.rejected("serve", "--port", str(taken.getsockname()[1]), contains="cannot listen")
