"""Electronic signatures: what they bind, and that any later event on the patient invalidates them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pgf_events.application import TrialConduct
from pgf_events.audit.chain import stream_hash
from pgf_events.audit.signatures import check_hashes, signatures
from pgf_events.domain.errors import PatientNotFoundError, RuleViolation, ValidationError
from pgf_events.signing import stream_digest
from tests.audit.attacker import Attacker
from tests.audit.keys import CliSigner
from tests.conftest import Pgf, enrol_via_cli
from tests.helpers import USER, enrolled, sign


def test_a_signature_binds_signer_meaning_time_and_the_stream_hash(app: TrialConduct) -> None:
    enrolled(app, "S001")
    result = sign(app, "S001", "review", user="dr.li")
    assert (result["ref"], result["signer"], result["meaning"], result["stream_version"]) == (
        "S001#5", "dr.li", "review", 4)
    event = app.stream("S001")[-1]
    assert type(event).__name__ == "Signed"
    assert (event.recorded_by, event.meaning, event.stream_version) == ("dr.li", "review", 4)
    assert event.signed_at.tzinfo is not None and event.signed_at.utcoffset().total_seconds() == 0
    stored = app.recorder.select_events(app.patient_id("S001"), lte=4)
    expected = stream_hash([(s.originator_id, s.originator_version, s.topic, s.state) for s in stored]).hex()
    assert event.stream_hash == expected == result["stream_hash"]


def test_any_later_event_invalidates_a_signature_but_another_signature_does_not(app: TrialConduct) -> None:
    enrolled(app, "S001")
    sign(app, "S001", "review", user="dr.li")  # 5
    sign(app, "S001", "approval", user="dr.wang")  # 6
    rows = signatures(app.stream("S001"))
    assert [(r["ref"], r["meaning"], r["valid"], r["invalidated_by"]) for r in rows] == [
        ("S001#5", "review", True, None), ("S001#6", "approval", True, None)]
    app.correct("S001#3", {"kps": "90"}, "source verification", user=USER,
                deviation="KPS re-read from the source after enrolment")  # 7
    sign(app, "S001", "review", user="dr.li")  # 8
    rows = signatures(app.stream("S001"))
    assert [(r["ref"], r["valid"], r["invalidated_by"]) for r in rows] == [
        ("S001#5", False, "S001#7"), ("S001#6", False, "S001#7"), ("S001#8", True, None)]
    assert rows[2]["stream_version"] == 7 and rows[0]["signer"] == "dr.li"
    assert isinstance(rows[0]["signed_at"], datetime)


def test_signatures_is_pure_over_any_prefix_of_the_events(app: TrialConduct) -> None:
    enrolled(app, "S001")
    sign(app, "S001", "review", user="dr.li")
    app.record("lab", "S001", {"date": "2025-03-01", "anc": 0.4}, user=USER)
    events = app.stream("S001")
    assert signatures(events[:5])[0]["valid"] is True
    assert signatures(events)[0]["invalidated_by"] == "S001#6"
    assert signatures(events[:4]) == []


def test_a_signature_cannot_be_corrected_or_voided(app: TrialConduct) -> None:
    enrolled(app, "S001")
    sign(app, "S001", "review", user="dr.li")
    with pytest.raises(RuleViolation, match="is a signature"):
        app.void("S001#5", "mistake", user=USER)
    with pytest.raises(RuleViolation, match="is a signature"):
        app.correct("S001#5", {"meaning": "approval"}, "mistake", user=USER)


def test_signing_checks_its_input(app: TrialConduct) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    enrolled(app, "S001")
    key = Ed25519PrivateKey.generate()
    with pytest.raises(ValidationError, match="--meaning"):
        app.sign("S001", "authorship", user="dr.li", private_key=key)
    with pytest.raises(ValidationError, match="--user"):
        app.sign("S001", "review", user="  ", private_key=key)
    with pytest.raises(RuleViolation, match="not registered"):
        app.sign("S001", "review", user="dr.li", private_key=key)
    sign(app, "S001", "review", user="dr.li")
    with pytest.raises(PatientNotFoundError):
        sign(app, "S999", "review", user="dr.li")


def test_a_changed_signed_event_fails_the_hash_check(sqlite_url: str) -> None:
    app = TrialConduct.open(sqlite_url)
    enrolled(app, "S001")
    sign(app, "S001", "approval", user="dr.wang")
    assert [r["hash_ok"] for r in check_hashes(app, "S001")] == [True]
    app.close()
    db = Attacker(sqlite_url)
    db.drop_triggers()
    position = db.position_of(("S001", 3))
    db.set_state(position, db.state(position).replace(b'"kps":80', b'"kps":90'))
    db.close()
    app = TrialConduct.open(sqlite_url)
    assert [(r["valid"], r["hash_ok"]) for r in check_hashes(app, "S001")] == [(True, False)]
    assert stream_digest(app, app.patient_id("S001"), 4) != app.stream("S001")[-1].stream_hash
    app.close()


def test_sign_from_the_cli_and_see_it_in_history(pgf: Pgf, tmp_path: Path) -> None:
    enrol_via_cli(pgf)
    li, wang = CliSigner(pgf, tmp_path, "dr.li"), CliSigner(pgf, tmp_path, "dr.wang")
    assert li.sign("S001", "--meaning", "review").stdout.strip() == "S001#5"
    doc = json.loads(wang.sign("S001", "--meaning", "approval", "--json").stdout)
    assert (doc["ref"], doc["signer"], doc["meaning"], doc["stream_version"]) == ("S001#6", "dr.wang", "approval", 5)
    assert datetime.fromisoformat(doc["signed_at"]) <= datetime.now(UTC)
    pgf.ok("record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4")
    history = {e["ref"]: e for e in json.loads(pgf.ok("history", "S001", "--json").stdout)["events"]}
    assert history["S001#5"]["type"] == "Signed" and history["S001#5"]["status"] == "invalidated by S001#7"
    assert history["S001#6"]["data"]["meaning"] == "approval"
    listed = json.loads(pgf.ok("audit", "signatures", "S001", "--json").stdout)
    assert [(r["ref"], r["valid"], r["hash_ok"], r["signature"]) for r in listed] == [
        ("S001#5", False, True, "verified"), ("S001#6", False, True, "verified")]
    assert pgf("sign", "S001", "--meaning", "authorship").exit_code == 2
    li.rejected("S404", "--meaning", "review", contains="not registered")
    pgf.ok("audit", "verify")


def test_status_shows_each_signature_valid_or_invalidated(sqlite_url: str, tmp_path: Path) -> None:
    from tests.conftest import REGISTER

    pgf = Pgf(sqlite_url)
    pgf.ok("record", "register", "S001", *REGISTER)
    CliSigner(pgf, tmp_path, pgf.user).sign("S001", "--meaning", "review")
    doc = json.loads(pgf.ok("status", "S001", "--json").stdout)
    assert [(s["ref"], s["meaning"], s["valid"]) for s in doc["signatures"]] == [("S001#2", "review", True)]
    pgf.ok("record", "lab", "S001", "--date", "2025-03-01", "--anc", "1")
    doc = json.loads(pgf.ok("status", "S001", "--json").stdout)
    assert doc["signatures"][0]["valid"] is False and doc["signatures"][0]["invalidated_by"] == "S001#3"
    assert "invalidated by S001#3" in pgf.ok("status", "S001").stdout


def test_the_signature_listing_reads_only_signed_patients_and_equals_checking_everyone(sqlite_url: str) -> None:
    """``pgf audit signatures`` selects the signature events by topic and reads only those patients'
    streams (issue 18): the same rows, in the same order, as checking every registered patient."""
    from pgf_events.audit.signatures import signed_subjects

    app = TrialConduct.open(sqlite_url)
    for subject in ("S001", "S002", "S003", "S004"):
        enrolled(app, subject)
    sign(app, "S003", "review", user="dr.li")
    sign(app, "S001", "approval", user="dr.wang")
    app.record("lab", "S003", {"date": "2025-03-01", "anc": 0.4}, user=USER)
    sign(app, "S003", "review", user="dr.li")
    assert signed_subjects(app) == ["S001", "S003"]  # registration order, as before
    reference = [{"subject": s, **r} for s in app.subjects() for r in check_hashes(app, s)]  # the old path
    read: list[str] = []
    stream = app.stream
    app.stream = lambda subject: read.append(subject) or stream(subject)  # type: ignore[method-assign]
    directory = app.directory()
    listed = [{"subject": s, **r} for s in signed_subjects(app) for r in check_hashes(app, s, directory)]
    assert listed == reference and len(listed) == 3
    assert read == ["S001", "S003"]
    app.close()
    assert signed_subjects(TrialConduct.open("memory://")) == []
