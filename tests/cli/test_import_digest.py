"""The digest of an import file is fixed: an earlier import's batch is found by it, so re-importing the same
file must compute the same value, whichever way the file is read (pinned as the code of 2026-12-01 computed it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgf_events.cli.batch import Scan
from pgf_events.cli.import_digest import _orjson_canonical, command_digest
from pgf_events.domain.imports import canonical

# History-free records only (read once): a BOM, CRLF, a blank line, keys in any order, a subject to normalise,
# floats printed in exponent form by Python (1e-05, 1e+16, 2.5e-07) and small ones that are not (0.0001), -0.0,
# a large integer, text beyond ASCII, escaped control characters, quotes and backslashes, "-" in a key, a
# nested list and object (keys sorted), true and null.
PLAIN = (
    '\ufeff{"record": "lab", "subject": " p00001 ", "date": "2020-01-11", "anc": 1.36, "plt": 27, "hb": 106,'
    ' "source": "LIS"}\r\n'
    "\n"
    '{"subject":"P00002","record":"lab","date":"2020-01-11","anc":1e-05,"plt":6.1e7,"hb":-0.0,'
    '"source":"Pékin ✓ 🧪"}\n'
    '{"record": "vitals", "subject": "P00003", "date": "2020-01-12", "temp-c": 36.6, "weight_kg": 1e+16,'
    ' "note": "tab\\t \\u0001 \\u007f \\"q\\" \\\\ \\u2028"}\n'
    '{"record": "lab", "subject": "P00005", "date": "2020-01-13", "anc": 2.5e-7, "plt": 1e-4, "hb": 123456789012345678}\n'
    '{"record": "lab", "subject": "P00006", "date": "2020-01-13", "anc": [1, {"b": 2, "a": 1.5}], "zz": true,'
    ' "aa": null, "deviation": "late"}\n'
)
# Values only the json module reads (NaN, Infinity, an integer beyond 64 bits, a lone surrogate), with a
# history-free record that orjson reads.
ODD = (
    '{"record": "lab", "subject": "P00004", "date": "2020-01-13", "anc": 0.0001,'
    ' "plt": 123456789012345678901234567890, "hb": NaN}\n'
    '{"record": "lab", "subject": "P00006", "date": "2020-01-13", "anc": 2.5e-7, "plt": 18, "source": "x"}\n'
    '{"record": "lab", "subject": "P00005", "date": "2020-01-13", "anc": -Infinity, "plt": 18, "source": "\\ud800"}\n'
)
# Lines that need a patient's history (read twice: planned first), corrections in both forms and a void.
MIXED = (
    '{"record": "register", "subject": "S001", "site": "PKU", "birth_date": "1980-02-03", "sex": "F",'
    ' "weight_kg": 61, "transplant_date": "2025-01-10"}\n'
    '{"record": "screen", "subject": "S001", "date": "2025-02-20", "kps": 80, "criterion": {"IN1": "yes", "EX1": "no"}}\n'
    '{"record": "lab", "subject": "S001", "date": "2025-03-01", "anc": 0.4, "key": "k-1"}\n'
    '{"record": "correct", "ref": "S001#3", "set": {"anc": 0.45}, "reason": "re-read"}\n'
    '{"record": "correct", "ref": "S001#3", "set": ["anc=0.5", "plt-x=3"], "reason": "again"}\n'
    '{"void": "S001#2", "reason": "wrong day", "source": "CRF"}\n'
)


@pytest.mark.parametrize(("text", "digest"), [
    (PLAIN, "44facbfecf35be447bf4da921690d7b1855872e5033d8664e61bbfd2fc762015"),
    (ODD, "2671bbae2c946ec4c146f3a861d72272d27ae691c20d4c0c6a5cbb8f77b6eff5"),
    (ODD.splitlines(keepends=True)[0] + ODD.splitlines(keepends=True)[1],
     "aa7bb28f4e5beae274464e1ccf8231008e1a754067b5c49fd0070bb64bca1f3d"),
    (MIXED, "aa2882fe70b555003d1b88b5b674ae066e919fa676e4a6ab0a9e397f09b98924"),
], ids=["history-free", "json-module-values", "json-module-values-history-free", "mixed"])
def test_an_import_files_digest_is_what_earlier_imports_stored(tmp_path: Path, text: str, digest: str) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    with path.open("rb") as file:
        scan = Scan(file, str(path))
        commands = list(scan.commands())
    assert not scan.errors
    assert scan.digest == digest
    assert command_digest(commands) == digest


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(st.characters(exclude_categories=["Cs"])),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.floats(min_value=-1e-3, max_value=1e-3), st.sampled_from([1e-4, 1e-5, 1e16, -0.0, 0.0]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                      max_leaves=8)


@given(st.lists(values, max_size=9))
@settings(max_examples=500, deadline=None)
def test_orjson_prints_a_digest_item_as_the_json_module_does_or_declines(item: list[Any]) -> None:
    text = _orjson_canonical(item)
    assert text is None or text == canonical(item).encode("utf-8", "surrogatepass")


def test_orjson_declines_the_floats_it_prints_otherwise() -> None:
    assert _orjson_canonical(["lab", {"anc": 1e-05}]) is None and _orjson_canonical([2.5e-7]) is None
    assert _orjson_canonical(["lab", {"anc": 0.0001, "plt": 1e16}]) == b'["lab",{"anc":0.0001,"plt":1e+16}]'
