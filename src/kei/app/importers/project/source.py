"""The repository to import: a folder as given, or a URL cloned for the run.

A URL (``https://``, ``ssh://``, ``git://``, ``file://`` or ``user@host:path``) is
cloned with ``git clone --depth=1`` into a fresh temporary folder that is removed
when the run ends, however it ends (upstream left ``$TMP/kei-import-<pid>`` behind
on errors unless asked). The source named in the log is the URL without its user
name or password.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from msgspec import Struct

from kei.errors import ProjectSourceError

CLONE_TIMEOUT_S: Final = 600
_URL: Final = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)", re.IGNORECASE)


class Source(Struct, frozen=True):
    """The folder to walk, what the log calls it, and its HEAD commit if a git tree."""

    root: Path
    shown: str
    commit: str | None
    name: str


def is_url(text: str) -> bool:
    return bool(_URL.match(text))


@contextmanager
def opened(source: str) -> Iterator[Source]:
    """The folder of ``source``; a clone is removed on leaving, error or not."""
    if not is_url(source):
        root = Path(source).expanduser()
        if not root.is_dir():
            raise ProjectSourceError(f"{source}: no such folder", hint="give a folder or a git URL")
        resolved = root.resolve()
        yield Source(resolved, str(resolved), head_commit(resolved), resolved.name or "project")
        return
    shown = without_credentials(source)
    scratch = Path(tempfile.mkdtemp(prefix="kei-import-"))
    try:
        clone = scratch / "repo"
        _clone(source, shown, clone)
        yield Source(clone, shown, head_commit(clone), name_of_url(shown))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _clone(url: str, shown: str, into: Path) -> None:
    command = ["git", "clone", "--quiet", "--depth=1", "--no-tags", "--", url, str(into)]
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=CLONE_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL,
            env={"GIT_TERMINAL_PROMPT": "0", "PATH": _path()},
        )  # fmt: skip
    except FileNotFoundError:
        raise ProjectSourceError(
            "git is not installed", hint="install git to clone a URL"
        ) from None
    except subprocess.TimeoutExpired:
        raise ProjectSourceError(f"cloning {shown} took over {CLONE_TIMEOUT_S} s") from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        last = why[-1][:300] if why else f"git exited {done.returncode}"
        raise ProjectSourceError(
            f"cannot clone {shown}: {last.replace(url, shown)}",
            hint="check the URL and that it is reachable without a password prompt",
        )


def head_commit(root: Path) -> str | None:
    """HEAD's commit id when ``root`` is a git work tree's top, else None."""
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--verify", "-q", "HEAD"],
            capture_output=True, timeout=30, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = done.stdout.decode("ascii", "replace").strip()
    return text if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", text) else None


def without_credentials(url: str) -> str:
    """``url`` with any user name and password taken out."""
    parts = urlsplit(url)
    if parts.scheme and "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    if parts.scheme:
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return url.split("@", 1)[1] if "@" in url.split(":", 1)[0] else url


def name_of_url(url: str) -> str:
    tail = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return tail.removesuffix(".git") or "project"


def _path() -> str:
    import os

    return os.environ.get("PATH", "/usr/bin:/bin")
