"""``pgf audit ...`` (chain verification, checkpoints, exception reports) and ``pgf db grants``."""

from __future__ import annotations

import json
from typing import Any

import click

from pgf_events.cli._output import emit_json, output_options, progress, render
from pgf_events.cli.keys import key_option
from pgf_events.domain.errors import PgfError, StoreError, ValidationError


class ChainBroken(PgfError):
    """``pgf audit verify`` found the first broken event."""


@click.group()
def audit() -> None:
    """Check the record is complete and unaltered; list entries an auditor should look at.

    \b
    Example:
      pgf audit verify
      pgf audit checkpoint --append-to /secure/pgf-checkpoints.jsonl
      pgf audit exceptions --csv
    """


@audit.command()
@click.option("--checkpoint", "checkpoint_text", metavar="FILE",
              help="Also check every signed statement in FILE (from 'pgf audit checkpoint --append-to FILE'): "
                   "its signature, and that the log still extends it. An old short digest is accepted too.")
@click.option("--deep", is_flag=True,
              help="Also replay the log and compare it with the read-model tables (pgf projections verify).")
@output_options()
@click.pass_obj
def verify(state: Any, checkpoint_text: str | None, deep: bool, fmt: str | None) -> None:
    """Recompute the tamper-evident chain over every stored event.

    Exit 0 with a summary when intact; exit 1 naming the first broken event (subject and
    reference) when anything was modified, deleted, inserted, reordered or truncated, or naming
    the first checkpoint statement that is forged or that the log no longer extends.

    \b
    Example:
      pgf audit verify
      pgf audit verify --checkpoint /secure/pgf-checkpoints.jsonl --json
      pgf audit verify --deep
    """
    import attrs  # noqa: PLC0415

    from pgf_events.audit.chain import Checkpoint  # noqa: PLC0415
    from pgf_events.audit.verify import chain_reader, check_ciphertexts, describe_break  # noqa: PLC0415
    from pgf_events.audit.verify import verify as run  # noqa: PLC0415

    checkpoint, statements = None, None
    if checkpoint_text is not None:
        statements = _statements(checkpoint_text)
        if statements is None:
            try:
                checkpoint = Checkpoint.parse(checkpoint_text)
            except ValueError as e:
                raise click.BadParameter(f"{checkpoint_text!r} is neither a readable file of signed checkpoint "
                                         f"statements nor a digest: {e}", param_hint="--checkpoint") from None
    app = state.app(must_exist=True)
    reader = chain_reader(app)
    with progress(reader.max_position(), "verifying") as bar:
        result = run(reader, checkpoint, progress=bar.update)
    if result.ok:
        misplaced = check_ciphertexts(app)
        if misplaced is not None:
            result = attrs.evolve(result, broken=misplaced)
    summary: dict[str, Any] = {
        "ok": result.ok,
        "events": result.events,
        "head": {
            "position": result.head.position, "hash": result.head.hash.hex(),
            "checkpoint": str(Checkpoint.of(result.head.position, result.head.hash)),
        } if result.head and result.head.position else None,
        "last_position": result.last_position,
        "backfilled_links": result.backfilled,
        "seconds": round(result.seconds, 3),
        "events_per_second": round(result.events_per_second),
        "checkpoint": {"digest": str(checkpoint), "extended": result.ok} if checkpoint else None,
        "first_broken": describe_break(app, result.broken) if result.broken else None,
    }
    checked = None
    if statements is not None:  # only then: signed statements need the Ed25519 library (milliseconds to load)
        from pgf_events.audit import checkpoints  # noqa: PLC0415

        checked = checkpoints.check(app, reader, result, statements)
    if checked is not None:
        summary["statements"] = [c.as_json() for c in checked]
    failed = next((c for c in checked or [] if not c.ok), None)
    models = None
    if deep:
        from pgf_events.cli.projections import open_store, stream_models  # noqa: PLC0415
        from pgf_events.projections.verify import verify_read_models  # noqa: PLC0415

        models = verify_read_models(open_store(state), models=stream_models(), checked_by=state.acting_user())
        summary["read_models"] = models.as_json()
    if fmt == "json":
        emit_json(summary)
    elif result.ok:
        head = summary["head"]["checkpoint"] if summary["head"] else "none (empty store)"
        click.echo(f"chain intact: {result.events} events, head {head}")
        click.echo(f"verified in {result.seconds:.2f} s ({summary['events_per_second']} events/s)")
        if checkpoint:
            click.echo(f"the log extends checkpoint {checkpoint}")
        if checked is not None and failed is None:
            click.echo(f"{len(checked)} signed checkpoint statement(s): every signature verifies and the log extends "
                       "each one")
        if result.backfilled:
            click.echo(f"note: {result.backfilled} link(s) were built when this store was upgraded to the chain; "
                       "they prove nothing changed since then, not before")
        if models is not None and models.ok:
            click.echo(f"read models intact: {models.rows} row(s) in {len(models.projections)} projection(s) "
                       f"match a replay of the log up to position {models.position}")
    if failed is not None:
        raise ChainBroken(f"checkpoint {failed.name}: {failed.detail}")
    if not result.ok:
        raise ChainBroken(summary["first_broken"]["message"])
    if models is not None and models.difference is not None:
        raise ChainBroken(models.difference.message)


def _statements(text: str) -> list[tuple[int, dict[str, Any] | None, str | None]] | None:
    """The statements in file ``text``; None when ``text`` is not a file (an old digest, then)."""
    from pathlib import Path  # noqa: PLC0415

    from pgf_events.audit import checkpoints  # noqa: PLC0415

    path = Path(text).expanduser()
    if not path.is_file():
        return None
    try:
        found = checkpoints.parse(path.read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError) as e:
        raise ValidationError(f"cannot read the checkpoint file {path}: {getattr(e, 'strerror', None) or e}") from None
    if not found:
        raise ValidationError(f"the checkpoint file {path} holds no statements")
    return found


@audit.command()
@click.option("--append-to", "append_to", metavar="FILE", type=click.Path(dir_okay=False),
              help="Also append the signed statement to FILE (keep it outside the database).")
@key_option
@output_options()
@click.pass_obj
def checkpoint(state: Any, append_to: str | None, key_file: str, passphrase_file: str | None,
               fmt: str | None) -> None:
    """Verify the chain, then sign a statement of its head with your key (one JSON line).

    The statement names the position, the chain hash there, the database's time and the store;
    keep it outside the database (--append-to). Later, 'pgf audit verify --checkpoint FILE'
    proves every statement genuine and the log still extending it.

    \b
    Example:
      pgf audit checkpoint --append-to /secure/pgf-checkpoints.jsonl
      pgf audit checkpoint --passphrase-file /run/secrets/pgf-pass --append-to checkpoints.jsonl
    """
    from pgf_events.audit import checkpoints  # noqa: PLC0415
    from pgf_events.audit.chain import Checkpoint  # noqa: PLC0415
    from pgf_events.audit.verify import chain_reader, describe_break  # noqa: PLC0415
    from pgf_events.audit.verify import verify as run  # noqa: PLC0415
    from pgf_events.cli.keys import load_signing_key  # noqa: PLC0415

    app = state.app(must_exist=True)
    reader = chain_reader(app)
    result = run(reader)
    if result.ok and (result.head is None or result.head.position == 0):
        raise StoreError("the store holds no events yet, so there is no chain head to checkpoint")
    if result.broken:
        raise ChainBroken(f"no checkpoint taken: {describe_break(app, result.broken)['message']}")
    private_key = load_signing_key(key_file, passphrase_file)
    signed = checkpoints.take(app, reader, result, user=state.acting_user(), private_key=private_key)
    line = json.dumps(signed, sort_keys=True, separators=(",", ":"))
    if append_to:
        try:
            with open(append_to, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError as e:
            raise ValidationError(f"cannot append to {append_to}: {e.strerror or e}") from None
    if fmt == "json":
        assert result.head is not None
        emit_json({**signed, "checkpoint": str(Checkpoint.of(result.head.position, result.head.hash))})
    else:
        click.echo(line)
    if append_to:
        click.echo(f"appended to {append_to}", err=True)


@audit.command()
@click.option("--kind", "kinds", multiple=True, type=click.Choice(
    ["late_entry", "endpoint_edit", "eligibility_after_enrolment", "dose_after_infusion", "sae_date_edit",
     "new_user_at_site"]), help="Only these kinds (repeatable).")
@click.option("--as-of", metavar="TIME", help="As the database knew it at TIME (a date means its end, UTC).")
@output_options(csv_ok=True)
@click.pass_obj
def exceptions(state: Any, kinds: tuple[str, ...], as_of: str | None, fmt: str | None) -> None:
    """List entries an auditor should look at, each with its event refs, who, when and why.

    Late entries (protocol late_entry_days), lab/transfusion edits near a derived endpoint date
    (endpoint_edit_window_days), eligibility data edited after enrolment, dose or weight edited
    after infusion, SAE dates edited, and the first entry of a user at a site.

    \b
    Example:
      pgf audit exceptions
      pgf audit exceptions --kind endpoint_edit --kind sae_date_edit --csv > exceptions.csv
    """
    from pgf_events.audit.exceptions import COLUMNS, KINDS, exception_rows  # noqa: PLC0415
    from pgf_events.domain.parsing import parse_as_of  # noqa: PLC0415

    cutoff = parse_as_of(as_of) if as_of else None
    app = state.app(must_exist=True)
    rows = exception_rows(app, cutoff, kinds or KINDS)
    if fmt == "json":
        params = app.protocol
        emit_json({
            "as_of": cutoff, "protocol_version": params.version,
            "parameters": {"late_entry_days": params.late_entry_days,
                           "endpoint_edit_window_days": params.endpoint_edit_window_days},
            "counts": {k: sum(r["kind"] == k for r in rows) for k in (kinds or KINDS)},
            "exceptions": rows,
        })
        return
    render(rows, fmt, list(COLUMNS))
    if fmt is None:
        counts = ", ".join(f"{k} {sum(r['kind'] == k for r in rows)}" for k in (kinds or KINDS))
        click.echo(f"{len(rows)} exception(s): {counts}", err=True)


@audit.command("signatures")
@click.argument("subjects", nargs=-1, metavar="[SUBJECT]...")
@output_options(csv_ok=True)
@click.pass_obj
def signatures_(state: Any, subjects: tuple[str, ...], fmt: str | None) -> None:
    """List electronic signatures: valid or invalidated, whether the signed events still hash alike,
    and whether each signature verifies with its signer's registered key (legacy: made before keys).

    \b
    Example:
      pgf audit signatures S001
      pgf audit signatures --csv
    """
    from pgf_events.audit.signatures import check_hashes, signed_subjects  # noqa: PLC0415

    app = state.app(must_exist=True)
    directory = app.directory()
    rows = [
        {"subject": subject.strip().upper(), **row}
        for subject in (subjects or signed_subjects(app))
        for row in check_hashes(app, subject, directory)
    ]
    columns = ["subject", "ref", "signer", "meaning", "signed_at", "stream_version", "valid",
               "invalidated_by", "hash_ok", "signature", "key_id", "stream_hash"]
    if fmt is None:  # a narrow terminal leaves columns out from the right: what a reader needs first
        columns = ["subject", "ref", "signer", "meaning", "signed_at", "valid", "signature", "hash_ok",
                   "invalidated_by", "key_id", "stream_version", "stream_hash"]
    render(rows, fmt, columns)


@click.group()
def db() -> None:
    """Database administration helpers."""


@db.command()
@click.option("--writer", default="pgf_writer", show_default=True, help="A login to make for a person who records.")
@click.option("--auditor", default="pgf_auditor", show_default=True, help="A login to make for an auditor.")
@click.pass_obj
def grants(state: Any, writer: str, auditor: str) -> None:
    """Print SQL making database logins (one per person) and how to give them the store's roles.

    \b
    Example:
      pgf --db postgresql://owner@dbhost/trial db grants | psql postgresql://owner@dbhost/trial
    """
    from pgf_events.audit.grants import grants_sql  # noqa: PLC0415
    from pgf_events.store import parse_url  # noqa: PLC0415

    config = parse_url(state.db_url)
    if config.backend != "postgresql":
        raise ValidationError(
            "database roles apply to PostgreSQL; a SQLite store is protected by its triggers and the file's permissions"
        )
    click.echo(grants_sql(config, writer, auditor), nl=False)



@db.command()
@click.pass_obj
def upgrade(state: Any) -> None:
    """Chain a store made by an older pgf (explicit, and logged in the store with who and when).

    Links every stored event as it stands now (marked backfilled: they prove nothing changed
    since the upgrade, not before), and on PostgreSQL adds the database notary, the roles and the
    marker; a notary that links row by row becomes the statement-level one (the same chain). On
    SQLite it restores append-only triggers that are missing (dropped, or from an older pgf). Run it
    as an admin (on PostgreSQL, as the schema's owner). Nothing else ever does this: verify and
    writes refuse a store without its chain or its triggers.

    \b
    Example:
      pgf db upgrade
    """
    from datetime import UTC, datetime  # noqa: PLC0415

    app = state.app(must_exist=True)
    recorder = app.recorder
    if not hasattr(recorder, "upgrade"):
        raise StoreError(f"the store {app.store.display} keeps no chain (in-memory stores have none)")
    now = datetime.now(UTC).isoformat()
    linked = recorder.upgrade(state.user, now)
    restored = recorder.restore_triggers(state.user, now) if hasattr(recorder, "restore_triggers") else []
    sited, statements = None, False
    if app.store.backend == "postgresql":  # row-level security by site (issue 15), on a store made before it
        from pgf_events.audit.pg_sites import upgrade_site_scope  # noqa: PLC0415

        sited = upgrade_site_scope(app)
        from pgf_events.audit.pg_notary import TRIGGERS  # noqa: PLC0415

        statements = recorder.upgrade_notary(state.user, now)  # the statement-level notary (issue 18)
    if restored:
        click.echo(f"upgraded by {state.user} at {now}: restored {len(restored)} missing append-only trigger(s) "
                   f"({', '.join(restored)}); what happened while they were missing is for 'pgf audit verify' "
                   "and the signed checkpoints to tell")
    if linked is None and sited is None and not statements and not restored:
        click.echo("nothing to upgrade: the store is already chained")
        return
    if linked:
        click.echo(f"upgraded by {state.user} at {now}: linked {linked} stored event(s) into the chain (backfilled)")
    if app.store.backend == "postgresql":
        from pgf_events.projections.provision import finish_store  # noqa: PLC0415

        finish_store(app)
        if linked is not None:
            click.echo(f"upgraded by {state.user} at {now}: the database is the notary from the next event on")
        if sited is not None:
            click.echo(f"upgraded by {state.user} at {now}: row-level security by site; {sited} stored "
                       "event(s) stamped with their patient's site")
        if statements:
            click.echo(f"upgraded by {state.user} at {now}: the database links each insert statement's events "
                       f"at once (statement-level notary, triggers version {TRIGGERS}; the same chain)")
