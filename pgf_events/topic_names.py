"""The stored topics as text: what must know whether a topic is pgf's without importing its class
(opening a store checks its first event, :meth:`pgf_events.mapper.FastMapper.opens`, and
``pgf audit verify`` never loads the patient domain).

:data:`pgf_events.topics.STORED_TOPICS` maps each of these names to its class (and registers them);
``tests/store/test_stored_names.py`` checks that both list the same names. Topics are data: never
change one.
"""

from __future__ import annotations

# The prefix of every Patient topic: readers pick a patient's events out of the log by it.
PATIENT_TOPIC_PREFIX = "pgf_events.domain.patient:"
# The prefix of every Review topic (a patient's queries, SDV and freeze: domain/review.py).
REVIEW_TOPIC_PREFIX = "pgf_events.domain.review:"

STORED_TOPIC_NAMES: frozenset[str] = frozenset({
    "pgf_events.domain.patient:Patient",
    "pgf_events.domain.patient:Patient.Registered",
    "pgf_events.domain.patient:Patient.Screened",
    "pgf_events.domain.patient:Patient.Consented",
    "pgf_events.domain.patient:Patient.Enrolled",
    "pgf_events.domain.patient:Patient.Infused",
    "pgf_events.domain.patient:Patient.Transfused",
    "pgf_events.domain.patient:Patient.LabResulted",
    "pgf_events.domain.patient:Patient.AdverseEventReported",
    "pgf_events.domain.patient:Patient.InfectionDiagnosed",
    "pgf_events.domain.patient:Patient.GvhdAssessed",
    "pgf_events.domain.patient:Patient.RelapseDiagnosed",
    "pgf_events.domain.patient:Patient.ContactRecorded",
    "pgf_events.domain.patient:Patient.Died",
    "pgf_events.domain.patient:Patient.Withdrawn",
    "pgf_events.domain.patient:Patient.VitalSignsRecorded",
    "pgf_events.domain.patient:Patient.Corrected",
    "pgf_events.domain.patient:Patient.Voided",
    "pgf_events.domain.patient:Patient.Signed",
    "pgf_events.domain.imports:ImportBatch",
    "pgf_events.domain.imports:ImportBatch.Imported",
    "pgf_events.domain.imports:IdempotencyKey",
    "pgf_events.domain.imports:IdempotencyKey.Used",
    "pgf_events.domain.users:UserDirectory",
    "pgf_events.domain.users:UserDirectory.Opened",
    "pgf_events.domain.users:UserDirectory.RoleGranted",
    "pgf_events.domain.users:UserDirectory.RoleRevoked",
    "pgf_events.domain.users:UserDirectory.KeyRegistered",
    "pgf_events.domain.users:UserDirectory.KeyApproved",
    "pgf_events.domain.users:UserDirectory.KeyRevoked",
    "pgf_events.domain.review:Review",
    "pgf_events.domain.review:Review.Started",
    "pgf_events.domain.review:Review.QueryOpened",
    "pgf_events.domain.review:Review.QueryAnswered",
    "pgf_events.domain.review:Review.QueryClosed",
    "pgf_events.domain.review:Review.QueryReopened",
    "pgf_events.domain.review:Review.SourceVerified",
    "pgf_events.domain.review:Review.Frozen",
    "pgf_events.domain.review:Review.Unfrozen",
    "pgf_events.domain.lock:StoreLock",
    "pgf_events.domain.lock:StoreLock.Created",
    "pgf_events.domain.lock:StoreLock.Locked",
    "pgf_events.domain.lock:StoreLock.Unlocked",
})
