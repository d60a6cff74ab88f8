"""A bulk import asks malloc to keep the heap's top (:func:`pgf_events.gc_tuning.roomy_heap`): each chunk
written frees what it held, and the next lines would otherwise grow the heap again page fault by page fault."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pgf_events import bulk
from pgf_events.application import Command, TrialConduct
from pgf_events.audit.recorders_sqlite import ChainedSQLiteRecorder
from pgf_events.bulk import import_stream
from pgf_events.bulk_plan import Holding
from pgf_events.store import parse_url
from tests.conftest import NOW

HEAP = """
import ctypes, sys
from pgf_events.gc_tuning import roomy_heap

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "pad":
    roomy_heap()
blocks = [bytearray(4000) for _ in range(5000)]  # 20 MB from the heap (each below the mmap threshold)
del blocks
print(libc.mallinfo2().arena)
"""


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="glibc 2.33 or later only")
def test_memory_freed_at_the_heaps_top_stays_with_the_process(tmp_path: Path) -> None:
    def heap_after_freeing(how: str) -> int:
        out = subprocess.run([sys.executable, "-c", HEAP, how], capture_output=True, text=True, check=True)
        return int(out.stdout)

    assert heap_after_freeing("pad") >= 20 << 20  # kept
    assert heap_after_freeing("default") < 10 << 20  # given back (the import's lines would fault it in again)


def test_a_bulk_import_asks_before_its_writer_is_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    monkeypatch.setattr(bulk, "roomy_heap", lambda: order.append("pad"))
    started = ChainedSQLiteRecorder.bulk

    @contextmanager
    def bulk_write(self: Any) -> Any:
        order.append("bulk")
        with started(self) as insert:
            yield insert

    monkeypatch.setattr(ChainedSQLiteRecorder, "bulk", bulk_write)
    app = TrialConduct(parse_url(f"sqlite:///{tmp_path}/s.db", cipher_key=""), clock=lambda: NOW)
    commands = [Command("record", subject="S1", kind="register", fields={
        "site": "PKU", "birth_date": "1980-02-03", "sex": "F", "weight_kg": 61, "transplant_date": "2025-01-10",
        "date": "2025-02-15"}), Command("record", subject="S1", kind="lab", fields={"date": "2025-03-01", "anc": 1.0})]
    unit = import_stream(app, lambda: iter(commands), total=2, whole=Holding.of(commands), digest="d",
                         file_name="f.jsonl", user="coordinator1")
    assert unit.refs == ["S1#1", "S1#2"]
    assert order == ["pad", "bulk"]
