"""kei's global options (``--db``, ``--key``, ``--sqlite-sync``, ``--verbose``) and the
settings they resolve to, without typer: the typer app and the fast paths of
``entry.py`` resolve settings the same way."""

from __future__ import annotations

import os

from msgspec import Struct

from kei.adapters.cli import config
from kei.adapters.cli.lines import Lines
from kei.errors import InputError


class Globals(Struct):
    db: str | None = None
    key: str | None = None
    synchronous: str | None = None
    verbose: bool = False

    def settings(self) -> config.Settings:
        """The resolved settings; an empty ``--db``/``--key``/``--sqlite-sync`` or a
        ``KEI_HOME`` that is not a folder is refused here, never silently replaced by a
        default."""
        given = (("--db", self.db), ("--key", self.key), ("--sqlite-sync", self.synchronous))
        for flag, value in given:
            if value is not None and not value.strip():
                raise InputError(
                    f"{flag} is empty", hint=f"give a value, or leave {flag} out for the default"
                )
        settings = config.resolve(
            os.environ, db=self.db, key=self.key, synchronous=self.synchronous
        )
        warning = config.check_home(settings.home)  # a file there: InputError
        if warning:
            Lines().print(f"kei: WARNING: {warning}", markup=False)
        return settings
