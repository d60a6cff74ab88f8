"""The audit tests' shared store: eight events on two patients, and an attacker with the database's own access."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pgf_events.application import TrialConduct
from tests.audit.attacker import Attacker
from tests.conftest import Pgf
from tests.helpers import USER, enrolled, infuse, register


def build(url: str) -> None:
    """Two patients, 8 events: S001#1..6 at positions 1..4, 6, 8; S002#1..2 at 5 and 7."""
    app = TrialConduct.open(url)
    enrolled(app, "S001")  # positions 1-4
    register(app, "S002")  # 5
    infuse(app, "S001", "2025-02-25")  # 6 = S001#5
    app.record("lab", "S002", {"date": "2025-03-01", "anc": 0.4, "plt": 18}, user=USER)  # 7 = S002#2
    app.record("lab", "S001", {"date": "2025-03-02", "anc": 0.6}, user=USER)  # 8 = S001#6
    app.close()


@pytest.fixture
def store(store_url: str) -> Iterator[tuple[Pgf, Attacker]]:
    build(store_url)
    attacker = Attacker(store_url)
    yield Pgf(store_url), attacker
    attacker.close()
