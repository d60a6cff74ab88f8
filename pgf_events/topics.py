"""Stored names: the topic of every aggregate and event class, as written in every store.

A topic (``module:QualifiedName``) is stored with each event, and an aggregate's topic inside its
creation event, so they are data: a store written years ago must still load. They are therefore
spelled out here and registered explicitly with the eventsourcing library, both ways: reading
resolves each topic to its class wherever the class now lives, and writing stores the topic
listed here, not the class's current location. To move or rename a class, move it and leave its
line below unchanged. A new event class needs a line, here and in :mod:`pgf_events.topic_names`
(tests/store/test_stored_names.py fails until it has both). Transcoding names (``pgf.<kind>``, ``date_iso``) are fixed in
:mod:`pgf_events.transcodings` in the same spirit.
"""

from __future__ import annotations

from eventsourcing import utils

from pgf_events.domain.imports import IdempotencyKey, ImportBatch
from pgf_events.domain.lock import StoreLock
from pgf_events.domain.patient import Patient
from pgf_events.domain.review import Review
from pgf_events.domain.users import UserDirectory
from pgf_events.topic_names import PATIENT_TOPIC_PREFIX, REVIEW_TOPIC_PREFIX

__all__ = ["PATIENT_TOPIC_PREFIX", "REVIEW_TOPIC_PREFIX", "STORED_TOPICS", "register", "topic_of"]

STORED_TOPICS: dict[str, type] = {
    "pgf_events.domain.patient:Patient": Patient,
    "pgf_events.domain.patient:Patient.Registered": Patient.Registered,
    "pgf_events.domain.patient:Patient.Screened": Patient.Screened,
    "pgf_events.domain.patient:Patient.Consented": Patient.Consented,
    "pgf_events.domain.patient:Patient.Enrolled": Patient.Enrolled,
    "pgf_events.domain.patient:Patient.Infused": Patient.Infused,
    "pgf_events.domain.patient:Patient.Transfused": Patient.Transfused,
    "pgf_events.domain.patient:Patient.LabResulted": Patient.LabResulted,
    "pgf_events.domain.patient:Patient.AdverseEventReported": Patient.AdverseEventReported,
    "pgf_events.domain.patient:Patient.InfectionDiagnosed": Patient.InfectionDiagnosed,
    "pgf_events.domain.patient:Patient.GvhdAssessed": Patient.GvhdAssessed,
    "pgf_events.domain.patient:Patient.RelapseDiagnosed": Patient.RelapseDiagnosed,
    "pgf_events.domain.patient:Patient.ContactRecorded": Patient.ContactRecorded,
    "pgf_events.domain.patient:Patient.Died": Patient.Died,
    "pgf_events.domain.patient:Patient.Withdrawn": Patient.Withdrawn,
    "pgf_events.domain.patient:Patient.VitalSignsRecorded": Patient.VitalSignsRecorded,
    "pgf_events.domain.patient:Patient.Corrected": Patient.Corrected,
    "pgf_events.domain.patient:Patient.Voided": Patient.Voided,
    "pgf_events.domain.patient:Patient.Signed": Patient.Signed,
    "pgf_events.domain.imports:ImportBatch": ImportBatch,
    "pgf_events.domain.imports:ImportBatch.Imported": ImportBatch.Imported,
    "pgf_events.domain.imports:IdempotencyKey": IdempotencyKey,
    "pgf_events.domain.imports:IdempotencyKey.Used": IdempotencyKey.Used,
    "pgf_events.domain.users:UserDirectory": UserDirectory,
    "pgf_events.domain.users:UserDirectory.Opened": UserDirectory.Opened,
    "pgf_events.domain.users:UserDirectory.RoleGranted": UserDirectory.RoleGranted,
    "pgf_events.domain.users:UserDirectory.RoleRevoked": UserDirectory.RoleRevoked,
    "pgf_events.domain.users:UserDirectory.KeyRegistered": UserDirectory.KeyRegistered,
    "pgf_events.domain.users:UserDirectory.KeyApproved": UserDirectory.KeyApproved,
    "pgf_events.domain.users:UserDirectory.KeyRevoked": UserDirectory.KeyRevoked,
    "pgf_events.domain.review:Review": Review,
    "pgf_events.domain.review:Review.Started": Review.Started,
    "pgf_events.domain.review:Review.QueryOpened": Review.QueryOpened,
    "pgf_events.domain.review:Review.QueryAnswered": Review.QueryAnswered,
    "pgf_events.domain.review:Review.QueryClosed": Review.QueryClosed,
    "pgf_events.domain.review:Review.QueryReopened": Review.QueryReopened,
    "pgf_events.domain.review:Review.SourceVerified": Review.SourceVerified,
    "pgf_events.domain.review:Review.Frozen": Review.Frozen,
    "pgf_events.domain.review:Review.Unfrozen": Review.Unfrozen,
    "pgf_events.domain.lock:StoreLock": StoreLock,
    "pgf_events.domain.lock:StoreLock.Created": StoreLock.Created,
    "pgf_events.domain.lock:StoreLock.Locked": StoreLock.Locked,
    "pgf_events.domain.lock:StoreLock.Unlocked": StoreLock.Unlocked,
}


def register(topics: dict[str, type] | None = None) -> None:
    """Make each topic resolve to its class, and each class write its topic (idempotent).

    The library offers ``register_topic`` for the reading side only; the writing side is its
    per-class topic cache, which is seeded here (``get_topic`` fills it the same way on first use).
    """
    for topic, cls in (STORED_TOPICS if topics is None else topics).items():
        utils.register_topic(topic, cls)
        utils._type_cache[cls] = topic  # noqa: SLF001 - see the docstring


def topic_of(cls: type) -> str:
    """The stored topic of a registered class."""
    return utils.get_topic(cls)


register()
