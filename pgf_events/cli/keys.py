"""``pgf keys generate|register|approve|revoke|list``: each signer's Ed25519 key pair.

The private key stays with its owner, encrypted with a passphrase (something they have plus
something they know); the public key is registered in the store's user directory and approved by
an admin, so signatures and checkpoint statements verify offline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pgf_events.cli._output import emit_json, output_options, render
from pgf_events.domain.errors import ValidationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY_ENV = "PGF_SIGNING_KEY"
DEFAULT_KEY = "~/.pgf/signing-key.pem"


def key_option(fn: Any) -> Any:
    """``--key FILE`` and ``--passphrase-file FILE``: the two components of a signature."""
    fn = click.option("--passphrase-file", type=click.Path(dir_okay=False), metavar="FILE",
                      help="Read the key's passphrase from FILE's first line (automation); otherwise it is asked "
                           "for, without echo.")(fn)
    return click.option("--key", "key_file", envvar=KEY_ENV, default=DEFAULT_KEY, show_default=True, metavar="FILE",
                        help=f"Your encrypted private key (env {KEY_ENV}), from 'pgf keys generate'.")(fn)


def read_passphrase(passphrase_file: str | None, prompt: str, confirm: bool = False) -> str:
    if passphrase_file is not None:
        try:
            lines = Path(passphrase_file).read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise ValidationError(f"cannot read the passphrase file {passphrase_file}: {e.strerror or e}") from None
        return lines[0] if lines else ""
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True))


def load_signing_key(key_file: str, passphrase_file: str | None) -> Ed25519PrivateKey:
    """The decrypted private key: read the file, then ask for (or read) its passphrase."""
    from pgf_events.domain.esign import load_private  # noqa: PLC0415

    path = Path(key_file).expanduser()
    try:
        pem = path.read_bytes()
    except OSError as e:
        raise ValidationError(f"cannot read the signing key {path}: {e.strerror or e} "
                              "(make one with 'pgf keys generate', or pass --key)") from None
    return load_private(pem, read_passphrase(passphrase_file, f"Passphrase for {path}"), str(path))


@click.group()
def keys() -> None:
    """Signing keys: generate your key pair, register its public half, approve others' (admins).

    \b
    Example:
      pgf keys generate                      # ~/.pgf/signing-key.pem (+ .pub), asks a passphrase
      pgf keys register ~/.pgf/signing-key.pem.pub --reason "investigator, site PKU"
      pgf keys approve dr.wang 3f1c...e9 --reason "identity checked in person"
      pgf keys list
    """


@keys.command()
@click.option("--out", default=DEFAULT_KEY, show_default=True, metavar="FILE",
              help="Where to write the encrypted private key; the public key goes to FILE.pub.")
@click.option("--passphrase-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Read the new passphrase from FILE's first line instead of asking (twice, without echo).")
@click.option("--force", is_flag=True, help="Overwrite an existing key file.")
def generate(out: str, passphrase_file: str | None, force: bool) -> None:
    """Make a new Ed25519 key pair, the private key encrypted with a passphrase you choose.

    Prints the key id. Register the public key in each store with 'pgf keys register'.

    \b
    Example:
      pgf keys generate
      pgf keys generate --out /secure/dr.wang.pem --passphrase-file /run/secrets/pgf-pass
    """
    from pgf_events.domain.esign import generate as make  # noqa: PLC0415

    path = Path(out).expanduser()
    public = path.with_name(path.name + ".pub")
    if not force and (path.exists() or public.exists()):
        raise ValidationError(f"{path} already exists; keep it, or pass --force to replace it")
    private_pem, public_pem, key_id = make(read_passphrase(passphrase_file, "New passphrase", confirm=True))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private_pem)
        public.write_text(public_pem, encoding="utf-8")
    except OSError as e:
        raise ValidationError(f"cannot write the key to {path}: {e.strerror or e}") from None
    click.echo(key_id)
    click.echo(f"wrote {path} (private, encrypted; mode 600) and {public} (public: pgf keys register {public})",
               err=True)


@keys.command()
@click.argument("public_key", type=click.Path(dir_okay=False), metavar="PUBLIC_KEY_FILE")
@click.option("--for", "owner", metavar="USER",
              help="Admins: register USER's public key, received from them (on PostgreSQL with roles on, only "
                   "admins write the user directory).")
@click.option("--reason", help="Why (kept in the audit trail).")
@click.pass_obj
def register(state: Any, public_key: str, owner: str | None, reason: str | None) -> None:
    """Register your public key (or, for admins, a user's) in this store; it signs nothing until an
    admin other than its owner approves it.

    \b
    Example:
      pgf keys register ~/.pgf/signing-key.pem.pub --reason "investigator, site PKU"
      pgf keys register /inbox/dr.wang.pem.pub --for dr.wang --reason "received in person"
    """
    try:
        pem = Path(public_key).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValidationError(f"cannot read the public key {public_key}: {getattr(e, 'strerror', None) or e}") from None
    by = state.acting_user()
    app = state.app()
    user = owner.strip() if owner and owner.strip() else by
    if user != by:
        app.authorise(by, "admin")
    key_id = app.register_key(pem, user=user, by=by, reason=reason)
    click.echo(key_id)
    click.echo(f"registered key {key_id} of {user}; an admin approves it with: pgf keys approve {user} {key_id}",
               err=True)


def _decide(action: str) -> click.Command:
    @click.command(name=action, help=f"{action.capitalize()} a user's registered key (admins; not your own).\n\n"
                   f"\b\nExample:\n  pgf keys {action} dr.wang 3f1c0a9e5b7d42c6a8e1f0b3d5c7e9a1 --reason \"...\"")
    @click.argument("user")
    @click.argument("key_id")
    @click.option("--reason", help="Why (kept in the audit trail).")
    @click.pass_obj
    def command(state: Any, user: str, key_id: str, reason: str | None) -> None:
        app = state.app(must_exist=True)
        directory = app.directory()
        key = directory.keys.get(key_id.strip().lower()) if directory is not None else None
        if key is not None and key.user != user:
            raise ValidationError(f"key {key.key_id} belongs to {key.user}, not to {user}")
        getattr(app, f"{action}_key")(key_id, by=state.acting_user(), reason=reason)
        click.echo(f"{action}d key {key_id.strip().lower()} of {user}")

    return command


keys.add_command(_decide("approve"))
keys.add_command(_decide("revoke"))


@keys.command("list")
@output_options(csv_ok=True)
@click.pass_obj
def list_(state: Any, fmt: str | None) -> None:
    """List registered keys: owner, key id, approved by, revoked by.

    \b
    Example:
      pgf keys list --json
    """
    directory = state.app(must_exist=True).directory()
    rows = [{"user": k.user, "key_id": k.key_id, "approved_by": k.approved_by, "revoked_by": k.revoked_by,
             "usable": k.usable} for k in (directory.keys.values() if directory is not None else [])]
    if fmt == "json":
        emit_json({"keys": rows})
        return
    render(rows, fmt, ["user", "key_id", "approved_by", "revoked_by", "usable"])
