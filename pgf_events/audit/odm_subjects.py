"""ClinicalData's SubjectData elements of :mod:`pgf_events.audit.odm`, written as XML text: each event a
transaction (:class:`Transactions`), or with ``--snapshot`` the standing values (:func:`snapshot_subject`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any
from xml.etree import ElementTree as ET

import attrs

from pgf_events.audit.odm_meta import (
    _attr,
    _group,
    _text,
    decimal_text,
    flatten,
    odm_value,
    oid_part,
    site_oid,
    user_oid,
)
from pgf_events.audit.source import fold, patient_streams, utc
from pgf_events.domain.kinds import EVENT_KINDS
from pgf_events.domain.patient import CORRECTION, SIGN, VOID, Patient


@attrs.define
class Seen:
    """Users and sites met while writing ClinicalData (AdminData lists them)."""

    users: set[str] = attrs.field(factory=set)
    sites: dict[str, date] = attrs.field(factory=dict)  # site -> earliest registration date

    def site(self, patient: Patient) -> None:
        site, day = patient.registration.site, patient.registration.clinical_date
        self.sites[site] = min(day, self.sites.get(site, day))


@functools.lru_cache(maxsize=4096)
def _name(value: str) -> str:
    """:func:`_attr` of the few values met again and again: OIDs, kinds, transaction types, users, sites."""
    return _attr(value)


@functools.lru_cache(maxsize=4096)
def _user(name: str) -> str:
    return _attr(user_oid(name))


@functools.lru_cache(maxsize=4096)
def _site(name: str) -> str:
    return _attr(site_oid(name))


@functools.lru_cache(maxsize=4096)
def _insert_start(oid: str) -> str:
    return f'<ItemData ItemOID="{_attr(oid)}" TransactionType="Insert" Value="'


@functools.lru_cache(maxsize=4096)
def _audit_start(user: str, site: str) -> str:
    return (f'<AuditRecord><UserRef UserOID="{_user(user)}" /><LocationRef LocationOID="{_site(site)}" />'
            "<DateTimeStamp>")


_PLANS: dict[tuple[str, type], tuple[tuple[str, str], ...] | None] = {}
_SEVERAL_ITEMS = frozenset({"criterion", "organ", "serious"})  # fields flatten() writes as several items


def _insert_plan(kind: str, record: Any) -> tuple[tuple[str, str], ...] | None:
    """(field, its ItemData start for an Insert) for every field of ``record``'s kind, in flatten()'s
    order, when each field is one item (OID ``IT.<KIND>.<FIELD>``); None for the kinds with a field
    flatten() spreads over several items."""
    key = (kind, type(record))
    if key not in _PLANS:
        names = list(record.as_input())
        g = _group(kind)
        _PLANS[key] = None if _SEVERAL_ITEMS.intersection(names) else tuple(
            (name, _insert_start(f"IT.{g}.{name.upper()}")) for name in names)
    return _PLANS[key]


def _value(value: Any) -> str:
    """The ``Value`` attribute of an item: ``_attr(odm_value(value))``. Numbers and dates are written with
    digits, letters, '.', '-' and ':' only, which nothing escapes; the common exact types go first."""
    kind = type(value)
    if kind is str:
        return _attr(value)
    if kind is int:
        return str(value)
    if kind is float:
        return decimal_text(value)
    return odm_value(value) if isinstance(value, (bool, int, float, date)) else _attr(odm_value(value))


def _leaf(tag: str, text: str) -> str:
    """``<tag>text</tag>``, or ``<tag />`` for empty text (as ElementTree writes an empty element)."""
    body = _text(text)
    return f"<{tag}>{body}</{tag}>" if body else f"<{tag} />"


def _wrap(start: str, tag: str, inner: str) -> str:
    """An element whose start tag (``<Tag attr="..."``, unclosed) is ``start``, holding ``inner``."""
    return f"{start}>{inner}</{tag}>" if inner else f"{start} />"


class Transactions:
    """Turns one patient's events into SubjectData elements (XML text), one per event.

    Written as text, not built as ElementTree elements and serialized (11k events/s at 1M events):
    every item of an event carries the same AuditRecord, which is written once per event. The text
    is byte for byte what the ElementTree version wrote (tests/exports keep it as the reference).
    """

    def __init__(self, subject: str, seen: Seen):
        self.subject = subject
        self.seen = seen
        self.patient: Patient | None = None
        self._key = _attr(subject)
        self._ref = _text(f"{subject}#")  # escaping is character by character: text(a + b) == text(a) + text(b)
        self._audits: dict[str | None, str] = {}
        self._event: Any = None
        self._containers: dict[tuple[str, str, str, str | None], tuple[str, str]] = {}

    def audit_record(self, event: Any, reason: str | None) -> str:
        """The AuditRecord of ``event`` (cached for the event: every item of it carries the same one)."""
        if event is not self._event:
            self._event, self._audits = event, {}
        found = self._audits.get(reason)
        if found is not None:
            return found
        assert self.patient is not None
        deviation = getattr(event, "deviation", None)  # a protocol deviation's acknowledgement (issue 13)
        why = "; ".join(r for r in (reason, f"protocol deviation acknowledged: {deviation}" if deviation else None)
                        if r)
        ref = f"{self._ref}{event.originator_version}"
        source = f"{ref}{_text(f' | {event.source}')}" if event.source else ref
        xml = (f"{_audit_start(event.recorded_by, self.patient.registration.site)}"
               f"{utc(event.timestamp)}</DateTimeStamp>"  # digits, '-', ':', '.', 'T', 'Z'
               + (_leaf("ReasonForChange", why) if why else "")
               + f"<SourceID>{source}</SourceID></AuditRecord>")
        self._audits[reason] = xml
        return xml

    def _subject_start(self, subject_tx: str) -> str:
        return f'<SubjectData SubjectKey="{self._key}" TransactionType="{subject_tx}"'

    def _event_start(self, kind: str, repeat: int, tx: str) -> str:
        g = _name(_group(kind))
        key = "" if kind == "register" else f' StudyEventRepeatKey="{repeat:d}"'
        return f'<StudyEventData StudyEventOID="SE.{g}"{key} TransactionType="{_name(tx)}"'

    def container(self, kind: str, repeat: int, tx: str, items: str, subject_tx: str = "Context") -> str:
        """SubjectData > StudyEventData > FormData > ItemGroupData holding ``items``."""
        found = self.container_parts(kind, tx, subject_tx)
        key = "" if kind == "register" else f' StudyEventRepeatKey="{repeat:d}"'
        group = f">{items}</ItemGroupData>" if items else " />"
        return f"{found[0]}{key}{found[1]}{group}</FormData></StudyEventData></SubjectData>"

    def container_parts(self, kind: str, tx: str, subject_tx: str = "Context") -> tuple[str, str]:
        """A container's text before its StudyEventRepeatKey attribute, and after it up to the end of the
        ItemGroupData start tag (unclosed)."""
        assert self.patient is not None
        site = self.patient.registration.site if subject_tx == "Insert" else None
        found = self._containers.get((kind, tx, subject_tx, site))
        if found is None:
            g, t = _name(_group(kind)), _name(tx)
            site_ref = f'<SiteRef LocationOID="{_site(site)}" />' if site is not None else ""
            found = self._containers[(kind, tx, subject_tx, site)] = (
                f'{self._subject_start(subject_tx)}>{site_ref}<StudyEventData StudyEventOID="SE.{g}"',
                f' TransactionType="{t}"><FormData FormOID="F.{g}" TransactionType="{t}">'
                f'<ItemGroupData ItemGroupOID="IG.{g}" TransactionType="{t}"')
        return found

    def items(self, values: dict[str, tuple[str, Any]], event: Any, reason: str | None) -> str:
        audit = self.audit_record(event, reason) if values else ""
        out = []
        for oid, (tx, value) in values.items():
            shown = "" if tx == "Remove" else f' Value="{_value(value)}"'
            out.append(f'<ItemData ItemOID="{_name(oid)}" TransactionType="{_name(tx)}"{shown}>{audit}</ItemData>')
        return "".join(out)

    def inserted(self, kind: str, repeat: int, record: Any, event: Any, reason: str | None,
                 subject_tx: str = "Context") -> str:
        """A record's repeat inserted with every value it holds (what :meth:`items` writes for Inserts)."""
        plan = _insert_plan(kind, record)
        if plan is None:
            values = [(_insert_start(oid), v) for oid, v in flatten(kind, record).items() if v is not None]
        else:
            values = [(start, v) for name, start in plan if (v := getattr(record, name)) is not None]
        audit = self.audit_record(event, reason) if values else ""
        items = "".join([f'{start}{_value(v)}">{audit}</ItemData>' for start, v in values])
        return self.container(kind, repeat, "Insert", items, subject_tx=subject_tx)

    def of(self, event: Any) -> str:
        kind = EVENT_KINDS[type(event)]
        before: tuple[bool, Any] | None = None
        root = 0
        if kind in (CORRECTION, VOID):
            assert self.patient is not None
            root = self.patient._root(int(event.supersedes.rpartition("#")[2]))
            entry = self.patient.entries[root]
            before = (entry.voided, entry.record)
        self.patient = patient = event.mutate(self.patient)
        assert patient is not None
        self.seen.users.add(event.recorded_by)
        if kind == "register":
            self.seen.site(patient)
            return self.inserted(kind, 1, event.record, event, None, subject_tx="Insert")
        if kind == SIGN:
            return self.signature(event)
        if kind not in (CORRECTION, VOID):
            return self.inserted(kind, event.originator_version, event.record, event, None)
        assert before is not None
        entry = patient.entries[root]
        was_voided, old = before
        if entry.kind == "register":
            self.seen.site(patient)
        if not was_voided and entry.voided:  # the whole repeat is removed: no form or items listed
            removed = f"{self._event_start(entry.kind, root, 'Remove')}>{self.audit_record(event, event.reason)}"
            return f"{self._subject_start('Context')}>{removed}</StudyEventData></SubjectData>"
        if was_voided and not entry.voided:
            return self.inserted(entry.kind, root, entry.record, event, event.reason)
        if not entry.voided:
            new_values, old_values = flatten(entry.kind, entry.record), flatten(entry.kind, old)
            changes = {}
            for oid, value in new_values.items():
                previous = old_values.get(oid)
                if value == previous:
                    continue
                changes[oid] = ("Insert", value) if previous is None else ("Remove", None) if value is None \
                    else ("Update", value)
            return self.container(entry.kind, root, "Context", self.items(changes, event, event.reason))
        # a change to a record that stays voided: no data
        return f"{self._subject_start('Context')}>{self.audit_record(event, event.reason)}</SubjectData>"

    def signature(self, event: Any) -> str:
        assert self.patient is not None
        key = getattr(event, "key_id", None)
        signed = f"; Ed25519 signature by key {key}: {event.signature}" if key else ""
        manifest = (f"SHA-256 chain (pgf-chain/1) over {self.subject}#1..#{event.stream_version}: "
                    f"{event.stream_hash}{signed}")
        signature = (f'<Signature ID="{_attr(f"SIG.{oid_part(self.subject)}.{event.originator_version}")}">'
                     f'<UserRef UserOID="{_attr(user_oid(event.recorded_by))}" />'
                     f'<LocationRef LocationOID="{_attr(site_oid(self.patient.registration.site))}" />'
                     f'<SignatureRef SignatureOID="{_attr(f"SD.{event.meaning.upper()}")}" />'
                     f"{_leaf('DateTimeStamp', utc(event.signed_at))}{_leaf('CryptoBindingManifest', manifest)}"
                     "</Signature>")
        return f"{self._subject_start('Context')}>{self.audit_record(event, None)}{signature}</SubjectData>"


def snapshot_subject(subject: str, events: list[Any], seen: Seen) -> str:
    """One SubjectData with every standing record's current values (voided records left out)."""
    patient = fold(events)
    seen.users.update(e.recorded_by for e in events)
    seen.site(patient)
    out = [f'<SubjectData SubjectKey="{_attr(subject)}"><SiteRef LocationOID="{_attr(site_oid(patient.registration.site))}" />']
    for version, entry in sorted(patient.entries.items()):
        if entry.record is None or entry.voided or entry.kind in (CORRECTION, VOID, SIGN):
            continue
        g = _name(_group(entry.kind))
        key = "" if entry.kind == "register" else f' StudyEventRepeatKey="{_attr(version)}"'
        items = "".join(f'<ItemData ItemOID="{_name(oid)}" Value="{_value(value)}" />'
                        for oid, value in flatten(entry.kind, entry.record).items() if value is not None)
        group = _wrap(f'<ItemGroupData ItemGroupOID="IG.{g}"', "ItemGroupData", items)
        out.append(f'<StudyEventData StudyEventOID="SE.{g}"{key}><FormData FormOID="F.{g}">{group}</FormData>'
                   "</StudyEventData>")
    out.append("</SubjectData>")
    return "".join(out)


def subject_data(app: Any, seen: Seen, as_of: datetime | None, snapshot: bool,
                 subjects: list[str] | None = None) -> Iterator[str]:
    """Each SubjectData of ClinicalData (of ``subjects``, default every patient), as XML text."""
    for subject, events in patient_streams(app, as_of, subjects):
        if snapshot:
            yield snapshot_subject(subject, events, seen)
            continue
        transactions = Transactions(subject, seen)
        for event in events:
            yield transactions.of(event)
        from pgf_events.audit.odm_monitoring import monitoring_subject_data  # noqa: PLC0415 - transactional only

        assert transactions.patient is not None
        for element in monitoring_subject_data(app, subject, transactions.patient, seen, as_of):
            yield ET.tostring(element, encoding="unicode")
