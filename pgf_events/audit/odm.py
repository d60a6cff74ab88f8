"""CDISC ODM 1.3.2 XML (``pgf export odm``): every stored event a transaction, or with ``--snapshot``
the current values, one SubjectData per subject, for loading into an EDC.

Layout (metadata, OIDs and values: :mod:`pgf_events.audit.odm_meta`):

- ``Study``: GlobalVariables, the measurement units, and a MetaDataVersion with one StudyEventDef /
  FormDef / ItemGroupDef per record kind (``SE.LAB``, ``F.LAB``, ``IG.LAB``), one ItemDef per field
  (``IT.LAB.ANC``) with its Question, unit and CodeList.
- ``AdminData``: every user (with the roles held), every site, the signature meanings.
- ``ClinicalData`` (transactional): a record is an ``Insert`` of a StudyEventData whose
  ``StudyEventRepeatKey`` is the record's version (``S001#5`` is repeat key 5) with an ``Insert`` of
  each item it holds. A correction is a ``Context`` of that repeat whose items are, as the standard
  defines them, ``Update`` (a value replaced), ``Insert`` (a value given that the record did not hold)
  or ``Remove`` (a value cleared). A void is a ``Remove`` of the whole repeat; voiding a void
  inserts the repeat again with its values. A signature is a SubjectData ``Signature`` (with its
  ``ID``) whose ``CryptoBindingManifest`` names the signed stream hash. Every ItemData (and every
  removed repeat) carries an ``AuditRecord``: ``UserRef``, ``LocationRef`` (the patient's site),
  ``DateTimeStamp`` (recorded, UTC), ``ReasonForChange`` (corrections and voids) and ``SourceID``
  (the event reference, and the source document when one was given). Queries, source data
  verification and freezes follow each patient's transactions as ``Annotation`` elements
  (:mod:`pgf_events.audit.odm_monitoring`).
"""

from __future__ import annotations

import codecs
import functools
import multiprocessing
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from datetime import UTC, date, datetime
from typing import IO, Any
from xml.etree import ElementTree as ET

import attrs

from pgf_events import __version__
from pgf_events.audit.odm_meta import (
    MDV_OID,
    NS,
    _attr,
    _el,
    _group,
    _text,
    admin_data,
    decimal_text,
    flatten,
    odm_value,
    oid_part,
    site_oid,
    study,
    user_oid,
    xml_text,
)
from pgf_events.audit.roles import RoleBook
from pgf_events.audit.source import fold, patient_streams, utc
from pgf_events.domain.kinds import EVENT_KINDS
from pgf_events.domain.patient import CORRECTION, SIGN, VOID, Patient
from pgf_events.gc_tuning import usable_cpus
from pgf_events.workers import die_with_parent

__all__ = ["NS", "Seen", "Transactions", "snapshot_subject", "write_odm", "xml_text"]


SPOOL_BYTES = 64 * 1024 * 1024  # ClinicalData is kept in memory up to this size, then in a temporary file


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
        key = "" if kind == "register" else f' StudyEventRepeatKey="{repeat:d}"'
        group = f">{items}</ItemGroupData>" if items else " />"
        return f"{found[0]}{key}{found[1]}{group}</FormData></StudyEventData></SubjectData>"

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


def write_odm(app: Any, out: IO[str], as_of: datetime | None = None, now: datetime | None = None,
              snapshot: bool = False) -> int:
    """Write the whole file; returns the number of SubjectData elements."""
    now = now or datetime.now(UTC)
    trial = app.protocol.trial
    seen = Seen()
    parts: list[IO[bytes]] = []
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b") as clinical, ExitStack() as stack:
        stack.callback(lambda: [part.close() for part in parts])
        count = _clinical(app, seen, as_of, snapshot, clinical, parts)
        book = RoleBook(app, as_of)
        users = {name: book.roles_at(name) for name in seen.users | book.users()}
        root = _el(None, "ODM", xmlns=NS, FileType="Snapshot" if snapshot else "Transactional",
                   Granularity="All", FileOID=f"PGF.{trial}.{now.strftime('%Y%m%dT%H%M%S%fZ')}",
                   CreationDateTime=utc(now), AsOfDateTime=utc(as_of or now), ODMVersion="1.3.2",
                   Originator="pgf-events", SourceSystem="pgf-events", SourceSystemVersion=__version__)
        opening = ET.tostring(root, encoding="unicode").replace(" />", ">")
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        out.write(opening + "\n")
        out.write(ET.tostring(study(trial, app.protocol.version), encoding="unicode") + "\n")
        out.write(ET.tostring(admin_data(trial, users, seen.sites, now.date()), encoding="unicode") + "\n")
        out.write(f'<ClinicalData StudyOID="ST.{trial}" MetaDataVersionOID="{MDV_OID}">\n')
        for part in (clinical, *parts):
            _append(out, part)
        out.write("</ClinicalData>\n</ODM>\n")
    return count


# ---------------------------------------------------------------------------------------- two processes

PARALLEL_MIN_EVENTS = 100_000  # below this a second process costs more (its start-up) than it saves


def _lines(app: Any, seen: Seen, as_of: datetime | None, snapshot: bool, subjects: list[str], out: IO[bytes]) -> int:
    """Write each SubjectData of ``subjects`` to ``out`` (UTF-8), one a line; returns how many."""
    count, lines = 0, []
    for element in subject_data(app, seen, as_of, snapshot, subjects):
        lines.append(element)
        count += 1
        if len(lines) >= 1000:  # one write per thousand (each write costs Python calls)
            lines.append("")
            out.write("\n".join(lines).encode("utf-8"))
            lines.clear()
    lines.append("")
    out.write("\n".join(lines).encode("utf-8") if len(lines) > 1 else b"")
    return count


def _append(out: IO[str], part: IO[bytes]) -> None:
    """Copy ``part`` (UTF-8, from its start) to the text stream ``out``.

    A file on disk to a UTF-8 file or pipe: by the kernel (``sendfile``), so a gigabyte-sized export
    is neither read into Python, decoded, encoded again, nor copied through user memory. Anything
    else (a string buffer, another encoding, an in-memory spooled part): decoded and written.
    """
    part.flush()
    part.seek(0)
    source = target = None
    if getattr(part, "_rolled", True) and codecs.lookup(getattr(out, "encoding", None) or "ascii").name == "utf-8":
        try:
            source, target = part.fileno(), out.fileno()
        except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError and a ValueError
            source = target = None
    if source is not None and target is not None:
        out.flush()
        offset, size = 0, os.fstat(source).st_size
        while offset < size:
            sent = os.sendfile(target, source, offset, size - offset)
            if sent == 0:
                raise OSError(f"could not copy the ODM export's clinical data ({offset} of {size} bytes written)")
            offset += sent
        return
    decoder = codecs.getincrementaldecoder("utf-8")()
    while chunk := part.read(1 << 22):
        out.write(decoder.decode(chunk))
    out.write(decoder.decode(b"", final=True))


def _clinical(app: Any, seen: Seen, as_of: datetime | None, snapshot: bool, out: IO[bytes],
              parts: list[IO[bytes]]) -> int:
    """ClinicalData's lines. A big store on disk, with two usable cores: the second half of the subjects
    is written by a second process into a file of its own (opened into ``parts``, to be appended after
    ``out``), so the file is the one process's file byte for byte (its users and sites joined to
    ``seen``)."""
    subjects = app.subjects()  # the acting user's sites: the worker is given the subjects, not the scope
    store = app.store
    on_disk = store.backend == "postgresql" or (store.backend == "sqlite" and store.sqlite_path is not None)
    if not (on_disk and len(subjects) >= 2 and usable_cpus() >= 2
            and (app.recorder.max_notification_id() or 0) >= PARALLEL_MIN_EVENTS):
        return _lines(app, seen, as_of, snapshot, subjects, out)
    half = len(subjects) // 2
    fd, path = tempfile.mkstemp(prefix="pgf-odm-", suffix=".xml")
    os.close(fd)
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                               initargs=(store, app.protocol, os.getpid()))
    try:
        future = pool.submit(_worker_lines, subjects[half:], as_of, snapshot, path)
        count = _lines(app, seen, as_of, snapshot, subjects[:half], out)
        more, users, sites = future.result()
        seen.users |= users
        for site, day in sites.items():
            seen.sites[site] = min(day, seen.sites.get(site, day))
        parts.append(open(path, "rb"))  # noqa: SIM115 - closed by write_odm, once appended
        return count + more
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        os.unlink(path)


_WORKER: dict[str, Any] = {}


def _start_worker(store: Any, protocol: Any, parent: int) -> None:
    die_with_parent(parent)
    from pgf_events.application import TrialConduct  # noqa: PLC0415 - in the worker only

    _WORKER["app"] = TrialConduct(store, protocol)


def _worker_lines(subjects: list[str], as_of: datetime | None, snapshot: bool,
                  path: str) -> tuple[int, set[str], dict[str, date]]:
    seen = Seen()
    with open(path, "wb") as out:
        count = _lines(_WORKER["app"], seen, as_of, snapshot, subjects, out)
    return count, seen.users, seen.sites
