"""Commands that keep their option parser between invocations (``pgf shell``, ``pgf daemon``) parse
and refuse exactly as a command that builds it each time, and never answer from a parser that no
longer matches the command or its context."""

from __future__ import annotations

import click
from click.testing import CliRunner

from pgf_events.cli._parsing import KeptParserCommand


def _command(cls: type[click.Command]) -> click.Command:
    @click.command(cls=cls)
    @click.argument("subject")
    @click.option("--anc", type=float)
    @click.option("--flag", is_flag=True)
    def lab(subject: str, anc: float | None, flag: bool) -> None:
        click.echo(f"{subject} {anc} {flag}")

    return lab


LINES = [["S001", "--anc", "0.4"], ["S002", "--flag"], ["S003", "--anc", "x"], ["S004", "--bogus"], [],
         ["S005", "--anc"], ["--help"], ["S006", "--anc=1.5", "--flag"], ["S007", "extra"]]


def test_a_kept_parser_parses_and_refuses_each_line_as_a_new_one_does() -> None:
    kept, plain = _command(KeptParserCommand), _command(click.Command)
    runner = CliRunner()
    for _ in range(2):  # the second round parses with the parsers kept by the first
        for args in LINES:
            a, b = runner.invoke(kept, args), runner.invoke(plain, args)
            assert (a.exit_code, a.output) == (b.exit_code, b.output), args


def test_a_parameter_added_later_or_other_help_names_give_a_new_parser() -> None:
    runner = CliRunner()
    seen = []
    for cls in (KeptParserCommand, click.Command):
        command = _command(cls)
        out = [runner.invoke(command, ["S001", "--anc", "1"]).output,
               runner.invoke(command, ["S001", "--site", "PKU"]).exit_code]
        command.params.append(click.Option(["--site"]))
        command.callback = lambda subject, anc, flag, site: click.echo(f"{subject} {site}")
        out.append(runner.invoke(command, ["S001", "--site", "PKU"]).output)
        short = click.Context(command, info_name="lab", help_option_names=["-x", "--help"])
        out.append(sorted(command.make_parser(short)._long_opt))
        out.append(runner.invoke(command, ["-x"]).exit_code)
        seen.append(out)
    assert seen[0] == seen[1]
    assert seen[0][:3] == ["S001 1.0 False\n", 2, "S001 PKU\n"]


def test_each_invocation_gets_a_parser_bound_to_its_own_context() -> None:
    command = _command(KeptParserCommand)
    first, second = click.Context(command, info_name="a"), click.Context(command, info_name="b")
    p1, p2 = command.make_parser(first), command.make_parser(second)
    assert p1 is not p2 and p1.ctx is first and p2.ctx is second
    assert p1._long_opt is p2._long_opt  # the option tables are shared, read-only while parsing
