"""SQL for PostgreSQL roles: a writer that can only add events, an auditor that can only read.

The tables belong to the owner role that first opened the store (it ran the DDL and owns the
append-only triggers). Day-to-day use runs as the writer: it may INSERT and SELECT events and
chain links and move the chain head forward (the head's trigger refuses anything else); it cannot
UPDATE, DELETE or TRUNCATE, nor drop or disable the triggers (only the owner can). The auditor
reads everything and writes nothing, so ``pgf audit verify`` and the exports run as the auditor.
"""

from __future__ import annotations

import re

from pgf_events.audit.recorders import CHAIN_TABLE, HEAD_TABLE
from pgf_events.domain.errors import ValidationError
from pgf_events.store import StoreConfig

APPLICATION_NAME = "pgf"  # TrialConduct.name: the library names the events table "<name>_events"
_ROLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def grants_sql(config: StoreConfig, writer: str = "pgf_writer", auditor: str = "pgf_auditor") -> str:
    for role in (writer, auditor):
        if not _ROLE_RE.match(role):
            raise ValidationError(f"role name {role!r} must be lower-case letters, digits and underscores")
    schema = _ident(config.schema or "public")
    events = f"{schema}.{_ident(APPLICATION_NAME + '_events')}"
    sequence = f"{schema}.{_ident(APPLICATION_NAME + '_events_notification_id_seq')}"
    chain, head = f"{schema}.{_ident(CHAIN_TABLE)}", f"{schema}.{_ident(HEAD_TABLE)}"
    database = _ident(config.env["POSTGRES_DBNAME"])
    w, a = _ident(writer), _ident(auditor)
    return f"""\
-- pgf-events roles for {config.display}
-- Run as the role that owns the store's tables (the one that first opened it), after that first open.
-- Set a password or use your site's authentication for each LOGIN role (not shown here).
BEGIN;
CREATE ROLE {w} LOGIN;
CREATE ROLE {a} LOGIN;
REVOKE ALL ON {events}, {chain}, {head} FROM PUBLIC;
GRANT CONNECT ON DATABASE {database} TO {w}, {a};
GRANT USAGE ON SCHEMA {schema} TO {w}, {a};

-- Writer: adds events and their chain links; never changes or removes them.
GRANT SELECT, INSERT ON {events}, {chain} TO {w};
GRANT USAGE ON SEQUENCE {sequence} TO {w};
-- The head moves forward with every write (its trigger refuses any other change); the writer
-- also locks it to serialise writers, which needs UPDATE.
GRANT SELECT, INSERT, UPDATE ON {head} TO {w};

-- Auditor: reads everything (verify, history, reports, exports), writes nothing.
GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {a};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {a};
COMMIT;
-- Projection tables, if any are kept in this schema, need their own grants for the writer.
"""
