"""Who held which role when: the user directory's grants and revocations replayed up to a time.

Exports stamp each user with the roles held when they acted (the audit trail), or at the export's
as-of time (ODM AdminData). A store that never granted a role is open: nobody holds one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pgf_events.domain.users import DIRECTORY_ID


class RoleBook:
    def __init__(self, app: Any, as_of: datetime | None = None):
        self.changes: list[tuple[datetime, str, str, bool]] = []
        for event in app.events.get(DIRECTORY_ID):
            name = type(event).__name__
            if name in ("RoleGranted", "RoleRevoked") and (as_of is None or event.timestamp <= as_of):
                self.changes.append((event.timestamp, event.user, event.role, name == "RoleGranted"))

    def roles_at(self, user: str, when: datetime | None = None) -> set[str]:
        held: set[str] = set()
        for stamp, who, role, granted in self.changes:
            if when is not None and stamp > when:
                break
            if who == user:
                (held.add if granted else held.discard)(role)
        return held

    def users(self) -> set[str]:
        return {who for _, who, _, _ in self.changes}
