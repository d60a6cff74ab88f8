"""``pgf import FILE|-``: JSON Lines, validated whole first, written atomically or not at all."""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import click
import orjson

from pgf_events.application import BatchRejected, Command
from pgf_events.cli._output import emit_json, output_options, progress
from pgf_events.cli.edit import parse_sets
from pgf_events.cli.import_digest import Digest
from pgf_events.domain.errors import PgfError, StoreError, ValidationError
from pgf_events.domain.imports import ImportBatch
from pgf_events.domain.kinds import KINDS
from pgf_events.domain.parsing import printable
from pgf_events.domain.rules.entry import history_free

MAX_ERRORS_SHOWN = 50
# A line is an object whose values may be an object ("set", "criterion") of lists at most: three
# levels. Anything deeper is refused before it can exhaust the parser's stack.
MAX_DEPTH = 3


def load_json(text: str) -> Any:
    """One JSON value, bounded: nesting depth, number size; every failure one ValidationError."""
    return _load(text)[0]


def _load(text: str) -> tuple[Any, bool]:
    """:func:`load_json`'s value, and whether orjson read it (then it holds only what orjson also writes:
    no NaN or infinity, no integer beyond 64 bits, no lone surrogate)."""
    try:
        obj = orjson.loads(text)  # fast; what it refuses (NaN, huge integers, errors) goes to json below
        native = True
    except orjson.JSONDecodeError:
        native = False
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValidationError(f"not valid JSON ({e.msg} at column {e.colno})") from None
        except RecursionError:
            raise ValidationError(f"the JSON is nested more than {MAX_DEPTH} levels deep") from None
        except ValueError:  # an integer of more than 4,300 digits (Python's int-to-str limit)
            raise ValidationError("the line holds a number too long to be a value") from None
    _check_depth(obj)
    return obj, native


def _check_depth(obj: Any) -> None:
    if type(obj) is dict:  # the usual line: an object of scalars (a quick pass, then no more)
        for value in obj.values():
            kind = type(value)
            if kind is dict or kind is list:
                break
        else:
            return
    level: list[Any] = [obj]
    for _ in range(MAX_DEPTH):
        level = [v for o in level if isinstance(o, (dict, list))
                 for v in (o.values() if isinstance(o, dict) else o)]
        if not level:
            return
    if any(isinstance(o, (dict, list)) for o in level):
        raise ValidationError(f"the JSON is nested more than {MAX_DEPTH} levels deep")


def parse_line(number: int, text: str) -> Command:
    """One JSON object -> a Command. Record lines: {"record": KIND, "subject": ..., options...};
    change lines: {"record": "correct"|"void", "ref": "S001#3", "set": {...}, "reason": ...}."""
    return _command(number, load_json(text))


def _command(number: int, obj: Any) -> Command:
    """:func:`parse_line` of a line read (``obj``, its own: its keys are taken out)."""
    if not isinstance(obj, dict):
        raise ValidationError("each line must be a JSON object")
    for action in ("correct", "void"):  # {"correct": "S001#3", ...} is accepted as a shorthand
        if action in obj and "record" not in obj:
            obj["record"], obj["ref"] = action, obj.pop(action)
    kind = obj.pop("record", None)
    source = obj.pop("source", None)
    deviation = obj.pop("deviation", None)
    key = obj.pop("key", None)
    if kind in ("correct", "void"):
        ref, reason, changes = obj.pop("ref", None), obj.pop("reason", None), obj.pop("set", None)
        if obj:
            raise ValidationError(f"a {kind} line has no key {', '.join(sorted(obj))}")
        if kind == "correct":
            if isinstance(changes, list):
                if not all(isinstance(pair, str) for pair in changes):
                    raise ValidationError('a correct line\'s "set" is {"FIELD": VALUE, ...} or ["FIELD=VALUE", ...]')
                changes = parse_sets(tuple(changes))
            if not isinstance(changes, dict) or not changes:
                raise ValidationError('a correct line needs "set": {"FIELD": VALUE, ...}')
        elif changes is not None:
            raise ValidationError('a void line takes no "set"')
        if key is not None:
            raise ValidationError(f'a {kind} line takes no "key" (a correction or void is never repeated by a retry)')
        return Command(kind, ref=ref or "", fields=changes or {}, reason=reason, source=source, line=number,
                       deviation=deviation)
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValidationError(
            f'"record" must be one of {", ".join(list(KINDS) + ["correct", "void"])}, not {kind!r}'
        )
    subject = obj.pop("subject", None)
    if subject is None:
        raise ValidationError('the line has no "subject"')
    fields = {k.replace("-", "_"): v for k, v in obj.items()}
    return Command("record", subject=subject, kind=kind, fields=fields, source=source, line=number,
                   deviation=deviation, key=key)


def command_line(command: Command) -> str:
    """The JSON Lines form of a command: the inverse of :func:`parse_line`."""
    if command.action in ("correct", "void"):
        obj: dict[str, Any] = {"record": command.action, "ref": command.ref}
        if command.action == "correct":
            obj["set"] = dict(command.fields)
        obj["reason"] = command.reason
    else:
        obj = {"record": command.kind, "subject": command.subject, **command.fields}
    for name in ("source", "deviation", "key"):
        if getattr(command, name) is not None:
            obj[name] = getattr(command, name)
    return json.dumps(obj, ensure_ascii=False, default=str)


def read_commands(lines: Any) -> tuple[list[Command], list[tuple[int | None, str]]]:
    commands: list[Command] = []
    errors: list[tuple[int | None, str]] = []
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            commands.append(parse_line(number, text))
        except PgfError as e:
            errors.append((number, str(e)))
    return commands, errors


def report_errors(errors: list[tuple[int | None, str]], total: int) -> None:
    for number, message in errors[:MAX_ERRORS_SHOWN]:
        click.echo(printable(f"line {number}: {message}"), err=True)
    if len(errors) > MAX_ERRORS_SHOWN:
        click.echo(f"... and {len(errors) - MAX_ERRORS_SHOWN} more failing lines", err=True)
    noun = "line" if total == 1 else "lines"
    raise click.ClickException(f"{len(errors)} of {total} {noun} failed; nothing was written")


class Scan:
    """The first look at an import file: its size (non-blank lines), its byte digest, and which patients
    some line needs whole and until which command (:class:`pgf_events.bulk_plan.Holding`).

    When every line is plainly a history-free record (``plain``: a JSON object whose ``"record"`` is a
    history-free kind, with no ``"key"``; a lab migration), no patient is needed whole and this pass
    parses no line: the import reads the file once (:meth:`commands`), computing the file's digest and
    collecting its parse errors as it goes (``digest``, ``errors``, known once the commands are read).
    Otherwise this pass parses every line, as it always did: the plan, the digest and the parse errors
    are known before the import starts. Either way the digest is the same (:func:`pgf_events.cli.import_digest.command_digest`)."""

    def __init__(self, file: Any, name: str):
        self.name = name
        self.total = 0
        self.errors: list[tuple[int | None, str]] = []
        self.whole: dict[str, int] = {}
        self.digest: str | None = None
        self._file = file
        self._copy: Any = None
        if not _seekable(file):  # standard input: kept in a temporary file for the second pass
            self._copy = tempfile.TemporaryFile()  # noqa: SIM115 - read again by commands()
        legacy = hashlib.sha256()
        self.plain = True
        for text in self._texts(legacy):
            self.total += 1
            if self.plain and not _plain_line(text):
                self.plain = False
        self.legacy_digest = legacy.hexdigest()  # how batches imported before issue 13 were keyed
        if not self.plain:
            self._plan()

    def _plan(self) -> None:
        from pgf_events.bulk_plan import Holding  # noqa: PLC0415

        holding = Holding()
        digest = Digest()
        for command, native in self._parsed():
            digest.add(command, native)
            holding.add(command)
        self.whole = holding.whole
        self.digest = digest.hexdigest()

    def _texts(self, legacy: Any = None) -> Iterator[str]:
        """The text of each non-blank line, stripped (its number: :attr:`number`), streamed."""
        source = self._file
        if legacy is None:
            source = self._copy if self._copy is not None else self._file
            source.seek(0)
        self.number = 0
        for index, raw in enumerate(source):
            if legacy is not None:
                legacy.update(raw)
                if self._copy is not None:
                    self._copy.write(raw)
            try:
                text = raw.decode("utf-8-sig" if index == 0 else "utf-8")
            except UnicodeDecodeError:
                raise ValidationError(f"{self.name} is not UTF-8 text") from None
            for line in text.splitlines() or [""]:
                self.number += 1
                line = line.strip()
                if line:
                    yield line

    def _commands(self) -> Iterator[Command]:
        """The file's parsable commands, read again; the parse errors are collected in :attr:`errors`."""
        return (command for command, _ in self._parsed())

    def _parsed(self) -> Iterator[tuple[Command, bool]]:
        """:meth:`_commands`, each with whether orjson read its line (:func:`_load`)."""
        self.errors = []
        for text in self._texts():
            try:
                obj, native = _load(text)
                yield _command(self.number, obj), native
            except PgfError as e:
                self.errors.append((self.number, str(e)))

    def commands(self) -> Iterator[Command]:
        """The file's parsable commands (read again for each attempt). On a ``plain`` file, the digest
        and the parse errors are computed as they are read: :attr:`digest` is set once every command
        was read, and only if no line failed to parse."""
        if not self.plain:
            return (c for c in self._commands())
        return self._digesting()

    def _digesting(self) -> Iterator[Command]:
        self.digest = None
        digest = Digest()
        for command, native in self._parsed():
            digest.add(command, native)
            yield command
        if not self.errors:
            self.digest = digest.hexdigest()


def _plain_line(text: str) -> bool:
    """Whether a line is plainly a record of a history-free kind with no idempotency key (then
    :func:`pgf_events.bulk_plan.needs_history` is None for it, or it fails to parse): read without checking it."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    if type(obj) is not dict:
        return False
    kind = obj.get("record")
    return type(kind) is str and kind in KINDS and history_free(kind) and obj.get("key") is None


def _seekable(file: Any) -> bool:
    try:
        return bool(file.seekable()) and file.name not in ("-", "<stdin>")
    except (AttributeError, OSError):
        return False


@click.command("import")
@click.argument("file", type=click.File("rb"))
@output_options()
@click.pass_obj
def import_(state: Any, file: Any, fmt: str | None) -> None:
    """Record a JSON Lines batch: all lines or, if any line fails, none.

    Each line is one record command: "record" names the kind, "subject" the patient, other keys
    are the options with _ for - (criterion and organ as objects); "correct"/"void" lines take
    "ref", "set" and "reason". Every failing line is reported with its number.

    \b
    Example:
      pgf import visits.jsonl
      echo '{"record":"lab","subject":"S001","date":"2025-03-01","anc":0.4,"plt":18}' | pgf import -
    """
    name = "standard input" if getattr(file, "name", "-") in ("-", "<stdin>") else str(file.name)
    scan = Scan(file, name)
    if scan.total == 0:
        raise ValidationError(f"{name} holds no records")
    app = state.app()
    with progress(scan.total, "Checking") as bar:
        try:
            outcome = import_scanned(app, scan, state.user, progress=bar.update, keep_refs=fmt == "json")
        except BatchRejected as rejected:
            report_errors(rejected.errors, scan.total)
    _done(outcome, scan, fmt)


def import_scanned(app: Any, scan: Scan, user: str, *, progress: Any = None, keep_refs: bool = True) -> Any:
    """Import a scanned file (:func:`pgf_events.bulk.import_stream`'s outcome), or raise BatchRejected
    with every failing line (its parse errors and the rest, in line order) and nothing written."""
    from pgf_events.bulk import import_stream  # noqa: PLC0415

    if scan.plain and scan.total > 1:
        # One pass: the digest is known, and checked against the batches already imported, at the end of
        # the pass, in the write transaction, before anything is committed.
        outcome = import_stream(app, scan.commands, progress=progress, keep_refs=keep_refs, total=scan.total,
                                whole={}, digest=lambda: scan.digest, file_name=scan.name, user=user,
                                legacy_digest=scan.legacy_digest)
        if not scan.errors:
            return outcome
        if progress:  # a line failed to parse: rolled back; checked again as below, knowing that
            progress(-scan.total)
    elif scan.plain:
        list(scan.commands())  # one line: its digest and parse error first
    options: dict[str, Any] = {"total": scan.total - len(scan.errors), "whole": scan.whole, "digest": scan.digest or "",
               "file_name": scan.name, "user": user, "legacy_digest": scan.legacy_digest}
    if scan.errors:
        # Still check the parsable lines, so every failure is reported in one pass.
        errors = list(scan.errors)
        try:
            import_stream(app, scan.commands, progress=progress, dry_run=True, **options)
        except BatchRejected as rejected:
            errors.extend(rejected.errors)
        except PgfError as e:  # one parsable line's error, raised as such (a one-command batch), or the store's
            first = None if isinstance(e, StoreError) else next(iter(scan.commands()), None)
            errors.append((first.line if first is not None else None, str(e)))
        errors.sort(key=lambda e: e[0] or 0)
        raise BatchRejected(errors)
    return import_stream(app, scan.commands, progress=progress, keep_refs=keep_refs, **options)


def _done(outcome: Any, scan: Scan, fmt: str | None) -> None:
    if isinstance(outcome, ImportBatch):
        short = (scan.digest or "")[:12]
        click.echo(
            f"already imported: this file (sha256 {short}) was imported by {outcome.recorded_by} "
            f"on {outcome.created_on:%Y-%m-%d %H:%M:%S}Z as {outcome.records} records; nothing written",
            err=True,
        )
        if fmt == "json":
            emit_json({"imported": 0, "already_imported": True, "digest": scan.digest, "records": outcome.records})
        return
    if isinstance(outcome, list):  # an in-memory store: saved by the unit of work
        refs, subjects = [r.ref for r in outcome], {r.subject for r in outcome}
        count, first, last = len(outcome), refs[0], refs[-1]
    else:
        refs, subjects = outcome.refs or [], outcome.seen
        count, first, last = outcome.count, outcome.first_ref, outcome.last_ref
    if fmt == "json":
        emit_json({"imported": count, "subjects": len(subjects), "digest": scan.digest, "refs": refs})
    else:
        click.echo(f"imported {count} records for {len(subjects)} patients")
    if sys.stderr.isatty():
        click.echo(f"first {first}, last {last}", err=True)
