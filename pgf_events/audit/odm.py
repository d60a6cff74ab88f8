"""CDISC ODM 1.3.2 XML (``pgf export odm``): every stored event a transaction, or with ``--snapshot``
the current values, one SubjectData per subject, for loading into an EDC.

Layout (metadata, OIDs and values: :mod:`pgf_events.audit.odm_meta`; SubjectData as text:
:mod:`pgf_events.audit.odm_subjects`):

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
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from datetime import UTC, date, datetime
from typing import IO, Any
from xml.etree import ElementTree as ET

from pgf_events import __version__
from pgf_events.audit.odm_meta import (
    MDV_OID,
    NS,
    _el,
    admin_data,
    study,
    xml_text,
)
from pgf_events.audit.odm_rows import subject_data
from pgf_events.audit.odm_subjects import Seen, Transactions, snapshot_subject
from pgf_events.audit.roles import RoleBook
from pgf_events.audit.source import utc
from pgf_events.gc_tuning import usable_cpus
from pgf_events.workers import die_with_parent

__all__ = ["NS", "Seen", "Transactions", "snapshot_subject", "write_odm", "xml_text"]


SPOOL_BYTES = 64 * 1024 * 1024  # ClinicalData is kept in memory up to this size, then in a temporary file


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
