"""``pgf due`` on hand-computed schedules: a missed dose, an overdue lab, an SAE clock, queries."""

from __future__ import annotations

import json
from pathlib import Path

from tests.audit.keys import CliSigner
from tests.conftest import Pgf, enrol_via_cli

LAB = ["--anc", "0.4", "--plt", "18", "--hb", "72"]


def _due(pgf: Pgf, *args: str) -> list[dict]:
    return json.loads(pgf.ok("due", "--json", *args).stdout)["items"]


def _setup(pgf: Pgf) -> None:
    enrol_via_cli(pgf)  # enrolled 2025-02-24
    pgf.ok("record", "infusion", "S001", "--date", "2025-02-25", "--cells", "6.1e7", "--weight-kg", "61")  # D1
    pgf.ok("record", "lab", "S001", "--date", "2025-03-01", *LAB)
    pgf.ok("record", "lab", "S001", "--date", "2025-03-05", *LAB)
    # related and not known to be expected: a SUSAR, regulator report due 15 days after awareness
    pgf.ok("record", "ae", "S001", "--onset", "2025-03-03", "--term", "Sepsis", "--grade", "3",
           "--serious", "hospitalisation", "--related", "possible", "--aware", "2025-03-03T10:00")


def test_due_lists_the_missed_dose_the_overdue_labs_and_the_running_sae_clock(pgf: Pgf) -> None:
    _setup(pgf)
    items = _due(pgf, "--on", "2025-03-08")
    by = {(i["what"], i.get("dose")): i for i in items}
    # dose 2: target D1 + 7 = 2025-03-04, window ±2 closed on 2025-03-06 without an infusion
    missed = by[("dose", 2)]
    assert missed["status"] == "overdue" and missed["target"] == "2025-03-04" and missed["closes"] == "2025-03-06"
    # dose 3: target 2025-03-11, window 2025-03-09..2025-03-13, not open yet
    nxt = by[("dose", 3)]
    assert (nxt["status"], nxt["opens"], nxt["target"], nxt["closes"]) == (
        "upcoming", "2025-03-09", "2025-03-11", "2025-03-13")
    # labs: MSC day 12, two counts a week to D57; 2025-03-02..08 holds one count (03-05)
    labs = by[("labs", None)]
    assert labs["status"] == "overdue" and labs["msc_day"] == 12 and "1 blood count(s)" in labs["detail"]
    # SAE: the regulator clock runs 15 days from awareness (10:00 at site PKU, UTC+8: 02:00 UTC)
    sae = by[("sae", None)]
    assert sae["status"] == "due" and sae["due"] == "2025-03-18T02:00:00Z" and "regulator" in sae["detail"]
    assert by[("signature", None)]["status"] == "unsigned"
    assert [i["status"] for i in items] == sorted((i["status"] for i in items),
                                                   key=["overdue", "due", "open", "upcoming", "unsigned"].index)


def test_due_later_finds_the_clock_overdue_and_the_open_query(pgf: Pgf, tmp_path: Path) -> None:
    _setup(pgf)
    pgf.ok("record", "infusion", "S001", "--date", "2025-03-04", "--cells", "6.1e7", "--weight-kg", "61")
    pgf.ok("record", "lab", "S001", "--date", "2025-03-07", *LAB)
    qid = pgf.ok("query", "open", "S001#6", "--text", "Hb unit?").stdout.strip()
    items = _due(pgf, "--on", "2025-03-08")
    assert not [i for i in items if i["what"] == "labs"]  # 03-05 and 03-07: two counts this week
    assert [i["dose"] for i in items if i["what"] == "dose"] == [3]  # dose 2 given on target
    queries = {i["qid"]: i["detail"] for i in items if i["what"] == "query"}
    assert qid in queries and any("expectedness" in d for d in queries.values())  # the edit check's too
    late = _due(pgf, "--on", "2025-03-20")
    assert [i["status"] for i in late if i["what"] == "sae"] == ["overdue"]
    CliSigner(pgf, tmp_path, "dr.li").sign("S001", "--meaning", "review")
    assert not [i for i in _due(pgf, "--on", "2025-03-08") if i["what"] == "signature"]


def test_due_table_fits_100_columns_and_filters_by_site(pgf: Pgf) -> None:
    _setup(pgf)
    table = pgf.ok("due", "--on", "2025-03-08").stdout
    assert max(len(line) for line in table.splitlines()) <= 100
    assert "overdue" in table and "S001" in table
    assert pgf.ok("due", "--site", "XQ", "--on", "2025-03-08").stdout.startswith("nothing due")
    pgf.rejected("due", "--on", "tomorrow", contains="--on")
