"""The digest of an import file: what its commands mean, so that re-importing the same file is known
(an earlier batch is found by it). It must stay byte for byte what earlier imports stored
(``tests/cli/test_import_digest.py`` pins fixed files' digests)."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from pgf_events.application import Command
from pgf_events.domain.imports import canonical, fingerprint


def command_digest(commands: list[Command]) -> str:
    """SHA-256 of what the commands mean: the same records in the same order give the same digest,
    whatever the line endings, blank lines, key order or JSON whitespace of the file. (:class:`pgf_events.cli.batch.Scan`
    computes the same digest as it streams.)"""
    return fingerprint([_digest_item(c) for c in commands])


def _digest_item(c: Command) -> list[Any]:
    return [c.action, c.subject.strip().upper() if isinstance(c.subject, str) else c.subject, c.kind, c.fields,
            c.ref, c.reason, c.source, c.deviation, c.key]


class Digest:
    """:func:`command_digest`, computed as the commands stream by."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256(b"[")
        self._count = 0

    def add(self, command: Command, native: bool = False) -> None:
        """``native``: the command's line was read by orjson (:func:`pgf_events.cli.batch._load`); then orjson may print its item."""
        self._count += 1
        if self._count > 1:
            self._hash.update(b",")
        item = _digest_item(command)
        text = _orjson_canonical(item) if native else None
        self._hash.update(text if text is not None else canonical(item).encode("utf-8", "surrogatepass"))

    def hexdigest(self) -> str:
        self._hash.update(b"]")
        return self._hash.hexdigest()


def _orjson_canonical(item: list[Any]) -> bytes | None:
    """:func:`canonical`'s bytes for a digest item of a line orjson read, printed by orjson (sorted keys; its
    separators, numbers and string escapes are the json module's for such values: no NaN or infinity, integers
    within 64 bits, no lone surrogate), or None where they may differ: a float below 1e-4 in magnitude (json
    prints 1e-05, orjson 0.00001; orjson prints every such float with "e-" or "0.0000", so a text holding
    neither has none) or a value orjson does not write."""
    try:
        text = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return None
    if b"e-" in text or b"0.0000" in text:
        return None
    return text
