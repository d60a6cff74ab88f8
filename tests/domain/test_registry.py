"""The record-kind registry is complete and agrees with everything generated from it."""

from __future__ import annotations

import typing

import attrs
import pytest

from pgf_events.audit import odm_meta as odm
from pgf_events.cli.record import options, record
from pgf_events.domain import vocabulary
from pgf_events.domain.kinds import DAY_ORDER, EVENT_KINDS, KINDS, Kind
from pgf_events.domain.parsing import label
from pgf_events.domain.patient import Patient
from pgf_events.exports import sdtm
from pgf_events.exports.sdtm import events as sdtm_events
from pgf_events.exports.spec import ascii_safe
from pgf_events.transcodings import FastJSONTranscoder, register_all

ALL = list(KINDS.values())


@pytest.mark.parametrize("kind", ALL, ids=lambda k: k.name)
def test_an_entry_ties_its_value_class_event_and_command_together(kind: Kind) -> None:
    assert kind.name == kind.record.KIND
    assert typing.get_type_hints(kind.event)["record"] is kind.record, "the event must carry this value class"
    if kind.command is not None:
        assert callable(getattr(Patient, kind.command)), f"Patient has no command {kind.command}"
    assert kind.title and kind.summary.endswith(".") and kind.example.startswith(f"pgf record {kind.name} ")
    assert set(kind.sdtm) <= set(sdtm.DATASETS)


@pytest.mark.parametrize("kind", ALL, ids=lambda k: k.name)
def test_every_field_says_how_it_is_parsed_entered_and_measured(kind: Kind) -> None:
    for a in attrs.fields(kind.record):
        meta = a.metadata
        assert callable(meta["parse"]) and meta["help"], f"{kind.name}.{a.name} lacks parse or help"
        if meta["unit"] is not None:
            assert meta["unit"] in vocabulary.UNITS, f"{kind.name}.{a.name}: unit {meta['unit']} has no ODM OID"
        if meta["range"] is not None:
            low, high = meta["range"]
            assert low < high
    for name, option in kind.record.INPUT_OPTIONS.items():
        assert option.help and (option.after is None or option.after in attrs.fields_dict(kind.record)), name
    for finding in kind.findings:
        field = attrs.fields_dict(kind.record)[finding.field]
        unit = field.metadata["unit"]
        assert finding.unit == (ascii_safe(unit) if unit else ""), f"{kind.name}.{finding.field}: SDTM unit differs"
        assert finding.domain in kind.sdtm, f"{kind.name}.{finding.field} feeds {finding.domain}, not in its sdtm"


def test_every_recorded_event_class_belongs_to_exactly_one_kind() -> None:
    recorded = set(Patient.Recorded.__subclasses__())
    assert recorded == {k.event for k in ALL if k.name != "register"}
    assert len(EVENT_KINDS) == len(ALL) + 3  # and correct, void, sign
    assert sorted(DAY_ORDER.values()) == list(range(len(DAY_ORDER))), "same-day ranks are distinct"


def test_the_cli_import_and_transcodings_are_generated_for_every_kind() -> None:
    assert list(record.commands) == list(KINDS)
    transcoder = FastJSONTranscoder()
    register_all(transcoder)
    for kind in ALL:
        fields = {label(a.name) for a in attrs.fields(kind.record) if not a.metadata.get("derived")}
        assert fields <= {name for name, _, _ in options(kind.name)}
        assert f"pgf.{kind.name}" in transcoder.names


def test_the_odm_metadata_defines_every_kind_and_unit_it_references() -> None:
    study = odm.study("NCT06171906", "v1")
    defined = {e.get("OID") for e in study.iter() if e.tag in ("StudyEventDef", "FormDef", "ItemGroupDef",
                                                                   "ItemDef", "MeasurementUnit")}
    for kind in ALL:
        group = kind.name.upper()
        assert {f"SE.{group}", f"F.{group}", f"IG.{group}"} <= defined, kind.name
        assert {spec.oid for spec in odm.item_specs(kind.name)} <= defined
    referenced = {e.get("MeasurementUnitOID") for e in study.iter() if e.tag == "MeasurementUnitRef"}
    assert referenced <= defined


def test_export_vocabularies_cover_the_domain_vocabularies() -> None:
    assert set(sdtm_events.SERIOUSNESS_FLAGS) == set(vocabulary.SERIOUSNESS)
    assert set(sdtm_events.RELATEDNESS) == set(vocabulary.RELATEDNESS)
    assert set(vocabulary.TYPED_CRITERIA) | set(vocabulary.DERIVED_CRITERIA) == set(sdtm_events.CRITERIA_TEXT)
