"""Which permission class (domain.users.PERMISSIONS) each CLI command needs: the CLI's own table.

The domain knows what a role may do ("record", "sign", "read", ...); only the CLI knows its command
names. A command missing here cannot open a store at all: tests/reliability/test_roles.py walks
the whole CLI to make sure none is forgotten.
"""

from __future__ import annotations

# Every command that opens a store, by command path (longest prefix wins).
COMMAND_NEEDS: dict[str, str] = {
    "record": "record", "correct": "record", "void": "record", "import": "record", "demo": "record",
    "sign": "sign",
    "history": "read", "status": "read", "patients": "read", "report": "read", "export": "read", "audit": "read",
    "follow": "read", "serve": "read", "projections": "read", "daemon": "read", "shell": "read",
    "users list": "directory", "users grant": "admin", "users revoke": "admin", "backup": "admin",
    "db": "admin",
    "keys register": "member", "keys approve": "admin", "keys revoke": "admin", "keys list": "directory",
    "query open": "query-open", "query answer": "query-answer", "query close": "query-close",
    "query reopen": "query-close", "queries": "read", "sdv": "sdv", "freeze": "freeze", "unfreeze": "freeze",
    "lock": "lock", "unlock": "admin", "due": "read",
}
# Commands that never open a store, so need no role.
NO_STORE = frozenset({"keygen", "keys generate"})


def need_of(command_path: str) -> str:
    words = command_path.split()[1:]  # drop the program name
    for n in range(len(words), 0, -1):
        key = " ".join(words[:n])
        if key in COMMAND_NEEDS:
            return COMMAND_NEEDS[key]
    raise KeyError(f"command {' '.join(words)!r} has no permission class in COMMAND_NEEDS")
