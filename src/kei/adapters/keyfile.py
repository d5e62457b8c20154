"""Private key files: JSON, mode 0600, written atomically, refused when too open.

The format is kei-ledger-sign's, so existing upstream keys load unchanged::

    {"version": 1, "private_hex": "<32-byte seed>", "public_hex": "<32-byte key>"}

kei adds an optional ``"name"``. Loading checks, in order: the file exists, nobody
but the owner can read or write it, it parses, the seed has 32 bytes, and the stored
public key equals the one derived from the seed.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path

from kei.domain.keys import SigningKey
from kei.errors import KeyFileError

KEY_SUFFIX = ".key"


def write_key(path: Path, key: SigningKey) -> None:
    """Write ``key`` to ``path`` atomically with mode 0600; an existing file is refused."""
    if path.exists():
        raise KeyFileError(f"key file {path} already exists", hint="pick another name")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = json.dumps(
        {
            "version": 1,
            "private_hex": key.seed.hex(),
            "public_hex": key.public_key.hex(),
            "name": key.name,
        },
        indent=2,
    ).encode()
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_key(path: Path) -> SigningKey:
    """Load and check a key file; every failure is a one-line KeyFileError."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeyFileError(
            f"no key file at {path}", hint="run `kei init` or `kei keys new NAME`"
        ) from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        mode = stat.S_IMODE(info.st_mode)
        raise KeyFileError(
            f"key file {path} is open to other users (mode {mode:04o})",
            hint=f"run: chmod 600 {path}",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        seed = bytes.fromhex(data["private_hex"])
        public = bytes.fromhex(data["public_hex"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"key file {path} is not a kei key ({exc})") from exc
    if len(seed) != 32:
        raise KeyFileError(f"key file {path} holds a {len(seed)}-byte seed, expected 32")
    name = data.get("name") or path.stem
    key = SigningKey(seed, name=str(name))
    if key.public_key != public:
        raise KeyFileError(f"key file {path}: stored public key does not match the seed")
    return key


def list_key_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix == KEY_SUFFIX)
