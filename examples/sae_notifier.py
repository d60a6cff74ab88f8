#!/usr/bin/env python3
"""SAE notifier: a downstream service that keeps the serious adverse events' reporting deadlines.

It follows the ``safety`` projection of a pgf-events store through the change feed and keeps, in
its OWN SQLite file, one row per serious adverse event: subject, AE reference, term, awareness,
sponsor report due, regulator report due (SUSARs only), and whether every clock was met (1), one
was missed (0) or one is still pending (NULL).

Exactly once, across crashes: each change is applied in ONE transaction of the notifier's database
that also stores the change's feed position (and logs it in ``applied``). Killed at any moment, the
notifier either committed a change with its position or neither; on restart it resumes with
``after=`` the stored position, so it never skips a change and never applies one twice.

    python examples/sae_notifier.py --db sqlite:///pgf-trial.db --state notifier.db --once
    python examples/sae_notifier.py --db postgresql://postgres@127.0.0.1/trial --state notifier.db
    sqlite3 notifier.db 'SELECT * FROM sae_due ORDER BY sponsor_due'

It prints one line per new or changed deadline on stdout; Ctrl-C or SIGTERM stop it cleanly.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import sys
import threading
import time
from contextlib import closing
from typing import Any

from pgf_events.feed import Change, ChangeFeed

PROJECTION = "safety"
SCHEMA = """
CREATE TABLE IF NOT EXISTS feed_position (
    feed TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sae_due (
    ae_ref TEXT PRIMARY KEY,          -- the AE's event reference, e.g. S001#7
    subject TEXT NOT NULL,
    term TEXT NOT NULL,
    awareness TEXT NOT NULL,          -- when the site became aware (the clocks' start), UTC
    sponsor_due TEXT,                 -- report to the sponsor due by (UTC)
    regulator_due TEXT,               -- expedited report to the regulator due by (SUSARs only)
    met INTEGER,                      -- 1 every clock met, 0 one missed, NULL still pending
    position INTEGER NOT NULL         -- the feed position that last set this row
);
CREATE TABLE IF NOT EXISTS applied (  -- one row per change applied: the exactly-once evidence
    position INTEGER PRIMARY KEY,
    subject TEXT NOT NULL,
    event_ref TEXT NOT NULL
);
"""
COLUMNS = ("subject", "term", "awareness", "sponsor_due", "regulator_due", "met")


def deadlines(change: Change) -> dict[str, dict[str, Any]]:
    """The serious AEs of one subject's new safety row, keyed by AE reference."""
    out = {}
    for ae in change.data["safety"]["adverse_events"]:
        clocks = {c["name"]: c for c in ae.get("clocks") or []}
        if not clocks:
            continue  # not serious: no reporting clock
        results = [c["met"] for c in clocks.values()]
        out[ae["ref"]] = {
            "subject": change.subject, "term": ae["term"], "awareness": ae["aware"] or ae["onset"],
            "sponsor_due": clocks["sponsor"]["due"] if "sponsor" in clocks else None,
            "regulator_due": clocks["regulator"]["due"] if "regulator" in clocks else None,
            "met": 0 if False in results else 1 if all(results) else None,
        }
    return out


class Notifier:
    def __init__(self, path: str):
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=30)  # we issue BEGIN/COMMIT
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.executescript(SCHEMA)

    def position(self) -> int:
        row = self.conn.execute("SELECT position FROM feed_position WHERE feed = ?", (PROJECTION,)).fetchone()
        return row[0] if row else 0

    def apply(self, change: Change, *, delay: float = 0.0) -> list[str]:
        """Apply one change and move the position, in one transaction; returns what changed, for humans."""
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            if change.position <= self.position():  # a second notifier on the same file got here first
                c.execute("ROLLBACK")
                return []
            new = deadlines(change)
            old = {row[0]: dict(zip(COLUMNS, row[1:], strict=True)) for row in c.execute(
                f"SELECT ae_ref, {', '.join(COLUMNS)} FROM sae_due WHERE subject = ?", (change.subject,))}
            messages = []
            for ref in old.keys() - new.keys():  # voided, or corrected to non-serious
                c.execute("DELETE FROM sae_due WHERE ae_ref = ?", (ref,))
                messages.append(f"{ref} {old[ref]['term']}: no longer a serious adverse event")
            for ref, row in new.items():
                c.execute(
                    f"INSERT INTO sae_due (ae_ref, {', '.join(COLUMNS)}, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    f"ON CONFLICT (ae_ref) DO UPDATE SET {', '.join(f'{k} = excluded.{k}' for k in COLUMNS)}, "
                    "position = excluded.position",
                    (ref, *(row[k] for k in COLUMNS), change.position),
                )
                if old.get(ref) != row:
                    messages.append(_describe(ref, row, change.event_ref))
            c.execute("INSERT INTO applied (position, subject, event_ref) VALUES (?, ?, ?)",
                      (change.position, change.subject, change.event_ref))
            c.execute("INSERT INTO feed_position (feed, position) VALUES (?, ?) "
                      "ON CONFLICT (feed) DO UPDATE SET position = excluded.position", (PROJECTION, change.position))
            if delay:
                time.sleep(delay)  # widen the window in which a crash hits an open transaction (demos, tests)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return messages

    def summary(self) -> str:
        tracked, missed, pending = self.conn.execute(
            "SELECT count(*), coalesce(sum(met = 0), 0), coalesce(sum(met IS NULL), 0) FROM sae_due").fetchone()
        return f"at position {self.position()}: {tracked} SAE(s) tracked, {missed} with a missed clock, {pending} pending"


def _describe(ref: str, row: dict[str, Any], because: str) -> str:
    state = {1: "met", 0: "MISSED", None: "pending"}[row["met"]]
    text = f"{ref} {row['subject']} {row['term']}: sponsor report due {row['sponsor_due']}"
    if row["regulator_due"]:
        text += f", regulator report due {row['regulator_due']}"
    return f"{text} ({state}; after {because})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=os.environ.get("PGF_DB"), help="the trial store URL (default $PGF_DB)")
    parser.add_argument("--state", default="sae-notifier.db", help="the notifier's own SQLite file")
    parser.add_argument("--once", action="store_true", help="apply every change so far, then exit")
    parser.add_argument("--interval", type=float, default=None, help="SQLite stores: seconds between polls")
    parser.add_argument("--delay", type=float, default=0.0, help=argparse.SUPPRESS)  # tests: slow each transaction
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    notifier = Notifier(args.state)
    with ChangeFeed(args.db, interval=args.interval) as feed:
        after = notifier.position()
        changes = feed.changes(after, PROJECTION) if args.once else feed.follow(after, PROJECTION, stop=stop)
        with closing(changes):
            for change in changes:
                for message in notifier.apply(change, delay=args.delay):
                    print(message, flush=True)
                if stop.is_set():
                    break
    print(notifier.summary(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
