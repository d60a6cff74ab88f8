"""define.xml 2.1 for a set of datasets (SDTM or ADaM), built with odmlib's Define-XML 2.1 model.

Describes every dataset (class, structure, keys, the XPT file as its leaf), every variable
(label, data type, measured length, origin, the codelist it draws from) and every codelist (CDISC
terms, and sponsor extensions flagged ``def:ExtendedValue="Yes"``). Derived variables point to one
MethodDef naming where the derivation lives.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import odmlib.define_2_1.model as D

from pgf_events import __version__
from pgf_events.exports.formats import item_oid
from pgf_events.exports.spec import CODELISTS, Dataset

DEFINE_TYPES = {"text": "text", "integer": "integer", "float": "float", "date": "date", "datetime": "datetime",
                "sasdate": "integer"}
STANDARDS = {"SDTMIG": ("SDTMIG", "3.4", "SDTM"), "ADaMIG": ("ADaMIG", "1.3", "ADaM")}
CT_VERSION = "2024-09-27"


def _text(text: str) -> D.Description:
    return D.Description(TranslatedText=[D.TranslatedText(_content=text, lang="en")])


def define_xml(datasets: Mapping[str, Dataset], lengths: Mapping[str, Mapping[str, int]], *, trial: str,
               standard: str, now: datetime | None = None) -> str:
    """The define.xml text; ``lengths`` are the measured lengths per dataset and variable."""
    now = now or datetime.now(UTC)
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    name, version, publishing = STANDARDS[standard]
    odm = D.ODM(FileOID=f"DEF.{trial}.{standard}", FileType="Snapshot", CreationDateTime=stamp, AsOfDateTime=stamp,
                ODMVersion="1.3.2", Originator="pgf-events", SourceSystem="pgf-events",
                SourceSystemVersion=__version__, Context="Other")
    study = D.Study(OID=f"ST.{trial}")
    study.GlobalVariables = D.GlobalVariables(
        StudyName=D.StudyName(_content=trial),
        StudyDescription=D.StudyDescription(_content="UC-MSCs for poor graft function after allogeneic HSCT"),
        ProtocolName=D.ProtocolName(_content=trial))
    mdv = D.MetaDataVersion(OID=f"MDV.{trial}.{standard}", Name=f"{trial} {name} {version}",
                            Description=f"{trial} {name} {version} datasets written by pgf-events",
                            DefineVersion="2.1.7")
    mdv.Standards = D.Standards(Standard=[
        D.Standard(OID="STD.IG", Name=name, Type="IG", Version=version, Status="Final"),
        D.Standard(OID="STD.CT", Name="CDISC/NCI", Type="CT", PublishingSet=publishing, Version=CT_VERSION,
                   Status="Final")])
    used: set[str] = set()
    for ds in datasets.values():
        group = D.ItemGroupDef(OID=f"IG.{ds.name}", Name=ds.name, Repeating="No" if ds.name in ("DM", "ADSL") else "Yes",
                               IsReferenceData="Yes" if ds.klass == "TRIAL DESIGN" else "No", SASDatasetName=ds.name,
                               Domain=ds.name if standard == "SDTMIG" and ds.name != "RELREC" else None,
                               Purpose="Tabulation" if standard == "SDTMIG" else "Analysis", Structure=ds.structure,
                               ArchiveLocationID=f"LF.{ds.name}", StandardOID="STD.IG",
                               IsNonStandard="Yes" if ds.custom else None)
        group.Description = _text(ds.label)
        for n, v in enumerate(ds.variables, start=1):
            group.ItemRef.append(D.ItemRef(
                ItemOID=item_oid(ds, v), OrderNumber=n, Mandatory="Yes" if v.name in ds.keys else "No",
                KeySequence=ds.keys.index(v.name) + 1 if v.name in ds.keys else None,
                MethodOID="MT.DERIVED" if v.origin == "Derived" else None))
        group.Class = D.Class(Name=ds.klass)
        group.leaf = D.leaf(ID=f"LF.{ds.name}", href=f"{ds.name.lower()}.xpt",
                            title=D.title(_content=f"{ds.name.lower()}.xpt"))
        mdv.ItemGroupDef.append(group)
    for ds in datasets.values():
        for v in ds.variables:
            item = D.ItemDef(OID=item_oid(ds, v), Name=v.name, DataType=DEFINE_TYPES[v.type],
                             Length=None if v.type in ("date", "datetime") else lengths[ds.name][v.name],
                             SASFieldName=v.name, DisplayFormat="DATE9." if v.type == "sasdate" else None)
            item.Description = _text(v.label)
            if v.codelist:
                item.CodeListRef = D.CodeListRef(CodeListOID=v.codelist)
                used.add(v.codelist)
            item.Origin.append(_origin(v.origin))
            mdv.ItemDef.append(item)
    for oid in sorted(used):
        mdv.CodeList.append(_codelist(oid))
    method = D.MethodDef(OID="MT.DERIVED", Name="Derived by pgf-events", Type="Computation")
    method.Description = _text("Derived from the source events by pgf-events (pgf_events.exports); each record's "
                               "--SPID / SRCSEQ names its source; the reviewer's guide lists the rules.")
    mdv.MethodDef.append(method)
    mdv.leaf = []
    study.MetaDataVersion = mdv
    odm.Study = study
    return odm.to_xml_string(xml_declaration=True) if _has_declaration_kw(odm) else odm.to_xml_string()


def _origin(kind: str) -> Any:
    if kind == "Collected":
        return D.Origin(Type="Collected", Source="Investigator")
    if kind == "Predecessor":
        return D.Origin(Type="Predecessor", Description=_text("Copied from SDTM (SRCDOM/SRCVAR/SRCSEQ)"))
    return D.Origin(Type=kind, Source="Sponsor")


def _codelist(oid: str) -> Any:
    name, terms, extended = CODELISTS[oid]
    codelist = D.CodeList(OID=oid, Name=name, DataType="text", StandardOID="STD.CT")
    decoded = any(decode != coded for coded, decode in terms.items())  # one kind of item per codelist
    for coded, decode in terms.items():
        flag = "Yes" if coded in extended else None
        if decoded:
            codelist.CodeListItem.append(D.CodeListItem(CodedValue=coded, ExtendedValue=flag, Decode=D.Decode(
                TranslatedText=[D.TranslatedText(_content=decode, lang="en")])))
        else:
            codelist.EnumeratedItem.append(D.EnumeratedItem(CodedValue=coded, ExtendedValue=flag))
    return codelist


def _has_declaration_kw(odm: Any) -> bool:
    return "xml_declaration" in inspect.signature(odm.to_xml_string).parameters
