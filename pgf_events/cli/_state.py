"""What every command shares: the store URL, the acting user, the protocol, and the lazily opened app."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import click

from pgf_events.cli.permissions import need_of, whole_store
from pgf_events.domain.errors import AccessDenied, PgfError, StoreError

if TYPE_CHECKING:
    from pgf_events.application import TrialConduct
    from pgf_events.protocol import Protocol


@attrs.define
class State:
    db_url: str | None
    requested_user: str | None  # --user / PGF_USER: may only restate who is acting
    protocol_file: str | None
    _app: TrialConduct | None = None
    _user: str | None = None

    def protocol(self) -> Protocol:
        from pgf_events.protocol import DEFAULT_PROTOCOL, PRESETS, Protocol  # noqa: PLC0415

        if not self.protocol_file:
            return DEFAULT_PROTOCOL
        if self.protocol_file in PRESETS:  # a named version: --protocol v1
            return Protocol.preset(self.protocol_file)
        return Protocol.from_toml(self.protocol_file)

    @property
    def user(self) -> str:
        """Who is acting (pgf_events.identity): the OS account, or on PostgreSQL the database login."""
        if self._user is None:
            self.app()
        assert self._user is not None
        return self._user

    def overrides_protocol(self) -> bool:
        """Whether --protocol asks for parameters other than the trial's: such a run is evaluated in
        memory and never rewrites the shared read models (or the change feed) for everyone."""
        from pgf_events.protocol import DEFAULT_PROTOCOL  # noqa: PLC0415

        return bool(self.protocol_file) and self.protocol() != DEFAULT_PROTOCOL

    def refuse_protocol_override(self, what: str) -> None:
        """The shared read models (and the change feed built on them) stay under the trial protocol."""
        if self.overrides_protocol():
            raise PgfError(f"the shared read models are kept under the trial protocol; --protocol "
                           f"{self.protocol_file} applies to reports and status (evaluated in memory), not to {what}")

    def app(self, *, must_exist: bool = False) -> TrialConduct:
        """Open the store on first use, authenticate, and check the acting user's role for the command.

        Readers never create an empty store by accident.
        """
        if self._app is None:
            from pgf_events.application import TrialConduct  # noqa: PLC0415
            from pgf_events.store import parse_url  # noqa: PLC0415

            config = parse_url(self.db_url)
            if must_exist and not config.exists():
                raise StoreError(f"there is no trial store at {config.display} (check --db or PGF_DB)")
            app = TrialConduct(config, self.protocol())
            if app.created_now:  # a new PostgreSQL store: its owner creates the read models and grants
                from pgf_events.projections.provision import finish_store  # noqa: PLC0415

                try:
                    finish_store(app)
                except BaseException:
                    app.close()
                    raise
            try:
                user = app.acting_user(self.requested_user)
                ctx = click.get_current_context(silent=True)
                if ctx is not None:
                    app.authorise(user, need_of(ctx.command_path))
                    if app.site_scope is not None and whole_store(ctx.command_path):
                        raise AccessDenied(
                            f"{user} may act only on patients of site {', '.join(sorted(app.site_scope))}; "
                            f"'{' '.join(ctx.command_path.split()[1:])}' covers every site: an auditor, "
                            "or a user granted without --site, runs it")
            except BaseException:
                app.close()
                raise
            self._app, self._user = app, user
        return self._app

    def acting_user(self) -> str:
        """Who is acting, as the store's identity model knows it (stamped on signatures, checkpoints and checks)."""
        return self.user

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None
