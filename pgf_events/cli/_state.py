"""What every command shares: the store URL, the acting user, the protocol, and the lazily opened app."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import click

from pgf_events.cli.permissions import need_of
from pgf_events.domain.errors import StoreError

if TYPE_CHECKING:
    from pgf_events.application import TrialConduct
    from pgf_events.protocol import Protocol


@attrs.define
class State:
    db_url: str | None
    user: str
    protocol_file: str | None
    login: str | None = None  # the OS login: who is really at the keyboard
    _app: TrialConduct | None = None

    def protocol(self) -> Protocol:
        from pgf_events.protocol import DEFAULT_PROTOCOL, PRESETS, Protocol  # noqa: PLC0415

        if not self.protocol_file:
            return DEFAULT_PROTOCOL
        if self.protocol_file in PRESETS:  # a named version: --protocol v1
            return Protocol.preset(self.protocol_file)
        return Protocol.from_toml(self.protocol_file)

    def overrides_protocol(self) -> bool:
        """Whether --protocol asks for parameters other than the trial's: such a run is evaluated in
        memory and never rewrites the shared read models (or the change feed) for everyone."""
        from pgf_events.protocol import DEFAULT_PROTOCOL  # noqa: PLC0415

        return bool(self.protocol_file) and self.protocol() != DEFAULT_PROTOCOL

    def app(self, *, must_exist: bool = False) -> TrialConduct:
        """Open the store on first use and check the acting user's role for the running command.

        Readers never create an empty store by accident.
        """
        if self._app is None:
            from pgf_events.application import TrialConduct  # noqa: PLC0415
            from pgf_events.store import parse_url  # noqa: PLC0415

            config = parse_url(self.db_url)
            if must_exist and not config.exists():
                raise StoreError(f"there is no trial store at {config.display} (check --db or PGF_DB)")
            app = TrialConduct(config, self.protocol())
            try:
                ctx = click.get_current_context(silent=True)
                if ctx is not None:
                    app.authorise(self.user, need_of(ctx.command_path), login=self.login)
            except BaseException:
                app.close()
                raise
            self._app = app
        return self._app

    def acting_user(self) -> str:
        """Who is acting, as the store's identity model knows it (stamped on signatures, checkpoints and checks)."""
        return self.user

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None
