"""Where kei's files live, resolved once from an explicit environment mapping.

Nothing reads ``os.environ`` behind the caller's back: the CLI passes it in, the
Python API passes what it likes. Precedence: an explicit argument (``--db``,
``--key``), then ``KEI_DB`` / ``KEI_KEY``, then defaults under ``KEI_HOME``
(``~/.kei``): ``$KEI_HOME/ledger.db`` and ``$KEI_HOME/keys/default.key``.

``KEI_HOME`` holds the private keys, so kei creates it (and ``keys/``) 0700, and
``check_home`` refuses one that is not a folder and warns about one that others can
write (they could swap the keys or the ledger inside it).
``KEI_WRITE_ATTEMPTS`` sets how many times a write that loses a race is tried
(``app/ledger/retrying.py``).
"""

from __future__ import annotations

import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from msgspec import Struct

from kei.adapters.files.keyfile import KEY_SUFFIX, make_private_folder
from kei.app.ledger.retrying import DEFAULT_ATTEMPTS, RetryPolicy
from kei.errors import InputError
from kei.limits import LIMITS

if TYPE_CHECKING:
    from kei.adapters.files.safe_output import Protected

DEFAULT_KEY = "default"


class Settings(Struct, frozen=True):
    home: Path
    db_url: str
    key_name: str
    synchronous: str
    write_attempts: int = DEFAULT_ATTEMPTS

    @property
    def retry(self) -> RetryPolicy:
        """The retry budget of every write through a ledger opened with these settings."""
        return RetryPolicy(attempts=self.write_attempts)

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def checkpoint_state(self) -> Path:
        """Where ``kei checkpoint`` remembers the last checkpoint it signed per store
        (``adapters/files/checkpoint_state.py``), so the next checks only what was appended."""
        return self.home / "checkpoint-state"

    def protected(self) -> Protected:
        """The store, keys folder and key file these settings name: what ``--out`` may
        never overwrite."""
        from kei.adapters.files.safe_output import Protected

        return Protected.of(self.db_url, self.keys_dir, self.key_path())

    def key_path(self, name_or_path: str | None = None) -> Path:
        """A key given by name (in the keys folder) or by a path to a file."""
        ref = name_or_path or self.key_name
        if "/" in ref or ref.endswith(KEY_SUFFIX):
            return Path(ref).expanduser()
        return self.keys_dir / f"{ref}{KEY_SUFFIX}"


def home_of(env: Mapping[str, str]) -> Path:
    """``$KEI_HOME``, else ``~/.kei``: where kei's keys, ledger and logs live."""
    return Path(env.get("KEI_HOME") or Path.home() / ".kei").expanduser()


def resolve(
    env: Mapping[str, str],
    *,
    db: str | None = None,
    key: str | None = None,
    synchronous: str | None = None,
) -> Settings:
    home = home_of(env)
    url = db or env.get("KEI_DB") or f"sqlite:///{home / 'ledger.db'}"
    if "://" not in url:
        url = f"sqlite:///{Path(url).expanduser().absolute()}"
    return Settings(
        home=home,
        db_url=url,
        key_name=key or env.get("KEI_KEY") or DEFAULT_KEY,
        synchronous=(synchronous or env.get("KEI_SQLITE_SYNCHRONOUS") or "FULL").upper(),
        write_attempts=_attempts(env.get("KEI_WRITE_ATTEMPTS")),
    )


def check_home(home: Path) -> str | None:
    """Refuse a ``KEI_HOME`` that is not a folder (one line, not a traceback later);
    return a warning when users other than its owner may write into it."""
    try:
        info = home.stat()
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot use KEI_HOME {_short(home)}: {getattr(exc, 'strerror', None) or exc}",
            hint="set KEI_HOME to a folder of yours",
        ) from None
    if not stat.S_ISDIR(info.st_mode):
        raise InputError(
            f"KEI_HOME {_short(home)} is not a folder",
            hint="set KEI_HOME to a folder (kei creates it), or move that file away",
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = "everyone" if info.st_mode & stat.S_IWOTH else "its group"
        mode = stat.S_IMODE(info.st_mode)
        return (
            f"KEI_HOME {_short(home)} can be written by {who} (mode {mode:04o}): they "
            f"could replace its keys or ledger; run: chmod 700 {_short(home)}"
        )
    return None


def prepare_home(home: Path) -> None:
    """Create ``KEI_HOME`` and its ``keys`` folder 0700 where they do not exist."""
    check_home(home)
    try:
        make_private_folder(home / "keys")
    except OSError as exc:
        raise InputError(
            f"cannot create KEI_HOME {_short(home)}: {exc.strerror or exc}",
            hint="set KEI_HOME to a folder you may write",
        ) from None


def _short(path: Path) -> str:
    """The path for a one-line message: control characters escaped, at most 200."""
    text = str(path)
    cut = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:200])
    return cut if len(text) <= 200 else cut + "..."


def _attempts(text: str | None) -> int:
    if text is None or not text.strip():
        return DEFAULT_ATTEMPTS
    value = text.strip()
    if not value.isdigit() or len(value) > 4 or not 1 <= int(value) <= LIMITS.max_write_attempts:
        raise InputError(
            f"KEI_WRITE_ATTEMPTS must be a whole number from 1 to {LIMITS.max_write_attempts}, got {text!r}",
            hint=f"unset it for the default ({DEFAULT_ATTEMPTS})",
        )
    return int(value)
