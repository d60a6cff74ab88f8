"""A signer driving the real CLI: key pair generated with a passphrase, registered, approved by an admin."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from click.testing import Result

from tests.conftest import Pgf

PASSPHRASE = "correct horse battery"
ADMIN = "admin.keys"


class CliSigner:
    def __init__(self, pgf: Pgf, folder: Path, user: str, *, approve: bool = True, register: bool = True):
        self.pgf, self.user = pgf, user
        self.key = folder / f"{user}.pem"
        self.passphrase = folder / f"{user}.pass"
        self.passphrase.write_text(PASSPHRASE + "\n")
        out = pgf.ok("keys", "generate", "--out", str(self.key), "--passphrase-file", str(self.passphrase))
        self.key_id = out.stdout.strip()
        assert len(self.key_id) == 32 and stat.S_IMODE(self.key.stat().st_mode) == 0o600
        assert self.key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        if register:
            assert pgf.ok("keys", "register", f"{self.key}.pub", user=user).stdout.strip() == self.key_id
        if register and approve:
            self.approve()

    def approve(self) -> None:
        self.pgf.ok("keys", "approve", self.user, self.key_id, "--reason", "identity checked", user=ADMIN)

    def args(self, *args: str, key: Path | None = None, passphrase: Path | None = None) -> list[str]:
        return [*args, "--key", str(key or self.key), "--passphrase-file", str(passphrase or self.passphrase)]

    def sign(self, *args: str, **kw: Any) -> Result:
        return self.pgf.ok("sign", *self.args(*args), user=self.user, **kw)

    def rejected(self, *args: str, contains: str = "", key: Path | None = None, passphrase: Path | None = None,
                 user: str | None = None) -> Result:
        return self.pgf.rejected("sign", *self.args(*args, key=key, passphrase=passphrase), contains=contains,
                                 user=user or self.user)
