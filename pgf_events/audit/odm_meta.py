"""What an ODM 1.3.2 file says besides the data: OIDs, values, the Study metadata and AdminData.

- OIDs are one-to-one with names: letters, digits, ``.`` and ``-`` stay, every other character
  (``_`` included) becomes ``_HEX_`` of its code point, so ``j smith`` (``USR.j_20_smith``) and
  ``j_smith`` (``USR.j_5F_smith``) never collide, nor do same-length CJK names. The real name is
  kept in the element (User/LoginName, Location/@Name).
- Decimals are written without exponent (``0.00001``, never ``1e-05``).
- Every ItemDef has Question text (the field's help) and every choice field a CodeList.
- Users carry their roles (UserType, and Organization text naming the roles held).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree as ET

import attrs

from pgf_events.audit.source import utc
from pgf_events.domain import values as vo
from pgf_events.domain.kinds import KINDS
from pgf_events.domain.patient import SIGNATURE_MEANINGS
from pgf_events.domain.vocabulary import UNITS

NS = "http://www.cdisc.org/ns/odm/v1.3"
MDV_OID = "MDV.PGF.1"
_SAFE = re.compile(r"[A-Za-z0-9.-]")
# Characters XML 1.0 cannot carry at all, even escaped: exported as U+FFFD so the file stays well-formed.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
USER_TYPES = {"investigator": "Investigator", "monitor": "Sponsor", "auditor": "Sponsor"}


@attrs.frozen
class ItemSpec:
    oid: str
    name: str
    data_type: str
    question: str
    unit: str | None = None
    choices: tuple[str, ...] = ()


def oid_part(name: str) -> str:
    return "".join(c if _SAFE.fullmatch(c) else f"_{ord(c):X}_" for c in name)


def user_oid(name: str) -> str:
    return "USR." + oid_part(name)


def site_oid(name: str) -> str:
    return "LOC." + oid_part(name)


def xml_text(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _text(value: Any) -> str:
    """Element text exactly as ``_el`` + ``ElementTree.tostring`` write it."""
    text = xml_text(value)
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def _attr(value: Any) -> str:
    """An attribute value exactly as ``_el`` + ``ElementTree.tostring`` write it: escaped as text, then
    the quote and the whitespace characters an attribute would lose."""
    text = _text(value)
    for raw, escaped in _ATTR_ONLY:
        if raw in text:
            text = text.replace(raw, escaped)
    return text


_ATTR_ONLY = (('"', "&quot;"), ("\r", "&#13;"), ("\n", "&#10;"), ("\t", "&#09;"))


def _el(parent: ET.Element | None, tag: str, text: str | None = None, **attributes: Any) -> ET.Element:
    attrib = {k: xml_text(v) for k, v in attributes.items() if v is not None}
    element = ET.Element(tag, attrib) if parent is None else ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = xml_text(text)
    return element


def decimal_text(value: float) -> str:
    """A float as an ODM decimal: the shortest exact repr, never an exponent."""
    text = repr(value)
    if "e" in text or "n" in text:  # an exponent (or inf, nan): Decimal writes it out; else repr already is
        text = format(Decimal(text), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def odm_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return decimal_text(value)
    return str(value)


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
    """The items of one record kind, in field order (dict and multi-choice fields flattened)."""
    cls = KINDS[kind].record
    g = _group(kind)
    specs: list[ItemSpec] = []
    for a in attrs.fields(cls):
        question = a.metadata.get("help") or a.name.replace("_", " ")
        if a.name == "criterion":
            specs += [ItemSpec(f"IT.{g}.CRITERION_{c}", f"criterion_{c}", "boolean", f"Criterion {c} met?")
                      for c in vo.TYPED_CRITERIA]
        elif a.name == "organ":
            specs += [ItemSpec(f"IT.{g}.ORGAN_{o.upper()}", f"organ_{o}", "integer", f"NIH organ score (0-3): {o}")
                      for o in vo.CHRONIC_ORGANS]
        elif a.name == "serious":
            specs += [ItemSpec(f"IT.{g}.SERIOUS_{c.upper().replace('-', '_')}", f"serious_{c}", "boolean",
                               f"Seriousness criterion: {c}?") for c in vo.SERIOUSNESS]
        else:
            choices = tuple(getattr(a.metadata.get("parse"), "choices", ()))
            specs.append(ItemSpec(f"IT.{g}.{a.name.upper()}", a.name, _data_type(a.type), question,
                                  a.metadata.get("unit"), choices))
    return specs


_ITEM_OIDS: dict[tuple[str, str], str] = {}  # (kind, field) -> item OID, for the plain fields


def flatten(kind: str, record: vo.Record) -> dict[str, Any]:
    """Item OID -> value (None when empty) for one record."""
    g = _group(kind)
    out: dict[str, Any] = {}
    oids = _ITEM_OIDS
    for name, value in record.as_input().items():
        oid = oids.get((kind, name))
        if oid is not None:
            out[oid] = value
        elif name == "criterion":
            for code in vo.TYPED_CRITERIA:
                out[f"IT.{g}.CRITERION_{code}"] = value.get(code)
        elif name == "organ":
            for organ in vo.CHRONIC_ORGANS:
                out[f"IT.{g}.ORGAN_{organ.upper()}"] = value.get(organ)
        elif name == "serious":
            for c in vo.SERIOUSNESS:
                out[f"IT.{g}.SERIOUS_{c.upper().replace('-', '_')}"] = (c in value) if value else None
        else:
            out[f"IT.{g}.{name.upper()}"] = value
            oids[(kind, name)] = f"IT.{g}.{name.upper()}"
    return out


def codelist_oid(spec: ItemSpec) -> str:
    return "CL." + spec.oid.removeprefix("IT.")


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
    specs = [spec for kind in titles for spec in item_specs(kind)]
    for spec in specs:
        item = _el(mdv, "ItemDef", OID=spec.oid, Name=spec.name, DataType=spec.data_type,
                   Length=500 if spec.data_type == "text" else None)
        _el(_el(item, "Question"), "TranslatedText", spec.question, **{"xml:lang": "en"})
        if spec.unit:
            _el(item, "MeasurementUnitRef", MeasurementUnitOID=UNITS[spec.unit])
        if spec.choices:
            _el(item, "CodeListRef", CodeListOID=codelist_oid(spec))
    for spec in specs:
        if spec.choices:
            codelist = _el(mdv, "CodeList", OID=codelist_oid(spec), Name=spec.name, DataType="text")
            for choice in spec.choices:
                _el(codelist, "EnumeratedItem", CodedValue=choice)
    return element


def admin_data(trial: str, users: dict[str, set[str]], sites: dict[str, date], today: date) -> ET.Element:
    """AdminData: every user (roles held, or none in an open store), every site, the signature meanings."""
    element = _el(None, "AdminData", StudyOID=f"ST.{trial}")
    for name in sorted(users):
        roles = sorted(users[name])
        kind = next((USER_TYPES[r] for r in roles if r in USER_TYPES), "Other")
        user = _el(element, "User", OID=user_oid(name), UserType=kind)
        _el(user, "LoginName", name)
        _el(user, "DisplayName", name)
        _el(user, "Organization", "roles: " + (", ".join(roles) or "none (open store)"))
    for site, first in sorted(sites.items()):
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
