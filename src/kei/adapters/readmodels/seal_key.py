"""The local secret that seals read models: ``$KEI_HOME/read-models.seal``.

The projection engine authenticates each read model's state digest with an HMAC
under this key (``kei.adapters.readmodels.seal``), so someone who can edit the
database but cannot read this file cannot forge a read model that passes. The file
holds 32 random bytes; it is made on first use, mode 0600, written under a private
name and linked into place, so two processes making it at once agree on one key and
nobody ever reads half a key. It is not a signing key: losing it costs one rebuild
of the read models (they are re-sealed under the new key), never data.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Final

from kei.errors import KeyFileError

__all__ = ["SEAL_FILE", "load_or_create"]

SEAL_FILE: Final = "read-models.seal"
_SIZE: Final = 32


def load_or_create(home: Path) -> bytes:
    """The seal key in ``home``, made (0600) when there is none."""
    path = home / SEAL_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _error(path, exc) from exc
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        _create(path)
        return _read(path)
    except OSError as exc:
        raise _error(path, exc) from exc


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    if len(data) != _SIZE:
        raise KeyFileError(
            f"read-model seal key {path} holds {len(data)} bytes, not {_SIZE}",
            hint=f"delete {path}: kei makes a new one and rebuilds the read models once",
        )
    return data


def _create(path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(_SIZE))
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _error(path: Path, exc: OSError) -> KeyFileError:
    return KeyFileError(
        f"cannot read or make the read-model seal key {path}: {exc.strerror or exc}",
        hint="check KEI_HOME's permissions",
    )
