"""Builders for application-level tests: a registered, eligible, enrolled patient in a few lines."""

from __future__ import annotations

import weakref
from typing import Any

from pgf_events.application import TrialConduct

USER = "coordinator1"
REGISTRATION = {"site": "PKU", "birth_date": "1980-02-03", "sex": "F", "weight_kg": 61, "transplant_date": "2025-01-10"}
ELIGIBLE_SCREEN = {
    "date": "2025-02-20", "kps": 80, "expected_survival_months": 12,
    "criterion": {"IN1": "yes", "IN4": "yes", "IN5": "yes", **{f"EX{n}": "no" for n in range(1, 9)}},
}


def register(app: TrialConduct, subject: str = "S001", user: str = USER, **overrides: Any) -> str:
    return app.record("register", subject, {**REGISTRATION, **overrides}, user=user).ref


def enrolled(app: TrialConduct, subject: str = "S001", enrol_date: str = "2025-02-24", user: str = USER) -> None:
    register(app, subject, user=user)
    app.record("consent", subject, {"date": "2025-02-18"}, user=user)
    app.record("screen", subject, ELIGIBLE_SCREEN, user=user)
    app.record("enrol", subject, {"date": enrol_date}, user=user)


def infuse(app: TrialConduct, subject: str, day: str, cells: float = 6.1e7, weight: float = 61,
           deviation: str | None = None) -> str:
    return app.record("infusion", subject, {"date": day, "cells": cells, "weight_kg": weight}, user=USER,
                      deviation=deviation).ref


_KEYS: weakref.WeakKeyDictionary[TrialConduct, dict[str, Any]] = weakref.WeakKeyDictionary()


def sign(app: TrialConduct, subject: str, meaning: str, *, user: str) -> dict[str, Any]:
    """Sign as ``user`` with a key registered by them and approved by an admin (made on first use)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from pgf_events.domain.esign import public_pem

    keys = _KEYS.setdefault(app, {})
    if user not in keys:
        private = Ed25519PrivateKey.generate()
        key_id = app.register_key(public_pem(private.public_key()), user=user)
        app.approve_key(key_id, by="admin.keys")
        keys[user] = private
    return app.sign(subject, meaning, user=user, private_key=keys[user])
