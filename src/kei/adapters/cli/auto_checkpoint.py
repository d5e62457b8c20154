"""Automatic checkpoints: after a write command, one more signed checkpoint in a folder
outside the store once the log has grown by ``KEI_CHECKPOINT_EVERY`` events.

Settings (environment): ``KEI_CHECKPOINT_EVERY=N`` turns it on (unset or 0: off);
``KEI_CHECKPOINT_DIR`` is the folder (default ``KEI_HOME/checkpoints``; never the
store's own folder: that one is refused, since whoever can rewrite the store could
rewrite its checkpoints too). Files are named by the size they cover,
``<size, 20 digits>.ckpt``, and written through ``safe_output`` (atomically, never over an
existing file). A checkpoint is written when the log holds at least N more events than
the largest one in the folder. This runs in the CLI, after the write committed: a
failure is one warning line on stderr, never a failed write command.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kei.adapters.cli.config import Settings
    from kei.app.ledger.ledger import Ledger

_NAME = re.compile(r"^(\d{20})\.ckpt$")


def settings_folder(settings: Settings) -> tuple[int, Path] | None:
    """(every, folder) from the environment, or None when automatic checkpoints are off."""
    raw = os.environ.get("KEI_CHECKPOINT_EVERY", "").strip()
    if not raw or raw == "0":
        return None
    if not raw.isdigit():
        raise ValueError(f"KEI_CHECKPOINT_EVERY={raw[:20]!r} is not a whole number")
    folder = os.environ.get("KEI_CHECKPOINT_DIR") or str(settings.home / "checkpoints")
    return int(raw), Path(folder).expanduser()


def last_size(folder: Path) -> int:
    """The largest size among the folder's checkpoint files (0: none)."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return 0
    sizes = [int(m.group(1)) for m in map(_NAME.match, names) if m]
    return max(sizes, default=0)


def checkpoint_path(folder: Path, size: int) -> Path:
    return folder / f"{size:020d}.ckpt"


def maybe_checkpoint(ledger: Ledger, settings: Settings) -> Path | None:
    """Write a checkpoint when due; the file written, or None. Raises on failure."""
    from kei.adapters.files.keyfile import make_private_folder
    from kei.adapters.files.safe_output import write_bytes
    from kei.adapters.store.urls import sqlite_path

    found = settings_folder(settings)
    if found is None:
        return None
    every, folder = found
    store_file = sqlite_path(settings.db_url)
    if store_file is not None and folder.resolve() == store_file.parent.resolve():
        raise ValueError(f"KEI_CHECKPOINT_DIR {folder} is the store's own folder")
    if ledger.store.max_position() - last_size(folder) < every:  # positions: 1, 2, ...
        return None
    text = ledger.checkpoint()
    size = int(text.split("\n", 2)[1])
    make_private_folder(folder)
    path = checkpoint_path(folder, size)
    write_bytes(path, settings.protected(), text.encode())
    return path
