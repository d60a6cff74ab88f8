"""The first pass of ``pgf import`` (:mod:`pgf_events.bulk`): which patients some line needs whole
(:func:`needs_history`), and after which line each is done (:class:`Holding`), so the bulk path holds a
patient's aggregate only until the file's last line that touches it."""

from __future__ import annotations

from collections.abc import Iterable

from pgf_events.commands import Command, normalise_subject, parse_ref
from pgf_events.domain import kinds
from pgf_events.domain.errors import ValidationError
from pgf_events.domain.facts import history_free


def needs_history(command: Command) -> str | None:
    """The patient a command must load whole for (None: none, or a history-free record)."""
    try:
        if command.action == "record":
            if history_free(command.kind) and command.key is None and command.kind in kinds.KINDS:
                return None
            return normalise_subject(command.subject)
        return parse_ref(command.ref)[0]
    except ValidationError:
        return None


class Holding:
    """The first pass's plan: which patients some command needs whole (:func:`needs_history`), and
    after which command (its ordinal among the file's parsable commands, from 1) each is done."""

    def __init__(self) -> None:
        self._whole: set[str] = set()
        self._last: dict[str, int] = {}
        self.count = 0

    def add(self, command: Command) -> None:
        self.count += 1
        whole = needs_history(command)
        if whole is not None:
            self._whole.add(whole)
        subject = subject_of(command)
        if subject:
            self._last[subject] = self.count

    @property
    def whole(self) -> dict[str, int]:
        """Subject -> ordinal of the last command touching it, for the patients held whole."""
        return {s: self._last.get(s, self.count) for s in self._whole}

    @classmethod
    def of(cls, commands: Iterable[Command]) -> dict[str, int]:
        holding = cls()
        for command in commands:
            holding.add(command)
        return holding.whole


def subject_of(command: Command) -> str:
    """The patient a command touches ("": none it can name)."""
    try:
        return normalise_subject(command.subject) if command.action == "record" else parse_ref(command.ref)[0]
    except ValidationError:
        return ""
