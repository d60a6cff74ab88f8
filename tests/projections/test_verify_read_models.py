"""Attack: edit a read-model row behind the engine's back. ``pgf projections verify`` and ``pgf audit
verify --deep`` catch it on both backends; reports and serve say when the read models were last verified."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pgf_events.projections.verify import first_difference
from tests.audit.attacker import Attacker
from tests.conftest import Pgf


class RowEditor(Attacker):
    """An attacker with write access to the read-model tables (as any reader process has)."""

    def view(self, name: str) -> str:
        return f"pgf_view_{name}" if self.sqlite else f'"{self.config.schema}".pgf_view_{name}'

    def row(self, name: str, subject: str) -> dict[str, Any]:
        data = self.sql(f"SELECT data FROM {self.view(name)} WHERE subject = ?", (subject,))[0][0]
        return json.loads(data) if isinstance(data, str | bytes) else data

    def set_row(self, name: str, subject: str, data: dict[str, Any]) -> None:
        value = "?" if self.sqlite else "CAST(? AS json)"
        self.sql(f"UPDATE {self.view(name)} SET data = {value} WHERE subject = ?", (json.dumps(data), subject))


@pytest.fixture
def demo_any(pgf_any: Pgf) -> Pgf:
    pgf_any.ok("demo", "--patients", "6", "--seed", "3")
    return pgf_any


def _os_1y(pgf: Pgf) -> dict[str, Any]:
    return json.loads(pgf.ok("report", "survival", "--json").stdout)["summary"]["os_1y"]


def _kill(editor: RowEditor, subject: str) -> None:
    """Make the survival row say the patient died on day 30 (it does not in the log)."""
    data = editor.row("survival", subject)
    data["alive"], data["death_date"] = False, "2024-06-01"
    data["survival"]["os"] = {**data["survival"]["os"], "time": 30, "status": 1}
    editor.set_row("survival", subject, data)


def test_intact_read_models_verify_and_the_result_is_recorded(demo_any: Pgf) -> None:
    before = json.loads(demo_any.ok("report", "survival", "--json").stdout)
    assert before["read_models_verified"] is None
    assert "never verified" in demo_any.ok("report", "survival").stderr
    out = demo_any.ok("projections", "verify").stdout
    assert out.startswith("read models intact: 7 projection(s)")
    doc = json.loads(demo_any.ok("projections", "verify", "survival", "--json").stdout)
    assert doc["ok"] and doc["projections"] == ["survival"] and doc["first_difference"] is None
    verified = json.loads(demo_any.ok("report", "survival", "--json").stdout)["read_models_verified"]
    assert verified["ok"] is True and verified["projections"] == ["survival"]
    assert verified["checked_by"] == demo_any.user and verified["position"] == doc["position"]
    assert "intact" in demo_any.ok("report", "endpoints").stderr
    deep = json.loads(demo_any.ok("audit", "verify", "--deep", "--json").stdout)
    assert deep["ok"] and deep["read_models"]["ok"] and deep["read_models"]["rows"] > 0


def test_an_edited_survival_row_changes_the_1y_os_and_is_caught(demo_any: Pgf) -> None:
    intact = _os_1y(demo_any)
    editor = RowEditor(demo_any.url)
    try:
        _kill(editor, "S002")
    finally:
        editor.close()
    assert _os_1y(demo_any)["estimate"] < intact["estimate"]  # the attack works on the report...
    demo_any.ok("audit", "verify")  # ...and the chain alone cannot see it
    result = demo_any("projections", "verify")
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert line.startswith("Error: read model survival differs from the event log at subject S002: "), line
    assert "in the table but" in line and len(result.stderr.strip().splitlines()) == 1
    deep = demo_any("audit", "verify", "--deep")
    assert deep.exit_code == 1 and "read model survival differs" in deep.stderr and "S002" in deep.stderr
    doc = json.loads(demo_any("audit", "verify", "--deep", "--json").stdout)
    assert doc["ok"] is True and doc["read_models"]["ok"] is False  # the chain is intact, the read model not
    assert doc["read_models"]["first_difference"]["subject"] == "S002"
    demo_any.ok("projections", "verify", "dosing")  # the other read models are intact
    report = demo_any.ok("report", "survival")
    assert "DIFFERED" in report.stderr  # the report says its tables failed their last check
    demo_any.ok("projections", "rebuild", "survival")  # the explicit repair
    demo_any.ok("projections", "verify")
    assert _os_1y(demo_any) == intact


def test_an_inserted_or_deleted_row_is_caught(demo_any: Pgf) -> None:
    editor = RowEditor(demo_any.url)
    try:
        editor.sql(f"DELETE FROM {editor.view('endpoints')} WHERE subject = ?", ("S003",))
    finally:
        editor.close()
    result = demo_any("projections", "verify")
    assert result.exit_code == 1 and "read model endpoints differs" in result.stderr and "S003" in result.stderr
    assert "no row for this subject" in result.stderr


def test_verify_never_repairs(demo_any: Pgf) -> None:
    editor = RowEditor(demo_any.url)
    try:
        _kill(editor, "S001")
        edited = editor.row("survival", "S001")
        assert demo_any("projections", "verify").exit_code == 1
        assert demo_any("audit", "verify", "--deep").exit_code == 1
        assert editor.row("survival", "S001") == edited
    finally:
        editor.close()


def test_first_difference_names_the_key_path() -> None:
    assert first_difference({"a": {"b": [1, 2]}}, {"a": {"b": [1, 2]}}) is None
    assert first_difference({"a": {"b": [1, 3]}}, {"a": {"b": [1, 2]}}) == "a.b[1] is 3 in the table but 2 replayed from the log"
    assert first_difference({"a": 1}, {"a": 1, "c": 2}) == "c is missing from the table"


def test_in_an_encrypted_store_a_sealed_row_copied_over_another_is_caught(pgf_any: Pgf,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from pgf_events.cli import cli

    monkeypatch.setenv("PGF_CIPHER_KEY", CliRunner().invoke(cli, ["keygen"]).stdout.strip())
    pgf_any.ok("demo", "--patients", "4", "--seed", "3")
    pgf_any.ok("projections", "verify")
    editor = RowEditor(pgf_any.url)
    try:  # no key needed: copy one subject's sealed survival row over another's
        rows = editor.sql(f"SELECT subject, data FROM {editor.view('survival')} ORDER BY subject")
        assert all("sealed" in (r[1] if isinstance(r[1], dict) else json.loads(r[1])) for r in rows)
        value = "?" if editor.sqlite else "CAST(? AS json)"
        data = rows[0][1] if isinstance(rows[0][1], str) else json.dumps(rows[0][1])
        editor.sql(f"UPDATE {editor.view('survival')} SET data = {value} WHERE subject = ?", (data, rows[1][0]))
    finally:
        editor.close()
    result = pgf_any("projections", "verify")
    assert result.exit_code == 1 and "read model survival differs from the event log at subject " in result.stderr


def test_an_edited_worklist_row_is_caught(demo_any: Pgf) -> None:
    """The worklist's read model (per stream, not a report) is verified in the same replay."""
    demo_any.ok("query", "open", "S003#1", "--text", "birth date?")
    out = demo_any.ok("projections", "verify").stdout  # makes and catches up the worklist model
    assert out.startswith("read models intact: 7 projection(s) and 3 stream model(s)")
    doc = json.loads(demo_any.ok("projections", "verify", "worklist", "--json").stdout)
    assert doc["ok"] and doc["projections"] == [] and doc["models"] == ["worklist"] and doc["rows"] >= 7
    editor = RowEditor(demo_any.url)
    where = f"{editor.view('worklist')} WHERE subject = ? AND kind = ?"
    try:  # S002's casebook turns signed (or unsigned): its signature item leaves (or joins) the worklist
        data = editor.sql(f"SELECT data FROM {where}", ("S002", "patient"))[0][0]
        inputs = json.loads(data) if isinstance(data, str | bytes) else data
        inputs["signed"] = not inputs["signed"]
        value = "?" if editor.sqlite else "CAST(? AS json)"
        editor.sql(f"UPDATE {editor.view('worklist')} SET data = {value} WHERE subject = ? AND kind = ?",
                   (json.dumps(inputs), "S002", "patient"))
    finally:
        editor.close()
    demo_any.ok("projections", "verify", "survival")  # the projections are intact
    for args in (["projections", "verify"], ["projections", "verify", "worklist"], ["audit", "verify", "--deep"]):
        result = demo_any(*args)
        assert result.exit_code == 1, args
        assert "read model worklist differs from the event log at subject S002: patient row: signed is" in result.stderr
    demo_any.ok("projections", "rebuild")  # the explicit repair
    demo_any.ok("projections", "verify")
    editor = RowEditor(demo_any.url)
    try:
        editor.sql(f"UPDATE {editor.view('worklist')} SET position = position - 1 WHERE subject = ? AND kind = ?",
                   ("S003", "queries"))
        result = demo_any("projections", "verify", "worklist")
        assert result.exit_code == 1 and "at subject S003: queries row: it says stream version" in result.stderr
        editor.sql(f"DELETE FROM {where}", ("S003", "queries"))
        result = demo_any("projections", "verify", "worklist")
        assert result.exit_code == 1 and "S003: the table has no queries row for this subject" in result.stderr
    finally:
        editor.close()
