"""``pgf users grant|revoke|list``: roles as events; who may record, sign, read and manage."""

from __future__ import annotations

from typing import Any

import click

from pgf_events.cli._output import output_options, render
from pgf_events.domain.users import ROLES


@click.group()
def users() -> None:
    """Manage users and their roles (coordinator, investigator, monitor, auditor, admin).

    A new store is open to anyone who can open it. The first grant must make someone an admin;
    from then on every command checks the acting user's role, and the acting user is the OS login.

    \b
    Example:
      pgf users grant $(whoami) admin --reason "trial set-up"
      pgf users grant li.na coordinator --reason "site PKU coordinator"
    """


def _change(action: str) -> click.Command:
    @click.command(name=action, help=f"{action.capitalize()} a role {'to' if action == 'grant' else 'from'} a user.\n\n"
                   f"\b\nExample:\n  pgf users {action} li.na coordinator --reason \"site PKU\"")
    @click.argument("user")
    @click.argument("role", metavar="ROLE")
    @click.option("--reason", help="Why (kept in the audit trail).")
    @click.pass_obj
    def command(state: Any, user: str, role: str, reason: str | None, site: tuple[str, ...] = ()) -> None:
        app = state.app()
        app.change_role(action, user, role, by=state.user, reason=reason, sites=list(site) or None)
        where = f" for site {', '.join(s.upper() for s in site)}" if site else ""
        click.echo(f"{'granted' if action == 'grant' else 'revoked'} {role} {'to' if action == 'grant' else 'from'} {user}{where}")

    if action == "grant":
        command = click.option("--site", multiple=True, metavar="S",
                               help="Limit the grant to patients of site S (repeatable; default: every site).")(command)

    command.params[1].help = f"One of {', '.join(ROLES)}."
    return command


users.add_command(_change("grant"))
users.add_command(_change("revoke"))


@users.command("list")
@output_options(csv_ok=True)
@click.pass_obj
def list_(state: Any, fmt: str | None) -> None:
    """List users and their roles, with who granted each.

    \b
    Example:
      pgf users list --json
    """
    app = state.app(must_exist=True)
    directory = app.directory()
    rows: list[dict[str, Any]] = []
    if directory is not None:
        granted: dict[tuple[str, str], Any] = {}
        for event in app.events.get(directory.id):
            if isinstance(event, type(directory).RoleGranted):
                granted[(event.user, event.role)] = event
        for user in sorted(directory.roles):
            for role in sorted(directory.roles[user]):
                event = granted[(user, role)]
                rows.append({"user": user, "role": role, "sites": ",".join(event.sites or []) or "all",
                             "granted_by": event.granted_by, "granted_at": event.timestamp, "reason": event.reason})
    if not rows and fmt is None:
        click.echo("no users: this store is open to anyone who can open it (grant an admin to switch checks on)", err=True)
        return
    render(rows, fmt, ["user", "role", "sites", "granted_by", "granted_at", "reason"])
