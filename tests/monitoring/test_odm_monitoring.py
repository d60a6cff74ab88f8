"""Queries, SDV and freezes in the ODM export: Annotations that the ODM 1.3.2 schema and odmlib accept."""

from __future__ import annotations

import io
from typing import Any

from pgf_events.application import TrialConduct
from pgf_events.audit.odm import NS
from pgf_events.monitoring import answer_query, close_query, freeze, open_query, verify_source
from tests.exports.test_odm import export, odmlib_checks, schema  # noqa: F401 - the schema fixture
from tests.helpers import USER, enrolled


def test_monitoring_is_exported_as_odm_annotations(app: TrialConduct, schema: Any) -> None:  # noqa: F811
    enrolled(app)
    lab = app.record("lab", "S001", {"date": "2025-03-01", "anc": 0.4, "plt": 18}, user=USER).ref
    qid = open_query(app, lab, "PLT 18? the report says 81", user="cra.chen", field="plt")
    answer_query(app, qid, "checked: 18 is right", user=USER)
    close_query(app, qid, None, user="cra.chen")
    verify_source(app, ["S001#2", lab], user="cra.chen")
    freeze(app, "S001", "reviewed", user="dm.wu")
    text, root = export(app)
    schema.validate(io.StringIO(text))
    odmlib_checks(text)
    comments = [c.text for c in root.iter(f"{{{NS}}}Comment")]
    assert comments[:3] == [f"query {qid} [open]: query on {lab}.plt: PLT 18? the report says 81",
                            f"query {qid} [answered]: answered: checked: 18 is right", f"query {qid} [closed]: closed"]
    assert comments[3:] == ["source data verified by cra.chen"] * 2 + ["frozen: reviewed"]
    users = {u.find("odm:LoginName", {"odm": NS}).text for u in root.iter(f"{{{NS}}}User")}  # type: ignore[union-attr]
    assert {"cra.chen", "dm.wu"} <= users
