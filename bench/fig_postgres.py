"""PostgreSQL: ``pgf import`` into a throw-away schema against psycopg's ``executemany``.

Every figure here is skipped, with a note, when the server (``--postgres``) does not answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import data
from baselines import json_rows
from figures import Context, Figure, group, plain_figure, ratio_figure
from harness import Run, interleave, pgf, timed


def pg_connect(url: str, **kw: Any) -> Any:
    import psycopg

    from pgf_events.store import parse_url

    e = parse_url(url, cipher_key="").env
    return psycopg.connect(dbname=e["POSTGRES_DBNAME"], host=e["POSTGRES_HOST"], port=e["POSTGRES_PORT"],
                           user=e["POSTGRES_USER"], password=e["POSTGRES_PASSWORD"] or None, **kw)


def postgres_answers(url: str) -> str | None:
    """None if the server answers, else why not."""
    try:
        with pg_connect(url, connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means: skip PostgreSQL, say why
        return f"{type(exc).__name__}: {str(exc).strip()[:100]}"


@contextmanager
def throwaway_schema(base_url: str) -> Iterator[tuple[str, str]]:
    """A fresh schema on the server: (the store's url, the schema's name); dropped afterwards."""
    schema = "bench_" + uuid.uuid4().hex[:10]
    try:
        yield f"{base_url}{'&' if '?' in base_url else '?'}schema={schema}", schema
    finally:
        with pg_connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def skipped(ctx: Context, name: str, unit: str, target: str = "report") -> Figure | None:
    """A skipped figure if PostgreSQL does not answer, else None."""
    why = postgres_answers(ctx.postgres)
    if why is None:
        return None
    return plain_figure(name, None, unit, target, None, note=f"skipped: {ctx.postgres} does not answer ({why})")


@group("postgres", order=50, help="pgf import into PostgreSQL")
def postgres_figures(ctx: Context) -> list[Figure]:
    events, patients = ctx.size((100_000, 500), (2_000, 50))
    name = f"pgf import, {events:,} lab events (PostgreSQL)"
    ctx.say("postgres: pgf import")
    if (figure := skipped(ctx, name, "events/s")) is not None:
        return [figure]
    lines = ctx.tmp / "pg_labs.jsonl"
    sizes: list[int] = []

    def engine() -> Run:  # each round imports into a fresh schema (its set-up is not timed)
        with throwaway_schema(ctx.postgres) as (url, schema):
            data.import_store(url, lines, patients=patients, events=events)
            with pg_connect(ctx.postgres) as conn:
                before = conn.execute(f'SELECT MAX(notification_id) FROM "{schema}".pgf_events').fetchone()[0]
            run = pgf(url, "import", str(lines))
            with pg_connect(ctx.postgres) as conn:
                sizes[:] = [n for (n,) in conn.execute(
                    f'SELECT octet_length(state) FROM "{schema}".pgf_events WHERE notification_id > %s', (before,))]
        return run

    def baseline() -> float:
        rows = json_rows(sizes or [280] * events)
        with throwaway_schema(ctx.postgres) as (_, schema), pg_connect(ctx.postgres) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
            conn.execute(f'CREATE TABLE "{schema}".bench_baseline (id bigserial PRIMARY KEY, data bytea)')
            conn.commit()

            def write() -> None:
                with conn.cursor() as cur:
                    cur.executemany(f'INSERT INTO "{schema}".bench_baseline (data) VALUES (%s)', rows)
                conn.commit()

            return timed(write)

    def copy() -> float:
        """COPY (binary) of the same rows: PostgreSQL's own bulk load, the import's ceiling."""
        rows = json_rows(sizes or [280] * events)
        with throwaway_schema(ctx.postgres) as (_, schema), pg_connect(ctx.postgres) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
            conn.execute(f'CREATE TABLE "{schema}".bench_baseline (id bigserial PRIMARY KEY, data bytea)')
            conn.commit()

            def write() -> None:
                with conn.cursor() as cur, cur.copy(
                        f'COPY "{schema}".bench_baseline (data) FROM STDIN (FORMAT BINARY)') as out:
                    out.set_types(["bytea"])
                    for row in rows:
                        out.write_row(row)
                conn.commit()

            return timed(write)

    # Round 0 runs the engine first: the baselines' rows take the sizes of the events it stored.
    rounds = interleave(ctx.rounds, {"engine": engine, "baseline": baseline, "copy": copy})
    return [
        ratio_figure(ctx, name.replace("(PostgreSQL)", "(PostgreSQL) vs COPY"), rounds, unit="events/s",
                     target=0.10, higher=True, work=events, base_work=len(sizes), baseline="copy",
                     note="baseline: COPY (binary) of equally sized rows, one transaction"),
        ratio_figure(ctx, name, rounds, unit="events/s", target=0.10, higher=True, work=events,
                     base_work=len(sizes), judged=False,
                     note="baseline: psycopg executemany of equally sized rows, one transaction"),
    ]
