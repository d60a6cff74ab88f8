"""Browser fixtures: Debian's Chromium driven by Playwright (its own browsers cannot be downloaded
here), a real ``pgf serve`` over a demo store, and a page that fails the test on any console error.

Skips (with the reason) only when Chromium or Playwright is missing and ``CI`` is not set; under
CI the browser tests must run. Screenshots go to ``tests/web/artifacts/`` (ignored by git).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.feed.procs import run_pgf

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).with_name("artifacts")


def _unavailable() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    reason = _unavailable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run under CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)  # a loaded machine: waiting is not failing (no test here is timed)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Tab:
    """One browser tab with its own cookies; collects console errors and uncaught page errors."""

    def __init__(self, browser: Any, base: str, name: str):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.base = base
        self.name = name
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def go(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        assert response is not None
        return response

    def shot(self, label: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def get(self, path: str, **kw: Any) -> Any:
        """A request with this tab's cookies that is not a navigation (no console noise on a 403)."""
        return self.context.request.get(self.base + path, max_redirects=0, **kw)

    def close(self) -> None:
        self.context.close()
        assert self.errors == [], self.errors


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo cohort, made once (by the real CLI, as the OS account); tests copy it."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    done = run_pgf(f"sqlite:///{path}", "demo")
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture
def demo_copy(demo_store: Path, tmp_path: Path) -> str:
    target = tmp_path / "trial.db"
    for suffix in ("", "-wal", "-shm"):
        source = demo_store.with_name(demo_store.name + suffix)
        if source.exists():
            shutil.copy(source, target.with_name(target.name + suffix))
    return f"sqlite:///{target}"
