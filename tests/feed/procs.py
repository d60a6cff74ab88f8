"""Processes for the feed tests: the real ``pgf`` CLI, writers and followers, and waiting for output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pgf_events.application import TrialConduct
from pgf_events.store import parse_url

PGF = [sys.executable, "-c", "from pgf_events.cli import main; main()"]
WRITER = Path(__file__).with_name("writer.py")
ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def env(user: str = "follower") -> dict[str, str]:
    """A child's environment. ``user`` only names the process for readers of the test: identity comes
    from the OS account (SQLite) or the URL's database login (PostgreSQL), never from the environment."""
    drop = ("PGF_DB", "PGF_CIPHER_KEY", "PGF_PROTOCOL", "PGF_USER")
    out = {k: v for k, v in os.environ.items() if k not in drop}
    return {**out, "PYTHONUNBUFFERED": "1"}


def create_store(url: str) -> None:
    """An empty store (readers never create one)."""
    TrialConduct(parse_url(url)).close()


def start_pgf(url: str, *args: str, out: Path, err: Path) -> subprocess.Popen[bytes]:
    with out.open("wb") as stdout, err.open("wb") as stderr:
        return subprocess.Popen([*PGF, "--db", url, *args], stdout=stdout, stderr=stderr, env=env(), cwd=ROOT)


def run_pgf(url: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PGF, "--db", url, *args], capture_output=True, text=True, env=env(), cwd=ROOT,
                          timeout=timeout, check=False)


def start_writer(url: str, *, patients: int = 4, delay: float = 0.01) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(WRITER), url, "--patients", str(patients), "--delay", str(delay)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env("writer"), cwd=ROOT)


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every complete line printed so far (a line cut short by a kill is not a change received)."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [json.loads(line) for line in text.split("\n")[:-1]]


def line_count(path: Path) -> int:
    return path.read_bytes().count(b"\n")


def last_position(path: Path) -> int | None:
    """The position of the last complete line (cheap: parses one line)."""
    data = path.read_bytes()
    end = data.rfind(b"\n")
    if end < 0:
        return None
    return json.loads(data[data.rfind(b"\n", 0, end) + 1:end])["position"]


def wait_for(predicate: Callable[[], T], *, timeout: float = 60, what: str = "a condition",
             every: float = 0.02) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def stop(proc: subprocess.Popen[Any], sig: int, timeout: float = 30) -> int:
    """Send ``sig`` and return the exit code; a process that does not stop in time is killed (and fails)."""
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
        raise


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Parse a text/event-stream: yields {"id", "data"} per event, {"retry"} for a reconnection delay,
    and {"comment"} per comment line."""
    event: dict[str, Any] = {}
    for line in lines:
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif not line:
            if event:
                yield event
            event = {}
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                event["data"] = event["data"] + "\n" + value if "data" in event else value
            elif field in ("id", "retry", "event"):
                event[field] = value
