"""The migrations folder: reading its ``.sql`` files and writing ``create``'s pair.

Reading: a folder that does not exist holds no migrations (as upstream); only regular
files whose names end in ``.sql`` are read, each at most ``MAX_FILE_BYTES``, through
``open_regular`` (a FIFO or device named ``x.sql`` is refused, never read).
Writing: both files are created with ``O_EXCL``, so an existing file is never
overwritten (another ``create`` racing this one included); if the second cannot be
written the first is removed, so nothing half-made stays behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from kei.adapters.files.bounded_read import open_regular
from kei.domain.migrate.naming import NewFiles
from kei.domain.migrate.scripts import UP_SUFFIX, ScriptFile
from kei.errors import InputError

MAX_FILE_BYTES: Final = 64 << 20
MAX_FILES: Final = 100_000


def read_folder(folder: Path) -> list[ScriptFile]:
    """Every ``.sql`` file of ``folder`` (none when it does not exist)."""
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise InputError(f"{folder} is not a folder", hint="pass --dir FOLDER") from None
    except OSError as exc:
        raise InputError(f"cannot list {folder}: {exc.strerror or exc}") from None
    if len(names) > MAX_FILES:
        raise InputError(f"{folder} holds over {MAX_FILES} files; is it the right folder?")
    files = []
    for name in names:
        path = folder / name
        if not name.endswith(UP_SUFFIX) or path.is_dir():
            continue
        with open_regular(path) as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise InputError(f"{path} is over {MAX_FILE_BYTES >> 20} MiB")
        files.append((name, data))
    return files


def folder_names(folder: Path) -> list[str]:
    """The file names in ``folder`` (none when it does not exist)."""
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise InputError(f"cannot list {folder}: {exc.strerror or exc}") from None


def write_new(folder: Path, files: NewFiles) -> tuple[Path, Path]:
    """Write the pair, refusing to overwrite anything; the paths written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {folder}: {exc.strerror or exc}") from None
    up, down = folder / files.up_file, folder / files.down_file
    _exclusive(up, files.up_text)
    try:
        _exclusive(down, files.down_text)
    except BaseException:
        up.unlink(missing_ok=True)
        raise
    return up, down


def _exclusive(path: Path, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        raise InputError(f"{path} already exists; nothing was overwritten") from None
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
