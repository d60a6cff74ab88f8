"""Attacks on ``pgf serve``: no or wrong credentials, a foreign Host header (DNS rebinding), and
out-of-range positions, on SQLite (one-time token) and PostgreSQL (database login, HTTP Basic)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgf_events.application import TrialConduct
from pgf_events.store import parse_url
from tests.conftest import Pgf
from tests.feed.procs import create_store
from tests.helpers import enrolled

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from tests.feed.test_serve import Server  # noqa: E402 - after the extras are known to be installed

PATHS = ("/health", "/patients/S001", "/reports/survival", "/changes?after=0")


@pytest.fixture
def served(store_url: str, tmp_path: Path) -> Iterator[Server]:
    create_store(store_url)
    app = TrialConduct(parse_url(store_url))
    enrolled(app, "S001")
    app.close()
    with Server(store_url, tmp_path) as srv:
        yield srv


def _basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def test_no_or_wrong_credentials_are_401_and_a_foreign_host_is_400(served: Server) -> None:
    for path in PATHS:
        response = served.get(path, auth=False)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"].startswith("authentication required")
        assert response.headers["www-authenticate"].split()[0] in ("Basic", "Bearer")
    for header in ("Bearer not-the-token", "Basic !!!", _basic("nobody", ""), _basic("nobody", "secret"),
                   "Digest abc"):
        response = served.get("/reports/survival", auth=False, headers={"Authorization": header})
        assert response.status_code == 401, header
    assert served.get("/reports/survival").status_code == 200
    assert served.get("/openapi.json", auth=False).status_code == 200  # the public description only
    # DNS rebinding: a page on evil.example that resolves to 127.0.0.1 sends its own Host header.
    for host in ("evil.example", "evil.example:8765", "127.0.0.1.nip.io"):
        response = served.get("/reports/survival", headers={"Host": host})
        assert response.status_code == 400, host
    assert served.get("/reports/survival", headers={"Host": "localhost"}).status_code == 200


BAD_POSITIONS = [
    ("/changes?after=-1", None), ("/changes?after=" + "9" * 30, None), ("/changes?after=1e3", None),
    ("/changes?after=" + "9" * 5000, None), ("/changes?after=0x10", None),
    ("/changes", {"Last-Event-ID": "-5"}), ("/changes", {"Last-Event-ID": str(2**63)}),
    ("/changes", {"Last-Event-ID": "soon"}),
]


def test_out_of_range_positions_are_a_clean_400(served: Server) -> None:
    for path, headers in BAD_POSITIONS:
        response = served.get(path, headers=headers)
        assert response.status_code == 400, (path, response.text)
        message = response.json()["error"]
        assert "must be a feed position" in message and len(message) < 200


def test_sqlite_token_also_works_on_the_url(sqlite_url: str, tmp_path: Path) -> None:
    create_store(sqlite_url)
    with Server(sqlite_url, tmp_path) as srv:
        token = srv.headers["Authorization"].split()[1]
        assert srv.get(f"/health?token={token}", auth=False).status_code == 200
        assert srv.get("/health?token=guess", auth=False).status_code == 401


def test_sqlite_serve_refuses_to_listen_beyond_localhost(pgf: Pgf) -> None:
    create_store(pgf.url)
    pgf.rejected("serve", "--host", "0.0.0.0", "--port", "0", contains="listens on localhost only")


@pytest.mark.postgres
def test_postgres_a_wrong_password_is_401_and_the_right_one_opens(pg_url: str, tmp_path: Path) -> None:
    env = parse_url(pg_url).env
    if not env["POSTGRES_PASSWORD"]:
        pytest.skip("needs the SCRAM test cluster (logins with passwords); this server trusts local logins")
    create_store(pg_url)
    with Server(pg_url, tmp_path) as srv:
        login = env["POSTGRES_USER"]
        assert srv.get("/health").status_code == 200
        wrong = srv.get("/health", auth=False, headers={"Authorization": _basic(login, "not-" + env["POSTGRES_PASSWORD"])})
        assert wrong.status_code == 401 and "login or password is wrong" in wrong.json()["error"]


@pytest.mark.postgres
def test_postgres_a_login_without_a_read_role_is_403(pg_url: str, tmp_path: Path) -> None:
    from tests.pgcluster import Cluster

    cluster = Cluster.session()
    for login in ("ada", "mona", "eve"):
        cluster.ensure_login(login)  # one database login per person, each with its own password
    pgf = Pgf(pg_url)
    pgf.ok("record", "register", "S001", "--site", "PKU", "--birth-date", "1980-02-03", "--sex", "F",
           "--weight-kg", "61", "--transplant-date", "2025-01-10")
    pgf.ok("users", "grant", "ada", "admin", "--reason", "set-up", user="ada")
    pgf.ok("users", "grant", "mona", "monitor", user="ada")
    with Server(pgf.url_for("mona"), tmp_path) as srv:  # started by a monitor (a read role)
        assert srv.get("/reports/survival").status_code == 200
        eve = srv.get("/reports/survival", auth=False, headers={"Authorization": _basic("eve", cluster.password("eve"))})
        assert eve.status_code == 403 and "eve" in eve.json()["error"]  # authenticated, but holds no role
