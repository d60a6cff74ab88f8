"""Where a figure may be written: checked before any work, so a bad path is one ``Error:`` line.

No matplotlib here: the check runs before the (slow) import and before the derivation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pgf_events.audit.files import atomic_binary_file
from pgf_events.domain.errors import PgfError

FORMATS = (".png", ".pdf", ".svg")


def check_path(path: str) -> Path:
    """The figure's path, if it names a PNG, PDF or SVG file in a folder that exists and is writable."""
    p = Path(path)
    if p.suffix.lower() not in FORMATS:
        got = f"'{p.suffix}'" if p.suffix else "no extension"
        raise PgfError(f"cannot draw {path}: the file name must end in {', '.join(FORMATS)} (it has {got})")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise PgfError(f"cannot write {path}: the folder {folder} does not exist")
    if p.is_dir():
        raise PgfError(f"cannot write {path}: it is a folder")
    if not os.access(folder, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise PgfError(f"cannot write {path}: permission denied")
    return p


def save(fig: Any, path: str) -> None:
    """Write the figure whole or not at all, never through a symlink planted at ``path`` (issue 13);
    the format follows the extension. An OS error is one line."""
    try:
        with atomic_binary_file(path) as out:
            fig.savefig(out, dpi=120, format=Path(path).suffix.lower().lstrip("."))
    except OSError as e:
        raise PgfError(f"cannot write {path}: {e.strerror or e}") from None
