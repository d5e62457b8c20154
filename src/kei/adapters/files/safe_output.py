"""Files a user names with ``--out``: checked before any work, written atomically.

Every command that writes a file the user names goes through here, because a typo in
``--out`` must not cost a ledger or a key. ``check_output`` refuses, in one line:

- an empty name, a name the system cannot take (too long, a NUL byte), a missing
  folder;
- the live store (the SQLite file and its ``-wal``, ``-shm`` and ``-journal``
  siblings), compared by resolved path and by device and inode, so neither a symlink
  nor a hard link gets around it;
- key files: anything under the keys folder, the key file in use, and any file that
  parses as a kei key (a JSON object with ``private_hex``);
- anything that is not a regular file (a folder, a device such as ``/dev/null``, a
  FIFO, a socket, a symbolic link: name the file it points to);
- an existing file, unless ``force``.

``OutputFile`` writes beside the target under a temporary name (created with
``O_EXCL``), fsyncs, and only then puts it in place: without ``force`` by a hard link,
which fails if the name appeared meanwhile, so nothing is ever clobbered; with it by
``os.replace``, after checking again that what it replaces is still the regular file
checked at first. Any failure, a full disk or Ctrl-C included, removes the temporary
file, and the target stays as it was.

A writer killed outright (SIGKILL, power loss) cannot clean up: what it leaves beside
the output is removed by the next write to the same name (``leftovers.py``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

from msgspec import Struct

from kei.adapters.files.bounded_read import read_at_most
from kei.adapters.files.leftovers import held_temp
from kei.adapters.store.urls import sqlite_path
from kei.errors import InputError

_STORE_SIBLINGS = ("", "-wal", "-shm", "-journal")
_KEY_SNIFF_BYTES = 64 * 1024
_FULL = (errno.ENOSPC, errno.EDQUOT)


class Protected(Struct, frozen=True):
    """What no output may replace: the store's files and the keys."""

    files: tuple[Path, ...] = ()
    folders: tuple[Path, ...] = ()
    keys: tuple[Path, ...] = ()

    @classmethod
    def of(cls, db_url: str, keys_dir: Path, key_file: Path | None = None) -> Protected:
        """The store at ``db_url`` (when it is a SQLite file), ``keys_dir`` and the key
        file in use."""
        files: list[Path] = []
        store = sqlite_path(db_url)
        if store is not None:
            files += [Path(f"{store}{suffix}") for suffix in _STORE_SIBLINGS]
        keys = () if key_file is None else (key_file,)
        return cls(tuple(files), (keys_dir,), keys)


def shown(path: str | os.PathLike[str]) -> str:
    """``path`` fit for one line on a terminal: control characters and bytes that are
    not UTF-8 escaped, so a hostile name cannot break the message or the terminal."""
    text = os.fspath(path)
    return "".join(
        c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF else repr(c)[1:-1] for c in text
    )


def check_output(
    name: str | os.PathLike[str], protected: Protected, *, force: bool = False
) -> Path:
    """The absolute path to write for ``name``, or an InputError saying why not."""
    text = os.fspath(name)
    if not text.strip():
        raise InputError("--out is empty", hint="name the file to write")
    path = Path(text)
    try:
        return _check(path, protected, force=force)
    except ValueError as exc:  # a NUL byte
        raise InputError(f"cannot write {shown(path)}: {exc}") from None
    except OSError as exc:
        raise InputError(f"cannot write {shown(path)}: {exc.strerror or exc}") from None


def _check(path: Path, protected: Protected, *, force: bool) -> Path:
    if path.name in ("", ".", ".."):
        raise InputError(f"cannot write {shown(path)}: it is a folder", hint="name a file")
    folder = path.parent.resolve()
    if not folder.is_dir():
        raise InputError(f"cannot write {shown(path)}: folder {shown(path.parent)} does not exist")
    target = folder / path.name
    _refuse_protected_name(target, protected)
    try:
        info = target.lstat()
    except FileNotFoundError:
        return target
    _refuse_existing(target, info, protected, force=force)
    return target


def _refuse_protected_name(target: Path, protected: Protected) -> None:
    for folder in protected.folders:
        inside = folder.resolve()
        if target == inside or inside in target.parents:
            raise _protected(target, "it is in the keys folder")
    for file, why in _named(protected):
        if target == _resolved(file):
            raise _protected(target, why)


def _refuse_existing(
    target: Path, info: os.stat_result, protected: Protected, *, force: bool
) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise InputError(
            f"refusing to write {shown(target)}: it is a symbolic link",
            hint="name the file itself",
        )
    if not stat.S_ISREG(info.st_mode):
        raise InputError(
            f"refusing to write {shown(target)}: it is {_kind(info.st_mode)}, not a regular file",
            hint="name a regular file",
        )
    same = (info.st_dev, info.st_ino)
    for file, why in _named(protected):
        if _identity(file) == same:
            raise _protected(target, why)
    for folder in protected.folders:
        if same in _identities(folder):
            raise _protected(target, "it is a key file (a link to one in the keys folder)")
    if _is_key(target):
        raise _protected(target, "it holds a kei key")
    if not force:
        raise InputError(
            f"refusing to overwrite {shown(target)}: it exists",
            hint="pass --force to replace it, or name another file",
        )


def _protected(target: Path, why: str) -> InputError:
    return InputError(
        f"refusing to write {shown(target)}: {why}", hint="name another file; it was not touched"
    )


def _named(protected: Protected) -> list[tuple[Path, str]]:
    """Each protected file, with why it is."""
    return [(f, "it is the live store (or one of its files)") for f in protected.files] + [
        (k, "it is the signing key file") for k in protected.keys
    ]


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def _identities(folder: Path) -> set[tuple[int, int]]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return set()
    found = set()
    for entry in entries:
        try:
            info = entry.stat()
        except OSError:
            continue
        found.add((info.st_dev, info.st_ino))
    return found


def _is_key(path: Path) -> bool:
    """Whether ``path`` reads as a kei key file (a small JSON object with a seed)."""
    try:
        head = read_at_most(path, _KEY_SNIFF_BYTES)
    except OSError:
        return False
    if len(head) > _KEY_SNIFF_BYTES:
        return False
    try:
        data = json.loads(head)
    except ValueError:
        return False
    return isinstance(data, dict) and "private_hex" in data


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def write_error(target: Path, exc: OSError) -> InputError:
    """One line for a write that failed; a full disk says so and what to do."""
    if exc.errno in _FULL:
        return InputError(
            f"cannot write {shown(target)}: the disk is full ({exc.strerror}); nothing was written",
            hint="free some space there, or write to another disk",
        )
    return InputError(f"cannot write {shown(target)}: {exc.strerror or exc}; nothing was written")


@contextlib.contextmanager
def aborting(abort: Callable[[], None], target: Path) -> Iterator[None]:
    """Run the block that finishes a write to ``target``; if anything in it fails,
    ``abort`` first (so the target stays as it was), and an OSError (a full disk)
    becomes the one-line ``write_error``."""
    try:
        yield
    except OSError as exc:
        abort()
        raise write_error(target, exc) from None
    except BaseException:
        abort()
        raise


class OutputFile:
    """A temporary file beside ``target`` that ``commit`` puts in its place.

    Leaving the ``with`` block without ``commit`` (an error, Ctrl-C) removes it. The
    name is checked (``check_output``) when the file is opened, and what it names then
    is the only file ``commit`` may replace.
    """

    def __init__(
        self, name: str | os.PathLike[str], protected: Protected, *, force: bool = False
    ) -> None:
        target = check_output(name, protected, force=force)
        self.target, self.force = target, force
        self._before = _lstat(target)
        try:
            self.tmp, fd = held_temp(target)
        except OSError as exc:
            raise write_error(target, exc) from None
        self.fh: IO[bytes] = os.fdopen(fd, "wb")
        self._done = False

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._done:
            self.abort()

    def commit(self) -> int:
        """Make the file durable and put it in place; its size in bytes."""
        with aborting(self.abort, self.target):
            self.fh.flush()
            os.fsync(self.fh.fileno())
            size = os.fstat(self.fh.fileno()).st_size
            self._place()  # still open, so still locked: a sweep cannot take it
            self.fh.close()
            _fsync_dir(self.target.parent)
        self._done = True
        return size

    def _place(self) -> None:
        now = _lstat(self.target)
        if now is not None and (self._before is None or not self.force):
            raise InputError(
                f"refusing to overwrite {shown(self.target)}: it appeared while kei wrote",
                hint="pass --force to replace it, or name another file",
            )
        if now is not None and self._before is not None:
            if (now.st_dev, now.st_ino, now.st_mode) != (
                self._before.st_dev,
                self._before.st_ino,
                self._before.st_mode,
            ):
                raise InputError(
                    f"refusing to overwrite {shown(self.target)}: it changed while kei wrote",
                    hint="run the command again",
                )
            os.replace(self.tmp, self.target)
            return
        try:
            os.link(self.tmp, self.target)  # fails if the name exists: never clobbers
        except FileExistsError:
            raise InputError(
                f"refusing to overwrite {shown(self.target)}: it appeared while kei wrote",
                hint="pass --force to replace it, or name another file",
            ) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV):
                raise
            os.replace(self.tmp, self.target)  # no hard links here: checked just above
            return
        os.unlink(self.tmp)

    def abort(self) -> None:
        """Drop the temporary file; the target stays as it was."""
        with contextlib.suppress(OSError):
            self.fh.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(
    name: str | os.PathLike[str], protected: Protected, data: bytes, *, force: bool = False
) -> int:
    """``data`` written to the file ``name`` through an ``OutputFile``; its size."""
    with OutputFile(name, protected, force=force) as out:
        try:
            out.fh.write(data)
        except OSError as exc:
            raise write_error(out.target, exc) from None
        return out.commit()
