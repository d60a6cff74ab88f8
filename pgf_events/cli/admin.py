"""Store administration: ``pgf keygen`` (encryption key) and ``pgf backup`` (online SQLite copy)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import click

from pgf_events.cli._output import emit_json, output_options
from pgf_events.domain.errors import StoreError


@click.command()
def keygen() -> None:
    """Print a new random AES-256 key for encryption at rest (keep it safe: without it the data is lost).

    \b
    Example:
      export PGF_CIPHER_KEY=$(pgf keygen)
    """
    from eventsourcing.cryptography import AESCipher  # noqa: PLC0415

    click.echo(AESCipher.create_key(32))


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@output_options()
@click.pass_obj
def backup(state: Any, file: str, fmt: str | None) -> None:
    """Take a consistent online copy of a SQLite store (writers may keep working meanwhile).

    The copy is checked after writing: it must open and hold the same events. For PostgreSQL use
    pg_dump (see README, Backup and restore).

    \b
    Example:
      pgf backup /backups/trial-$(date +%F).db
    """
    app = state.app(must_exist=True)
    config = app.store
    if config.backend != "sqlite" or config.sqlite_path is None:
        raise StoreError("pgf backup copies SQLite stores; for PostgreSQL use pg_dump (see README)")
    target = Path(file)
    if target.exists():
        raise StoreError(f"{target} already exists; a backup never overwrites a file")
    if not target.parent.exists():
        raise StoreError(f"the folder {target.parent} does not exist")
    source = sqlite3.connect(str(config.sqlite_path))
    dest = sqlite3.connect(str(target))
    try:
        with dest:
            source.backup(dest)  # page-by-page copy of a consistent snapshot (sqlite3 online backup API)
    finally:
        dest.close()
        source.close()
    head = app.recorder.max_notification_id() or 0
    from pgf_events.application import TrialConduct  # noqa: PLC0415
    from pgf_events.store import parse_url  # noqa: PLC0415

    copy = TrialConduct(parse_url(f"sqlite:///{target.resolve()}", config.cipher_key or ""), app.protocol)
    try:
        copied = copy.recorder.max_notification_id() or 0
    finally:
        copy.close()
    if copied < head:
        raise StoreError(f"the copy in {target} holds {copied} events, fewer than the store's {head}")
    summary = {"backup": str(target), "events": copied, "bytes": target.stat().st_size}
    if fmt == "json":
        emit_json(summary)
    else:
        click.echo(f"backed up {copied} events to {target} ({summary['bytes']} bytes)")
