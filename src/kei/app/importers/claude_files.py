"""Finding and reading Claude Code transcripts without trusting them.

A folder is walked for ``*.jsonl`` (symbolic links are not followed, so a loop or a link
out of the tree is never read); a file named directly is read as it is. Files group by
session: ``<project>/<session>.jsonl`` and the sub-agents' ``<project>/<session>/subagents/
agent-<agentId>.jsonl``. Sessions are read oldest first (by the first timestamp of their
main file, as ccusage orders files), so a message a resumed session copied counts where
it was first billed.

Only regular files are opened (``bounded_read.open_regular``); a file over
``LIMITS.max_transcript_bytes`` is skipped and reported, and a line over
``LIMITS.max_line_bytes`` is reported as malformed and skipped without being held.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from msgspec import Struct, field

from kei.domain.claude_code.transcript import rfc3339_us
from kei.errors import InputError
from kei.limits import LIMITS

SUBAGENTS: Final = "subagents"
AGENT_PREFIX: Final = "agent-"
_HEAD_LINES: Final = 64  # lines read for a file's first timestamp
_TS: Final = re.compile(rb'"timestamp"\s*:\s*"([^"]{1,64})"')


class SessionFiles(Struct):
    """One session's transcripts: its main file (when present) and its sub-agents'."""

    key: tuple[str, str]  # (folder, session): a session id may recur in two projects
    main: Path | None = None
    subagents: list[Path] = field(default_factory=list)

    @property
    def session(self) -> str:
        return self.key[1]

    @property
    def files(self) -> list[Path]:
        return ([self.main] if self.main is not None else []) + sorted(self.subagents)


def discover(paths: Iterable[Path], skipped: list[tuple[str, str]]) -> list[SessionFiles]:
    """Every session under ``paths``, oldest first; what cannot be read goes to ``skipped``."""
    sessions: dict[tuple[str, str], SessionFiles] = {}
    for path in paths:
        if path.is_dir():
            found = sorted(_walk(path))
        elif path.exists():
            found = [path]
        else:
            skipped.append((str(path), "no such file or folder"))
            continue
        for file in found:
            _place(sessions, file)
    return sorted(sessions.values(), key=_age)


def subagent_of(path: Path) -> str | None:
    """The ``agentId`` a sub-agent's file is named for, None for a session's main file."""
    if path.parent.name != SUBAGENTS or not path.stem.startswith(AGENT_PREFIX):
        return None
    return path.stem.removeprefix(AGENT_PREFIX) or None


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in files:
            if name.endswith(".jsonl"):
                yield Path(folder, name)


def _place(sessions: dict[tuple[str, str], SessionFiles], file: Path) -> None:
    if subagent_of(file) is not None:
        session_dir = file.parent.parent
        key = (str(session_dir.parent), session_dir.name)
        sessions.setdefault(key, SessionFiles(key)).subagents.append(file)
    else:
        key = (str(file.parent), file.stem)
        sessions.setdefault(key, SessionFiles(key)).main = file


def _age(group: SessionFiles) -> tuple[int, str]:
    first = _first_us(group.files[0]) if group.files else None
    return (first if first is not None else 2**63, str(group.key))


def _first_us(path: Path) -> int | None:
    """The first timestamp in the first lines of ``path`` (None when there is none)."""
    try:
        with path.open("rb") as handle:
            for _ in range(_HEAD_LINES):
                line = handle.readline(LIMITS.max_line_bytes)
                if not line:
                    return None
                match = _TS.search(line)
                found = rfc3339_us(match[1].decode("ascii", "replace")) if match else None
                if found is not None:
                    return found
    except OSError:
        return None
    return None


def lines(path: Path) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, line)`` of ``path``; ``None`` for a line over the length bound
    (read past, never held). Refuses, as an ``InputError``, a file that is not regular
    or is over the size bound."""
    from kei.adapters.files.bounded_read import open_regular

    cap = LIMITS.max_line_bytes
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > LIMITS.max_transcript_bytes:
            raise InputError(f"larger than {LIMITS.max_transcript_bytes} bytes ({size})")
        number = 0
        while line := handle.readline(cap + 1):
            number += 1
            if len(line) <= cap or line.endswith(b"\n"):
                yield number, line
                continue
            while (rest := handle.readline(cap + 1)) and not rest.endswith(b"\n"):
                pass
            yield number, None
