"""Private key files: JSON, mode 0600, written atomically, refused when too open.

The format is kei-ledger-sign's, so existing upstream keys load unchanged::

    {"version": 1, "private_hex": "<32-byte seed>", "public_hex": "<32-byte key>"}

kei adds an optional ``"name"``. Loading checks, in order: the file exists and is a
regular file, not a symlink (the link, or a folder on the way that someone else
controls, could swap the key under a ledger), it belongs to the user running kei,
nobody else can read or write it, it parses, the seed has 32 bytes, and the stored
public key equals the one derived from the seed. The file is opened without
following a symlink and checked to be the one inspected. Folders kei makes for keys
(and ``KEI_HOME``) are 0700, whatever the umask.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from kei.domain.log.keys import SigningKey
from kei.errors import KeyFileError
from kei.limits import LIMITS

KEY_SUFFIX = ".key"
_FOLDER_LOCK = ".lock"


def write_key(path: Path, key: SigningKey) -> None:
    """Write ``key`` to ``path`` atomically with mode 0600; an existing file is refused."""
    if key_exists(path):
        raise KeyFileError(f"key file {_shown(path)} already exists", hint="pick another name")
    try:
        make_private_folder(path.parent)
    except OSError as exc:
        raise KeyFileError(f"cannot create {_shown(path.parent)}: {exc.strerror or exc}") from exc
    body = json.dumps(
        {
            "version": 1,
            "private_hex": key.seed.hex(),
            "public_hex": key.public_key.hex(),
            "name": key.name,
        },
        indent=2,
    ).encode()
    write_private(path, body)


def write_private(path: Path, body: bytes) -> None:
    """Put ``body`` in place at ``path`` as a file only its owner may read (0600):
    written to ``NAME.tmp`` beside it (never through a link), fsynced, renamed over
    ``path``, and the folder fsynced, so a crash leaves the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        view = memoryview(body)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_private(path: Path, max_bytes: int) -> bytes | None:
    """A small file kei keeps for itself (a pin, checkpoint or witness state), or None
    when there is none. Never follows a link or blocks on a FIFO someone put there;
    reads at most ``max_bytes + 1`` bytes, so the caller can tell a file that is too
    big. Any other failure (a folder, a device) is an OSError for the caller to word."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read(max_bytes + 1)


def make_private_folder(folder: Path) -> None:
    """Create ``folder`` and its missing parents with mode 0700 (umask or not);
    folders that exist are left as they are."""
    missing: list[Path] = []
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for new in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(new, 0o700)
            os.chmod(new, 0o700)


def open_folder_lock(folder: Path) -> int:
    """Make ``folder`` private (``make_private_folder``) and open its lock file
    ``<folder>/.lock`` (0600, never through a link), for ``held``; OSError as raised, for
    the caller to word."""
    make_private_folder(folder)
    return os.open(folder / _FOLDER_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)


@contextlib.contextmanager
def held(lock_fd: int) -> Iterator[None]:
    """An exclusive ``flock`` of an open lock file, released (the file closed) on exit:
    what serialises the writers of a state folder (checkpoint and witness state)."""
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock_fd)


def _shown(path: Path) -> str:
    """The path for a one-line message: control characters escaped, at most 200."""
    text = str(path)
    cut = text[:200]
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in cut) + (
        "..." if len(text) > 200 else ""
    )


def key_exists(path: Path) -> bool:
    """Is there anything at ``path`` (a dangling symlink too)? A path that cannot be
    looked at is a one-line KeyFileError."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as exc:
        raise _unusable(path, exc) from None
    return True


def _unusable(path: Path, exc: OSError | ValueError) -> KeyFileError:
    shown = _shown(path)
    if isinstance(exc, ValueError):  # a NUL byte in the path
        return KeyFileError(f"cannot use key file {shown}: {exc}")
    if exc.errno == errno.ENOTDIR:
        return KeyFileError(
            f"no key file at {shown}: a part of the path is not a folder",
            hint="check --key / KEI_KEY / KEI_HOME",
        )
    return KeyFileError(
        f"cannot use key file {shown}: {exc.strerror or exc}",
        hint="check --key / KEI_KEY / KEI_HOME",
    )


def _checked_info(path: Path) -> os.stat_result:
    """The key file's ``lstat``, refused unless it is this user's regular file, closed
    to others."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise KeyFileError(
            f"no key file at {_shown(path)}", hint="run `kei init` or `kei keys new NAME`"
        ) from None
    except (OSError, ValueError) as exc:
        raise _unusable(path, exc) from None
    if stat.S_ISLNK(info.st_mode):
        raise KeyFileError(
            f"key file {_shown(path)} is a symbolic link; kei loads only the file itself",
            hint="pass the real file's path with --key (or move the key there)",
        )
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(f"key file {_shown(path)} is not a regular file")
    if info.st_uid != os.geteuid():
        raise KeyFileError(
            f"key file {_shown(path)} belongs to another user (uid {info.st_uid}), not to you "
            f"(uid {os.geteuid()})",
            hint="use a key of your own (`kei keys new NAME`), or take ownership with chown",
        )
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        mode = stat.S_IMODE(info.st_mode)
        raise KeyFileError(
            f"key file {_shown(path)} is open to other users (mode {mode:04o})",
            hint=f"run: chmod 600 {_shown(path)}",
        )
    return info


def _read_checked(path: Path) -> bytes:
    """Read the file ``_checked_info`` approved, never through a symlink, and only
    if it is still that file."""
    info = _checked_info(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise _unusable(path, exc) from None
    with os.fdopen(fd, "rb") as fh:
        now = os.fstat(fh.fileno())
        if (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
            raise KeyFileError(f"key file {_shown(path)} was replaced while it was read; try again")
        return fh.read(LIMITS.max_key_file_bytes + 1)


def load_key(path: Path) -> SigningKey:
    """Load and check a key file; every failure is a one-line KeyFileError."""
    body = _read_checked(path)
    if len(body) > LIMITS.max_key_file_bytes:
        raise KeyFileError(
            f"key file {_shown(path)} is not a kei key (over {LIMITS.max_key_file_bytes} bytes)"
        )
    try:
        data = json.loads(body.decode("utf-8"))
        seed = bytes.fromhex(data["private_hex"])
        public = bytes.fromhex(data["public_hex"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"key file {_shown(path)} is not a kei key ({exc})") from exc
    if len(seed) != 32:
        raise KeyFileError(f"key file {_shown(path)} holds a {len(seed)}-byte seed, expected 32")
    name = data.get("name") or path.stem
    key = SigningKey(seed, name=str(name))
    if key.public_key != public:
        raise KeyFileError(f"key file {_shown(path)}: stored public key does not match the seed")
    return key


def list_key_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix == KEY_SUFFIX)
