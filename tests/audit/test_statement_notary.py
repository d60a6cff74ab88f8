"""The statement-level notary (PostgreSQL, notary triggers versions 2 and 3): each row stamped, each
insert statement's rows hashed and linked at once. It must write the chain the row trigger of version
1 wrote, byte for byte; positions and times are the database's, never the client's (version 3 counts
a statement's positions in a transaction-local setting: what a client writes there is refused);
concurrent writers serialise on the head; a failed or empty statement leaves the chain and head as
they were."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from pgf_events.application import TrialConduct
from pgf_events.audit.pg_notary import NEXT_SETTING, TRIGGERS, notary_ddl
from pgf_events.audit.pg_notary_versions import notary_v1_ddl, notary_v2_ddl
from pgf_events.audit.recorders_postgres import ChainedPostgresRecorder
from pgf_events.audit.verify import chain_reader, verify
from pgf_events.store import parse_url
from tests.conftest import make_pg_store
from tests.pgcluster import OWNER, Cluster

pytestmark = pytest.mark.postgres
EVENTS = "pgf_events"
TOPIC = "tests.notary:Thing"  # no patient's: store-wide, no site
Maker = Callable[[str], tuple[str, str]]


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> Iterator[Maker]:
    """Makes stores whose notary triggers are of the given version ("1": as pgf made them before)."""
    schemas: list[str] = []

    def make(triggers: str) -> tuple[str, str]:
        with monkeypatch.context() as m:
            m.setattr(ChainedPostgresRecorder, "new_store_triggers", triggers)
            url, schema = make_pg_store()
        schemas.append(schema)
        return url, schema

    yield make
    for schema in schemas:
        Cluster.session().drop_schema(schema)


def verifies(url: str) -> None:
    """``pgf audit verify``'s verifier, on a store of raw rows (whose topic no command decodes: opening
    the application would try its first event for the cipher key)."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(TrialConduct, "_check_cipher", lambda self: None)
        app = TrialConduct(parse_url(url))
    try:
        result = verify(chain_reader(app))
    finally:
        app.close()
    assert result.ok and result.events > 0, result.broken


def owner(schema: str) -> Any:
    conn = Cluster.session().connect(OWNER)
    conn.execute(f'SET search_path TO "{schema}"')
    return conn


def insert(conn: Any, rows: list[tuple[uuid.UUID, int]], extra: str = "", values: str = "") -> list[int]:
    """One INSERT statement of ``rows`` (stream, version); ``extra``/``values`` name more columns."""
    placeholders = ", ".join(f"(%s, %s, %s, %s{values})" for _ in rows)
    params = [p for oid, version in rows for p in (oid, version, TOPIC, f'{{"n":{version},"é":"ü"}}'.encode())]
    cur = conn.execute(f"INSERT INTO {EVENTS} (originator_id, originator_version, topic, state{extra}) "
                       f"VALUES {placeholders} RETURNING notification_id", params)
    return [r[0] for r in cur.fetchall()]


def bulk(conn: Any, stream: uuid.UUID, first: int, count: int) -> None:
    """One INSERT ... SELECT of ``count`` rows, as an import moves a chunk."""
    conn.execute(f"INSERT INTO {EVENTS} (originator_id, originator_version, topic, state) "
                 "SELECT %s, v, %s, convert_to(repeat('x', (v %% 37)::int) || v::text, 'UTF8') "
                 "FROM generate_series(%s::bigint, %s::bigint) v ORDER BY v",
                 (stream, TOPIC, first, first + count - 1))


def chain(conn: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """(links, head, events' positions and stamps) as stored."""
    return (conn.execute("SELECT position, originator_id, originator_version, hash, backfilled FROM pgf_chain "
                         "ORDER BY position").fetchall(),
            conn.execute("SELECT position, hash, originator_id, originator_version, recorded_at "
                         "FROM pgf_chain_head").fetchall(),
            conn.execute(f"SELECT notification_id, originator_id, originator_version, recorded_by, recorded_at "
                         f"FROM {EVENTS} ORDER BY notification_id").fetchall())


def with_clock(conn: Any, schema: str, ddl: list[str], clock: str) -> None:
    """Run the notary's DDL with the database's clock replaced by ``clock`` (an SQL expression; ``{tick}``:
    the next number of a sequence)."""
    conn.execute("CREATE SEQUENCE pgf_test_tick")
    tick = f"nextval('\"{schema}\".pgf_test_tick')"
    conn.execute(f"CREATE FUNCTION pgf_test_clock() RETURNS timestamptz LANGUAGE sql VOLATILE "
                 f"AS $$ SELECT {clock.format(tick=tick)} $$")
    for statement in ddl:
        conn.execute(statement.replace("clock_timestamp()", f'"{schema}".pgf_test_clock()'))


def writes(conn: Any) -> None:
    """The same writes for every store: single rows, several rows, a transaction of two statements,
    forged stamps, a bulk statement, an empty one."""
    a, b = uuid.UUID(int=1), uuid.UUID(int=2)
    insert(conn, [(a, 1)])
    insert(conn, [(a, 2)])
    insert(conn, [(b, 1), (a, 3), (b, 2)])
    with conn.transaction():
        insert(conn, [(a, 4)])
        bulk(conn, b, 3, 5)
    conn.execute(f"INSERT INTO {EVENTS} (originator_id, originator_version, topic, state, notification_id, "
                 "recorded_by, recorded_at) VALUES (%s, 5, %s, '\\x00', 1000000, 'mallory', '2000-01-01'), "
                 "(%s, 6, %s, '', 3, 'mallory', '2100-01-01')", (a, TOPIC, a, TOPIC))
    bulk(conn, b, 8, 700)
    bulk(conn, b, 10**6, 0)


def test_every_notary_writes_the_same_chain_byte_for_byte(made: Maker) -> None:
    """Same writes, same clock readings: links, head, positions and stamps equal, and each verifies."""
    stored = {}
    for version, ddl in (("1", notary_v1_ddl), ("2", notary_v2_ddl), (TRIGGERS, notary_ddl)):
        url, schema = made(version)
        with owner(schema) as conn:
            with_clock(conn, schema, ddl(schema, EVENTS),
                       "'2026-03-01 09:00+00'::timestamptz + {tick} * interval '1.5 ms'")
            writes(conn)
            stored[version] = chain(conn)
        verifies(url)
    links, head, events = stored[TRIGGERS]
    assert len(links) == len(events) == 713 and head[0][0] == 713
    assert [e[0] for e in events] == list(range(1, 714))
    assert {e[3] for e in events} == {OWNER}
    assert stored["1"] == stored["2"] == stored[TRIGGERS]


def test_forged_positions_logins_and_times_are_overwritten(made: Maker) -> None:
    url, schema = made(TRIGGERS)
    with owner(schema) as conn:
        insert(conn, [(uuid.UUID(int=1), 1)])
        conn.execute(f"INSERT INTO {EVENTS} (originator_id, originator_version, topic, state, notification_id, "
                     "recorded_by, recorded_at) VALUES (%s, 2, %s, '', 99, 'mallory', '2100-01-01'), "
                     "(%s, 3, %s, '', 1, 'mallory', '2000-01-01')", (uuid.UUID(int=1), TOPIC, uuid.UUID(int=1), TOPIC))
        rows = conn.execute(f"SELECT notification_id, originator_version, recorded_by, "
                            f"recorded_at > now() - interval '1 minute' FROM {EVENTS} ORDER BY 1").fetchall()
    assert rows == [(1, 1, OWNER, True), (2, 2, OWNER, True), (3, 3, OWNER, True)]
    with Cluster.session().connect("coordinator1") as conn:  # a login cannot even name them
        for column, value in (("notification_id", 7), ("recorded_by", "x"), ("recorded_at", "2100-01-01")):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f'INSERT INTO "{schema}".{EVENTS} (originator_id, originator_version, topic, state, '
                             f"{column}) VALUES (%s, 9, %s, '', %s)", (uuid.UUID(int=1), TOPIC, value))
    verifies(url)


def test_positions_a_client_sets_in_the_notarys_setting_are_refused(made: Maker) -> None:
    """Version 3 counts a statement's positions in a transaction-local setting that any login can set:
    before the statement (reset by its start), in the transaction (likewise), or between its rows (a
    function in its SELECT list). Whatever it says, a row off the chain's next position is refused."""
    url, schema = made(TRIGGERS)
    stream = uuid.UUID(int=1)
    with owner(schema) as conn:
        bulk(conn, stream, 1, 5)
        before = chain(conn)
        conn.execute(f"SET {NEXT_SETTING} = '2'")  # the session's value: each statement starts afresh
        with conn.transaction():
            conn.execute("SELECT set_config(%s, '3', true)", (NEXT_SETTING,))
            bulk(conn, stream, 6, 3)
        assert [e[0] for e in chain(conn)[2]] == list(range(1, 9))
        before = chain(conn)
        for forged in ("1", "9", "12", "x"):  # set between the rows: the next row takes it
            with pytest.raises((psycopg.errors.RaiseException, psycopg.errors.UniqueViolation,
                                psycopg.errors.InvalidTextRepresentation)):
                conn.execute(f"INSERT INTO {EVENTS} (originator_id, originator_version, topic, state) "
                             "SELECT %s, v, %s, CASE WHEN v = 11 THEN convert_to(set_config(%s, %s, true), 'UTF8') "
                             "ELSE ''::bytea END FROM generate_series(9, 14) v",  # no sort: each row made as it is inserted
                             (stream, TOPIC, NEXT_SETTING, forged))
            assert chain(conn) == before
        bulk(conn, stream, 9, 3)
        assert [e[0] for e in chain(conn)[2]] == list(range(1, 12))
    verifies(url)


def test_times_never_go_backwards_and_the_refused_statement_leaves_nothing(made: Maker) -> None:
    url, schema = made(TRIGGERS)
    with owner(schema) as conn:
        insert(conn, [(uuid.UUID(int=1), 1)])
        before = chain(conn)
        # A clock that goes back one second at each reading: the statement's second row is refused.
        with_clock(conn, schema, notary_ddl(schema, EVENTS),
                   "clock_timestamp() + interval '1 hour' - {tick} * interval '1 s'")
        with pytest.raises(psycopg.errors.RaiseException, match="earlier than the last recorded event"):
            bulk(conn, uuid.UUID(int=2), 1, 50)
        assert chain(conn) == before
        insert(conn, [(uuid.UUID(int=2), 1)])  # one row, an hour ahead: accepted
        with pytest.raises(psycopg.errors.RaiseException, match="earlier than the last recorded event"):
            insert(conn, [(uuid.UUID(int=2), 2)])  # the next reading is a second earlier than the head's
    verifies(url)


def test_a_statement_failing_after_many_rows_leaves_no_event_and_no_link(made: Maker) -> None:
    url, schema = made(TRIGGERS)
    with owner(schema) as conn:
        bulk(conn, uuid.UUID(int=1), 1, 10)
        before = chain(conn)
        with pytest.raises(psycopg.errors.UniqueViolation):  # row 200 of 300 repeats a stored version
            conn.execute(f"INSERT INTO {EVENTS} (originator_id, originator_version, topic, state) "
                         "SELECT %s, CASE WHEN v = 200 THEN 5 ELSE v + 100 END, %s, '' "
                         "FROM generate_series(1, 300) v ORDER BY v", (uuid.UUID(int=1), TOPIC))
        assert chain(conn) == before
        bulk(conn, uuid.UUID(int=1), 11, 5)
        with conn.transaction():  # refused inside a savepoint, then more rows in the same transaction
            insert(conn, [(uuid.UUID(int=2), 1)])
            with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
                bulk(conn, uuid.UUID(int=2), 1, 20)
            bulk(conn, uuid.UUID(int=2), 2, 20)
        assert [e[0] for e in chain(conn)[2]] == list(range(1, 37))  # no gap where the refused rows were
    verifies(url)


def test_an_event_cannot_be_inserted_without_its_stamp_and_link(made: Maker) -> None:
    """The links trigger refuses a row the stamp did not number (its trigger dropped by the owner)."""
    _, schema = made(TRIGGERS)
    with owner(schema) as conn:
        insert(conn, [(uuid.UUID(int=1), 1)])
        before = chain(conn)
        conn.execute(f"DROP TRIGGER pgf_notarise ON {EVENTS}")
        with pytest.raises(psycopg.errors.RaiseException, match="not stamped by the notary"):
            insert(conn, [(uuid.UUID(int=1), 2)], ", notification_id", ", 2")  # the right position, no stamps
        with pytest.raises(psycopg.errors.RaiseException, match="not stamped by the notary"):
            insert(conn, [(uuid.UUID(int=1), 2)])  # the sequence's number
        assert chain(conn) == before


def test_an_empty_statement_leaves_the_head_alone(made: Maker) -> None:
    url, schema = made(TRIGGERS)
    head = "SELECT xmin::text, xmax::text, position, hash FROM pgf_chain_head"
    with owner(schema) as conn:
        insert(conn, [(uuid.UUID(int=1), 1)])
        before, stored = conn.execute(head).fetchall(), chain(conn)
        bulk(conn, uuid.UUID(int=1), 2, 0)
        conn.execute(f"INSERT INTO {EVENTS} (originator_id, originator_version, topic, state) "
                     f"SELECT originator_id, originator_version + 1, topic, state FROM {EVENTS} WHERE false")
        assert conn.execute(head).fetchall() == before  # not moved, not even locked (xmax)
        assert chain(conn) == stored
    verifies(url)


def test_concurrent_writers_serialise_on_the_head(made: Maker) -> None:
    url, schema = made(TRIGGERS)
    start = threading.Barrier(3)
    failures: list[BaseException] = []

    def writer(n: int) -> None:
        stream = uuid.UUID(int=100 + n)
        try:
            with owner(schema) as conn:
                start.wait()
                version = 1
                for i in range(40):
                    if i % 8 == 7:
                        bulk(conn, stream, version, 60)
                        version += 60
                    else:
                        insert(conn, [(stream, version)])
                        version += 1
        except BaseException as e:  # noqa: BLE001 - reported by the test
            failures.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    with owner(schema) as conn:
        links, head, events = chain(conn)
    total = 3 * (35 + 5 * 60)
    assert [e[0] for e in events] == [link[0] for link in links] == list(range(1, total + 1))
    assert head[0][0] == total
    assert all(x[4] <= y[4] for x, y in itertools.pairwise(events))  # times follow positions
    verifies(url)


def test_a_writer_waits_for_the_open_transaction_and_continues_its_chain(made: Maker) -> None:
    url, schema = made(TRIGGERS)
    with owner(schema) as first, owner(schema) as second:
        first.execute("BEGIN")
        bulk(first, uuid.UUID(int=1), 1, 30)  # holds the head until it commits
        done: list[int] = []
        waiting = threading.Thread(target=lambda: done.extend(insert(second, [(uuid.UUID(int=2), 1)])))
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and not done  # blocked on the head's lock
        bulk(first, uuid.UUID(int=1), 31, 10)
        first.execute("COMMIT")
        waiting.join(10)
        assert done == [41]
    verifies(url)
