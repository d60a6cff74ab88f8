"""``pgf db grants``: SQL for the database administrator to make one login per person.

The store's roles (``pgf_<schema>_coordinator``, ``..._investigator``, ``..._monitor``,
``..._auditor``, ``..._admin``) are created with the store by its owner and enforced by the database
(see :mod:`pgf_events.audit.dbroles`); who holds which is recorded by ``pgf users grant``, which
issues the GRANT itself. What only a database administrator may do is make the logins: this prints it.
"""

from __future__ import annotations

import re

from pgf_events.audit.dbroles import role_name
from pgf_events.domain.errors import ValidationError
from pgf_events.store import StoreConfig

_LOGIN_RE = re.compile(r"^[a-z_][a-z0-9_.\-]{0,62}$")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def grants_sql(config: StoreConfig, writer: str = "pgf_writer", auditor: str = "pgf_auditor") -> str:
    for login in (writer, auditor):
        if not _LOGIN_RE.match(login):
            raise ValidationError(f"login name {login!r} must be lower-case letters, digits, '.', '-' and '_'")
    schema = config.schema or "public"
    database = _ident(config.env["POSTGRES_DBNAME"])
    w, a = _ident(writer), _ident(auditor)
    return f"""\
-- pgf-events logins for {config.display}
-- One login per person: pgf records the database login as who acted (session_user). Run this as a
-- role that may create roles; then give each login a password (psql: \\password {writer}) or your
-- site's authentication. Until then they cannot log in.
CREATE ROLE {w} LOGIN;
CREATE ROLE {a} LOGIN;
GRANT CONNECT ON DATABASE {database} TO {w}, {a};
-- The store's roles exist already ({role_name(schema, 'coordinator')}, ...{role_name(schema, 'admin')[len(role_name(schema, '')):]}) and the database
-- enforces them. An admin of the store gives them, which also records who granted what and why:
--   pgf users grant {writer} coordinator --reason "..."
--   pgf users grant {auditor} auditor --reason "..."
-- (On a new store, the first grant must make someone an admin; it switches access control on.)
"""
