"""CDISC ODM 1.3.2 transactional XML (``pgf export odm``): every stored event is a transaction.

Layout:

- ``Study``: GlobalVariables, the measurement units, and a minimal MetaDataVersion with one
  StudyEventDef / FormDef / ItemGroupDef per record kind (``SE.LAB``, ``F.LAB``, ``IG.LAB``) and one
  ItemDef per field (``IT.LAB.ANC``); a screening's criteria and a chronic GVHD assessment's organ
  scores become one item each (``IT.SCREEN.CRITERION_IN1``, ``IT.GVHD.ORGAN_SKIN``).
- ``AdminData``: every user who recorded or signed anything, every site, and the two signature
  meanings (``SD.REVIEW``, ``SD.APPROVAL``).
- ``ClinicalData``: one ``SubjectData`` per event, in each patient's order. A record is an
  ``Insert`` of a StudyEventData whose ``StudyEventRepeatKey`` is the record's version (``S001#5``
  is repeat key 5); a correction is an ``Update`` of the changed items of that repeat; a void is a
  ``Remove`` of the whole repeat (every item listed, each removed); voiding a correction is an
  ``Update`` back to the values standing after the void; a signature is a SubjectData
  ``Signature`` whose ``CryptoBindingManifest`` names the signed stream hash. Every ItemData
  carries an ``AuditRecord``: ``UserRef``, ``LocationRef`` (the patient's site),
  ``DateTimeStamp`` (recorded, UTC), ``ReasonForChange`` (for updates and removals) and
  ``SourceID`` (the event reference, and the source document when one was given).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import IO, Any
from xml.etree import ElementTree as ET

import attrs

from pgf_events import __version__
from pgf_events.audit.source import patient_streams, utc
from pgf_events.domain import values as vo
from pgf_events.domain.kinds import EVENT_KINDS, KINDS
from pgf_events.domain.patient import CORRECTION, SIGN, SIGNATURE_MEANINGS, VOID, Patient
from pgf_events.domain.vocabulary import UNITS

NS = "http://www.cdisc.org/ns/odm/v1.3"
MDV_OID = "MDV.PGF.1"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@attrs.frozen
class ItemSpec:
    oid: str
    name: str
    data_type: str
    unit: str | None = None


def _data_type(annotation: Any) -> str:
    text = str(annotation)
    if "datetime" in text:
        return "datetime"
    if "date" in text:
        return "date"
    for python, odm in (("bool", "boolean"), ("float", "float"), ("int", "integer")):
        if python in text:
            return odm
    return "text"


def _group(kind: str) -> str:
    return kind.upper()


def item_specs(kind: str) -> list[ItemSpec]:
    """The items of one record kind, in field order (dict fields flattened)."""
    cls = KINDS[kind].record
    g = _group(kind)
    specs: list[ItemSpec] = []
    for a in attrs.fields(cls):
        if a.name == "criterion":
            specs += [ItemSpec(f"IT.{g}.CRITERION_{c}", f"criterion_{c}", "boolean") for c in vo.TYPED_CRITERIA]
        elif a.name == "organ":
            specs += [ItemSpec(f"IT.{g}.ORGAN_{o.upper()}", f"organ_{o}", "integer") for o in vo.CHRONIC_ORGANS]
        elif a.name == "serious":
            specs.append(ItemSpec(f"IT.{g}.SERIOUS", "serious", "text"))
        else:
            specs.append(ItemSpec(f"IT.{g}.{a.name.upper()}", a.name, _data_type(a.type), a.metadata.get("unit")))
    return specs


def flatten(kind: str, record: vo.Record) -> dict[str, Any]:
    """Item OID -> value (None when empty) for one record."""
    g = _group(kind)
    out: dict[str, Any] = {}
    for name, value in record.as_input().items():
        if name == "criterion":
            for code in vo.TYPED_CRITERIA:
                out[f"IT.{g}.CRITERION_{code}"] = value.get(code)
        elif name == "organ":
            for organ in vo.CHRONIC_ORGANS:
                out[f"IT.{g}.ORGAN_{organ.upper()}"] = value.get(organ)
        elif name == "serious":
            out[f"IT.{g}.SERIOUS"] = ",".join(value) or None
        else:
            out[f"IT.{g}.{name.upper()}"] = value
    return out


def odm_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def user_oid(name: str) -> str:
    return "USR." + _UNSAFE.sub("_", name)


def site_oid(name: str) -> str:
    return "LOC." + _UNSAFE.sub("_", name)


# Characters XML 1.0 cannot carry at all, even escaped (its Char production). Entry refuses them
# (parsing.check_clean); text stored before that rule existed is exported with U+FFFD in their
# place, so the file is always well-formed.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _el(parent: ET.Element | None, tag: str, text: str | None = None, **attributes: Any) -> ET.Element:
    attrib = {k: xml_text(v) for k, v in attributes.items() if v is not None}
    element = ET.Element(tag, attrib) if parent is None else ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = xml_text(text)
    return element


@attrs.define
class Seen:
    """Users and sites met while writing ClinicalData (AdminData lists them)."""

    users: set[str] = attrs.field(factory=set)
    sites: dict[str, date] = attrs.field(factory=dict)  # site -> earliest registration date


class Transactions:
    """Turns one patient's events into SubjectData elements, one per event."""

    def __init__(self, subject: str, seen: Seen):
        self.subject = subject
        self.seen = seen
        self.patient: Patient | None = None

    def audit_record(self, parent: ET.Element, event: Any, reason: str | None) -> None:
        assert self.patient is not None
        record = _el(parent, "AuditRecord")
        _el(record, "UserRef", UserOID=user_oid(event.recorded_by))
        _el(record, "LocationRef", LocationOID=site_oid(self.patient.registration.site))
        _el(record, "DateTimeStamp", utc(event.timestamp))
        if reason:
            _el(record, "ReasonForChange", reason)
        ref = self.patient.ref(event.originator_version)
        _el(record, "SourceID", f"{ref} | {event.source}" if event.source else ref)

    def container(self, kind: str, repeat: int, tx: str, subject_tx: str = "Context") -> tuple[ET.Element, ET.Element]:
        """SubjectData > StudyEventData > FormData > ItemGroupData (returns the SubjectData and the group)."""
        assert self.patient is not None
        g = _group(kind)
        subject = _el(None, "SubjectData", SubjectKey=self.subject, TransactionType=subject_tx)
        if subject_tx == "Insert":
            _el(subject, "SiteRef", LocationOID=site_oid(self.patient.registration.site))
        event = _el(subject, "StudyEventData", StudyEventOID=f"SE.{g}",
                    StudyEventRepeatKey=None if kind == "register" else repeat, TransactionType=tx)
        form = _el(event, "FormData", FormOID=f"F.{g}", TransactionType=tx)
        group = _el(form, "ItemGroupData", ItemGroupOID=f"IG.{g}", TransactionType=tx)
        return subject, group

    def items(self, group: ET.Element, values: dict[str, Any], tx: str, event: Any, reason: str | None,
              keep_empty: bool = False) -> None:
        for oid, value in values.items():
            if value is None and not keep_empty:
                continue
            item = _el(group, "ItemData", ItemOID=oid, TransactionType=tx,
                       Value=None if value is None or tx == "Remove" else odm_value(value),
                       IsNull="Yes" if value is None and tx != "Remove" else None)
            self.audit_record(item, event, reason)

    def of(self, event: Any) -> ET.Element:
        kind = EVENT_KINDS[type(event)]
        before: tuple[bool, vo.Record | None] | None = None
        root = 0
        if kind in (CORRECTION, VOID):
            assert self.patient is not None
            root = self.patient._root(int(event.supersedes.rpartition("#")[2]))
            entry = self.patient.entries[root]
            before = (entry.voided, entry.record)
        self.patient = event.mutate(self.patient)
        patient = self.patient
        assert patient is not None
        self.seen.users.add(event.recorded_by)
        if kind == "register":
            site, day = patient.registration.site, patient.registration.clinical_date
            self.seen.sites[site] = min(day, self.seen.sites.get(site, day))
            subject, group = self.container(kind, 1, "Insert", subject_tx="Insert")
            self.items(group, flatten(kind, event.record), "Insert", event, None)
            return subject
        if kind == SIGN:
            return self.signature(event)
        if kind not in (CORRECTION, VOID):
            subject, group = self.container(kind, event.originator_version, "Insert")
            self.items(group, flatten(kind, event.record), "Insert", event, None)
            return subject
        assert before is not None
        entry = patient.entries[root]
        root_kind = entry.kind
        was_voided, old = before
        if entry.kind == "register":
            site = patient.registration.site
            self.seen.sites.setdefault(site, patient.registration.clinical_date)
        if not was_voided and entry.voided:
            assert old is not None
            subject, group = self.container(root_kind, root, "Remove")
            self.items(group, flatten(root_kind, old), "Remove", event, event.reason)
        elif was_voided and not entry.voided:
            assert entry.record is not None
            subject, group = self.container(root_kind, root, "Upsert")
            self.items(group, flatten(root_kind, entry.record), "Upsert", event, event.reason)
        elif not entry.voided:
            assert old is not None and entry.record is not None
            new_values, old_values = flatten(root_kind, entry.record), flatten(root_kind, old)
            changed = {oid: v for oid, v in new_values.items() if v != old_values.get(oid)}
            subject, group = self.container(root_kind, root, "Context")
            self.items(group, changed, "Update", event, event.reason, keep_empty=True)
        else:  # a change to a record that stays voided: the transaction is kept, with no data
            subject = _el(None, "SubjectData", SubjectKey=self.subject, TransactionType="Context")
            self.audit_record(subject, event, event.reason)
        return subject

    def signature(self, event: Any) -> ET.Element:
        assert self.patient is not None
        subject = _el(None, "SubjectData", SubjectKey=self.subject, TransactionType="Context")
        self.audit_record(subject, event, None)
        signature = _el(subject, "Signature")
        _el(signature, "UserRef", UserOID=user_oid(event.recorded_by))
        _el(signature, "LocationRef", LocationOID=site_oid(self.patient.registration.site))
        _el(signature, "SignatureRef", SignatureOID=f"SD.{event.meaning.upper()}")
        _el(signature, "DateTimeStamp", utc(event.signed_at))
        _el(signature, "CryptoBindingManifest",
            f"SHA-256 chain (pgf-chain/1) over {self.subject}#1..#{event.stream_version}: {event.stream_hash}")
        return subject


def study(trial: str, protocol_version: str) -> ET.Element:
    element = _el(None, "Study", OID=f"ST.{trial}")
    variables = _el(element, "GlobalVariables")
    _el(variables, "StudyName", trial)
    _el(variables, "StudyDescription", "Umbilical-cord MSCs for poor graft function after allogeneic HSCT")
    _el(variables, "ProtocolName", f"{trial} ({protocol_version})")
    basic = _el(element, "BasicDefinitions")
    for symbol, oid in UNITS.items():
        unit = _el(basic, "MeasurementUnit", OID=oid, Name=symbol)
        _el(_el(unit, "Symbol"), "TranslatedText", symbol)
    mdv = _el(element, "MetaDataVersion", OID=MDV_OID, Name="pgf-events record kinds",
              Description="One study event, form and item group per pgf record kind")
    protocol = _el(mdv, "Protocol")
    titles = {k.name: k.title for k in KINDS.values()}
    for n, kind in enumerate(titles, start=1):
        _el(protocol, "StudyEventRef", StudyEventOID=f"SE.{_group(kind)}", OrderNumber=n,
            Mandatory="Yes" if kind == "register" else "No")
    for kind, name in titles.items():
        repeating = "No" if kind == "register" else "Yes"
        event = _el(mdv, "StudyEventDef", OID=f"SE.{_group(kind)}", Name=name, Repeating=repeating,
                    Type="Common" if kind == "register" else "Unscheduled")
        _el(event, "FormRef", FormOID=f"F.{_group(kind)}", Mandatory="Yes")
    for kind, name in titles.items():
        form = _el(mdv, "FormDef", OID=f"F.{_group(kind)}", Name=name, Repeating="No")
        _el(form, "ItemGroupRef", ItemGroupOID=f"IG.{_group(kind)}", Mandatory="Yes")
    for kind, name in titles.items():
        group = _el(mdv, "ItemGroupDef", OID=f"IG.{_group(kind)}", Name=name, Repeating="No")
        for n, spec in enumerate(item_specs(kind), start=1):
            _el(group, "ItemRef", ItemOID=spec.oid, OrderNumber=n, Mandatory="No")
    for kind in titles:
        for spec in item_specs(kind):
            item = _el(mdv, "ItemDef", OID=spec.oid, Name=spec.name, DataType=spec.data_type,
                       Length=500 if spec.data_type == "text" else None)
            if spec.unit:
                _el(item, "MeasurementUnitRef", MeasurementUnitOID=UNITS[spec.unit])
    return element


def admin_data(trial: str, seen: Seen, today: date) -> ET.Element:
    element = _el(None, "AdminData", StudyOID=f"ST.{trial}")
    for name in sorted(seen.users):
        user = _el(element, "User", OID=user_oid(name))
        _el(user, "LoginName", name)
    for site, first in sorted(seen.sites.items()):
        location = _el(element, "Location", OID=site_oid(site), Name=site, LocationType="Site")
        _el(location, "MetaDataVersionRef", StudyOID=f"ST.{trial}", MetaDataVersionOID=MDV_OID,
            EffectiveDate=min(first, today).isoformat())
    for meaning in SIGNATURE_MEANINGS:
        definition = _el(element, "SignatureDef", OID=f"SD.{meaning.upper()}", Methodology="Electronic")
        _el(definition, "Meaning", {"review": "Reviewed", "approval": "Approved"}[meaning])
        _el(definition, "LegalReason",
            f"Recorded with 'pgf sign --meaning {meaning}' by the acting user; the signature binds the "
            "chain hash of the patient's events and is invalidated by any later event on the patient")
    return element


def subject_data(app: Any, seen: Seen, as_of: datetime | None) -> Iterator[ET.Element]:
    for subject, events in patient_streams(app, as_of):
        transactions = Transactions(subject, seen)
        for event in events:
            yield transactions.of(event)


def write_odm(app: Any, out: IO[str], as_of: datetime | None = None, now: datetime | None = None) -> int:
    """Write the whole file; returns the number of transactions (SubjectData elements)."""
    now = now or datetime.now(UTC)
    trial = app.protocol.trial
    seen = Seen()
    count = 0
    with tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024, mode="w+", encoding="utf-8") as clinical:
        for element in subject_data(app, seen, as_of):
            clinical.write(ET.tostring(element, encoding="unicode"))
            clinical.write("\n")
            count += 1
        root = _el(None, "ODM", xmlns=NS, FileType="Transactional", Granularity="All",
                   FileOID=f"PGF.{trial}.{now.strftime('%Y%m%dT%H%M%S%fZ')}", CreationDateTime=utc(now),
                   AsOfDateTime=utc(as_of or now), ODMVersion="1.3.2", Originator="pgf-events",
                   SourceSystem="pgf-events", SourceSystemVersion=__version__)
        opening = ET.tostring(root, encoding="unicode").replace(" />", ">")
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        out.write(opening + "\n")
        out.write(ET.tostring(study(trial, app.protocol.version), encoding="unicode") + "\n")
        out.write(ET.tostring(admin_data(trial, seen, now.date()), encoding="unicode") + "\n")
        out.write(f'<ClinicalData StudyOID="ST.{trial}" MetaDataVersionOID="{MDV_OID}">\n')
        clinical.seek(0)
        shutil.copyfileobj(clinical, out)
        out.write("</ClinicalData>\n</ODM>\n")
    return count
