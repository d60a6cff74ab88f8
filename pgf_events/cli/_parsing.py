"""Click commands that build their option parser once, not at every invocation.

Click rebuilds a command's parameter list (checking it for duplicate options each time) and its
option parser whenever the command runs. A ``pgf`` process runs one command, but ``pgf shell`` and
``pgf daemon`` run the same few (``record lab``...) at every line: there that rebuilding was a
tenth of a record's time. The parser made for a context is kept and each invocation gets a shallow
copy bound to its own context (parsing keeps its state per call, so copies share the option tables
safely). What the parser depends on is the key: the parameters (objects, in order), the context's
help option names and token normaliser, and whether it allows interspersed arguments and ignores
unknown options; anything else gets a new parser.
"""

from __future__ import annotations

import copy
from typing import Any

import click


class KeptParser(click.Command):
    """A command whose parameter list and option parser are built once per kind of context."""

    _kept_params: tuple[Any, list[click.Parameter]] | None = None
    _kept_parser: tuple[Any, Any] | None = None

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        key = (tuple(self.params), tuple(ctx.help_option_names), self.add_help_option)
        kept = self._kept_params
        if kept is None or kept[0] != key:
            kept = self._kept_params = (key, super().get_params(ctx))
        return list(kept[1])

    def make_parser(self, ctx: click.Context) -> Any:
        key = (tuple(self.params), tuple(ctx.help_option_names), self.add_help_option, ctx.token_normalize_func,
               ctx.allow_interspersed_args, ctx.ignore_unknown_options)
        kept = self._kept_parser
        if kept is None or kept[0] != key:
            kept = self._kept_parser = (key, super().make_parser(ctx))
        parser = copy.copy(kept[1])
        parser.ctx = ctx
        return parser


class KeptParserCommand(KeptParser):
    """A :class:`click.Command` that keeps its parser (see the module docstring)."""


class KeptParserGroup(KeptParser, click.Group):
    """A :class:`click.Group` that keeps its parser (see the module docstring)."""
