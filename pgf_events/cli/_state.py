"""What every command shares: the store URL, the acting user, the protocol, and the lazily opened app."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

import attrs
import click

from pgf_events.cli.permissions import need_of, whole_store
from pgf_events.domain.errors import AccessDenied, PgfError, StoreError

if TYPE_CHECKING:
    from pgf_events.application import TrialConduct
    from pgf_events.protocol import Protocol
    from pgf_events.store import StoreConfig


# An application kept open by a long-running process (``pgf daemon``, ``pgf shell``): the commands it
# runs use it instead of opening the store again, and still authenticate and authorise each time.
_SHARED: ContextVar[TrialConduct | None] = ContextVar("pgf_shared_app", default=None)


@contextmanager
def shared_app(app: TrialConduct) -> Iterator[None]:
    token = _SHARED.set(app)
    try:
        yield
    finally:
        _SHARED.reset(token)


# What a read-only store still allows (permission classes of pgf_events.cli.permissions).
READING = frozenset({"read", "directory"})


@attrs.define
class State:
    db_url: str | None
    requested_user: str | None  # --user / PGF_USER: may only restate who is acting
    protocol_file: str | None
    _app: TrialConduct | None = None
    _user: str | None = None
    _shared: bool = False  # the app belongs to a long-running process: never closed here
    read_only: str | None = None  # why the open store cannot be written (pgf_events.store.read_only_reason)

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

    def in_memory(self) -> bool:
        """Whether reports are derived from the log in memory instead of the shared read models: under a
        protocol override, or on a store that cannot be written (the read models cannot catch up)."""
        if self.overrides_protocol():
            return True
        self.app(must_exist=True)
        return self.read_only is not None

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
        if self._app is None and _SHARED.get() is not None:
            self._app, self._user = self._enter_shared(_SHARED.get())
        if self._app is None:
            from pgf_events.application import TrialConduct  # noqa: PLC0415
            from pgf_events.store import parse_url  # noqa: PLC0415

            config = parse_url(self.db_url)
            if must_exist and not config.exists():
                raise StoreError(f"there is no trial store at {config.display} (check --db or PGF_DB)")
            self._refuse_writes(config)
            app = TrialConduct(config, self.protocol() if self.protocol_file else None)  # None: the trial's
            if app.created_now:  # a new PostgreSQL store: its owner creates the read models and grants
                from pgf_events.projections.provision import finish_store  # noqa: PLC0415

                try:
                    finish_store(app)
                except BaseException:
                    app.close()
                    raise
            try:
                user = app.acting_user(self.requested_user)
                _authorise(app, user)
            except BaseException:
                app.close()
                raise
            self._app, self._user = app, user
        return self._app

    def _refuse_writes(self, config: StoreConfig) -> None:
        """A store that cannot be written is verified, read and reported; any other command is refused."""
        self.read_only = config.read_only
        ctx = click.get_current_context(silent=True)
        if config.read_only and ctx is not None and need_of(ctx.command_path) not in READING:
            raise StoreError(f"the store {config.display} is read-only ({config.read_only}): it can be verified, "
                             "read, reported and exported, not written; nothing was written")

    def _enter_shared(self, app: TrialConduct | None) -> tuple[TrialConduct, str]:
        """The long-running process's application, for this command's user: who is acting is read
        again (the daemon sets it per caller, from the kernel) and the command's role checked."""
        assert app is not None
        self._refuse_writes(app.store)
        self._shared = True
        app.site_scope, app.scoped_user = None, ""  # the previous command's user's site scope
        user = app.acting_user(self.requested_user)
        _authorise(app, user)
        return app, user

    def acting_user(self) -> str:
        """Who is acting, as the store's identity model knows it (stamped on signatures, checkpoints and checks)."""
        return self.user

    def close(self) -> None:
        if self._app is not None:
            if not self._shared:
                self._app.close()
            self._app = None


def _authorise(app: TrialConduct, user: str) -> None:
    """The running command's role check, and a whole-store command refused to a site-scoped user:
    the same in a command's own process and in a long-running one (``pgf daemon``, ``pgf shell``)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return
    app.authorise(user, need_of(ctx.command_path))
    if app.site_scope is not None and whole_store(ctx.command_path):
        raise AccessDenied(
            f"{user} may act only on patients of site {', '.join(sorted(app.site_scope))}; "
            f"'{' '.join(ctx.command_path.split()[1:])}' covers every site: an auditor, "
            "or a user granted without --site, runs it")
