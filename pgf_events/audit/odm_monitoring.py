"""Monitoring in the ODM export: queries, source data verification and freezes as ODM 1.3.2
``Annotation`` elements (a ``Comment`` each), one ``SubjectData`` (``TransactionType="Context"``) per
monitoring event, after the patient's clinical transactions.

A query, its answers and its closing annotate the queried record's repeat (``StudyEventData`` of
that record's kind and repeat key, as the clinical transactions name it); a verification annotates
each verified record's repeat; a freeze or unfreeze annotates the subject. Each carries an
``AuditRecord`` (user, site, UTC time, reason, and as ``SourceID`` the query id or the subject's
review stream position). The comment text says what happened: ``query S001-Q1 [open] on S001#6.plt:
...``. The database lock is store-level and is not part of ClinicalData (see the audit trail).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

from pgf_events.audit.odm_meta import _el, _group, site_oid, user_oid
from pgf_events.audit.source import utc
from pgf_events.domain.patient import CORRECTION, SIGN, VOID, Patient
from pgf_events.projections.review import review_events, review_rows

STATUS = {"QueryOpened": "open", "QueryAnswered": "answered", "QueryClosed": "closed", "QueryReopened": "open"}


def monitoring_subject_data(app: Any, subject: str, patient: Patient, seen: Any, as_of: datetime | None,
                            events: list[Any] | None = None) -> Iterator[ET.Element]:
    """``events``: the patient's review events when already read."""
    site = patient.registration.site
    seq = 0
    about: dict[str, str] = {}  # query id -> the queried ref
    for row in review_rows(review_events(app, subject) if events is None else events, as_of):
        seen.users.add(row["recorded_by"])
        if row["type"] == "QueryOpened":
            about[row["ref"]] = row["about"]
        if row["type"] in STATUS:
            targets = [about.get(row["ref"], "")]
            comment = f"query {row['ref']} [{STATUS[row['type']]}]: {row['what']}"
        elif row["type"] == "SourceVerified":
            targets = list(row["refs"])
            comment = f"source data verified by {row['recorded_by']}"
        else:  # Frozen / Unfrozen: the whole subject
            targets = []
            comment = f"{row['what']}: {row['reason']}"
        element = _el(None, "SubjectData", SubjectKey=subject, TransactionType="Context")
        if not targets:
            _audit(element, row, site)
            seq += 1
            _annotation(element, seq, comment)
        for ref in targets:
            version = int(ref.rpartition("#")[2])
            if version not in patient.entries:
                continue
            version = patient._root(version)  # noqa: SLF001 - a correction's query annotates its record
            kind = patient.entries[version].kind
            if kind in (CORRECTION, VOID, SIGN):  # a signature (or a change without its record): the subject
                _audit(element, row, site)
                seq += 1
                _annotation(element, seq, f"{comment} ({ref})")
                continue
            event = _el(element, "StudyEventData", StudyEventOID=f"SE.{_group(kind)}",
                        StudyEventRepeatKey=None if kind == "register" else version, TransactionType="Context")
            _audit(event, row, site)
            seq += 1
            _annotation(event, seq, comment)
        yield element


def _audit(parent: ET.Element, row: dict[str, Any], site: str) -> None:
    record = _el(parent, "AuditRecord")
    _el(record, "UserRef", UserOID=user_oid(row["recorded_by"]))
    _el(record, "LocationRef", LocationOID=site_oid(site))
    _el(record, "DateTimeStamp", utc(row["recorded_at"]))
    if row.get("reason"):
        _el(record, "ReasonForChange", row["reason"])
    _el(record, "SourceID", row["ref"])


def _annotation(parent: ET.Element, seq: int, comment: str) -> None:
    annotation = _el(parent, "Annotation", SeqNum=seq, TransactionType="Insert")
    _el(annotation, "Comment", comment, SponsorOrSite="Sponsor")
