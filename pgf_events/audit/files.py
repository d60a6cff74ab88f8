"""Export files written safely: whole or not at all, and never through a link someone else planted.

Each file is written to a new temporary file created exclusively (``O_EXCL``: it never opens an
existing name, so never follows a symlink) in the target's own folder, flushed to disk, then
renamed over the target. A rename replaces a symlink at the target name with the file itself; the
link's target is never opened or overwritten. A reader sees the old file or the new one, never a
half-written one, and a failed export leaves no partial file behind.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any, Self

from pgf_events.domain.errors import ValidationError


@contextmanager
def atomic_text_file(path: str | Path) -> Iterator[IO[str]]:
    """A text file at ``path`` (``-`` is stdout), replaced atomically when the block ends without error."""
    if str(path) == "-":
        yield sys.stdout
        return
    with ExitStack() as stack:
        files = AtomicFiles(Path(path).parent)
        out = stack.enter_context(files)
        yield out.open(Path(path).name)


@contextmanager
def atomic_binary_file(path: str | Path) -> Iterator[IO[bytes]]:
    """A binary file at ``path`` (a plot, say), replaced atomically when the block ends without error."""
    with AtomicFiles(Path(path).parent) as files:
        yield files.open_binary(Path(path).name)


class AtomicFiles:
    """Several files in one folder, each written to a temporary file and all renamed at the end."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._open: list[tuple[IO[Any], str, Path]] = []

    def __enter__(self) -> Self:
        if not self.directory.is_dir():
            raise ValidationError(f"the folder {self.directory} does not exist")
        return self

    def open(self, name: str) -> IO[str]:
        fd, temp, target = self._create(name)
        f = os.fdopen(fd, "w", encoding="utf-8", newline="")
        self._open.append((f, temp, target))
        return f

    def open_binary(self, name: str) -> IO[bytes]:
        fd, temp, target = self._create(name)
        f = os.fdopen(fd, "wb")
        self._open.append((f, temp, target))
        return f

    def _create(self, name: str) -> tuple[int, str, Path]:
        target = self.directory / name
        if target.is_dir() and not target.is_symlink():
            raise ValidationError(f"{target} is a folder, not a file")
        fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=self.directory)
        return fd, temp, target

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            for f, _, _ in self._open:
                if exc_type is None:
                    f.flush()
                    os.fsync(f.fileno())
                f.close()
            if exc_type is None:
                for _, temp, target in self._open:
                    os.replace(temp, target)
        finally:
            for _, temp, _ in self._open:
                if os.path.lexists(temp):
                    os.unlink(temp)
