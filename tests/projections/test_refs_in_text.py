"""The event references of a read-model row read off its JSON text are the walk's (``collect_refs``)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pgf_events.projections.slices import collect_refs
from pgf_events.projections.tables import json_text, refs_in_text

TEXT = st.text(alphabet=st.sampled_from('S0#12ab"\\ é\n:,[]{}'), max_size=8)  # escapes, JSON-like text
PLAIN = st.builds(lambda s, v: f"{s}#{v}", st.sampled_from(["S001", "S002", "T1", ""]), st.integers(0, 30))
REFISH = st.one_of(PLAIN, PLAIN, PLAIN, TEXT)
KEYS = st.sampled_from(["ref", "refs", "ref", "refs", "a", "b", "refs_x", "xref", 'r"ef', "ref\\"])
LEAVES = st.one_of(REFISH, REFISH, st.lists(PLAIN, max_size=3), st.lists(PLAIN, max_size=3), st.none(),
                   st.booleans(), st.integers(-5, 99), st.floats(allow_nan=False, allow_infinity=False))
DOCS = st.recursive(LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(KEYS, inner, max_size=4)), max_leaves=25)


@settings(max_examples=1500, deadline=None)
@given(st.dictionaries(KEYS, DOCS, max_size=5))
def test_refs_read_off_the_text_are_the_walks(doc: dict[str, Any]) -> None:
    assert refs_in_text(json_text(doc), doc) == collect_refs(doc)


def test_plain_rows_take_the_text_path_and_odd_ones_the_walk() -> None:
    plain = {"subject": "S001", "ref": "S001#3", "x": [{"refs": ["S001#10", "S001#2"]}, {"ref": "S001#2"}],
             "refs": []}
    assert refs_in_text(json_text(plain), None) == ["S001#2", "S001#3", "S001#10"]  # data unused: from the text
    odd = {"refs": [{"ref": "S001#4"}], "note": 'say "hi"'}
    assert refs_in_text(json_text(odd), odd) == collect_refs(odd) == ["{'ref': 'S001#4'}"]


PLAIN_DOCS = st.recursive(st.one_of(PLAIN, st.lists(PLAIN, max_size=3), st.none(), st.integers(0, 9)),
                          lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                  st.dictionaries(st.sampled_from(["ref", "refs", "a"]), inner,
                                                                  max_size=3)), max_leaves=20)


@settings(max_examples=800, deadline=None)
@given(st.dictionaries(st.sampled_from(["ref", "refs", "a", "b"]), PLAIN_DOCS, max_size=4))
def test_rows_of_plain_references_are_read_off_the_text(doc: dict[str, Any]) -> None:
    assert refs_in_text(json_text(doc), doc) == collect_refs(doc)
