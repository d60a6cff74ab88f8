"""The domain: value objects, the Patient aggregate, and the clinical rules as pure functions.

Every event class is a frozen dataclass (the event library's metaclass applies
``dataclasses.dataclass(frozen=True)``), and the standard library makes each class's ``__init__``,
``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__`` and ``__delattr__`` by compiling a text:
366 compilations when ``pgf status`` loads the aggregates. 198 of them repeat a text already
compiled (a text depends only on the field names: the Patient's fourteen record events share
theirs), so the package makes ``dataclasses`` compile each distinct text once per process
(:func:`_exec_once`) and run the same code object for the next class: the functions made are those
the text makes (the same flags, name and code; each class still gets its own functions, bound to its
own fields' types and defaults). ~110 M of ``pgf status``'s ~950 M instructions (issue 18).
"""

from __future__ import annotations

import builtins
import dataclasses
from types import CodeType
from typing import Any

_COMPILED: dict[str, CodeType] = {}


def _exec_once(source: Any, globals: Any = None, locals: Any = None, /) -> None:  # noqa: A002 - exec's own names
    """``exec`` as ``dataclasses`` calls it, each distinct source text compiled once.

    ``dont_inherit``: compiled with no ``__future__`` flags, as ``exec`` compiles a text for the
    ``dataclasses`` module (which has none), not with this module's ``annotations``.
    """
    if type(source) is str:
        code = _COMPILED.get(source)
        if code is None:
            code = _COMPILED[source] = compile(source, "<string>", "exec", dont_inherit=True)
        source = code
    builtins.exec(source, globals, locals)  # noqa: S102 - the dataclass's own generated text, as before


if "exec" not in vars(dataclasses):  # once, and only over the builtin the module would call
    setattr(dataclasses, "exec", _exec_once)  # noqa: B010 - a module attribute mypy does not know
