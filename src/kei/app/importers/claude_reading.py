"""Reading one Claude Code session's transcripts, with no ledger at hand.

A session's files are opened, their lines parsed and its Task calls and results
gathered into a :class:`Session` (with the billed messages' prices, when a catalog
is given), which also carries what the report counts (lines,
files, malformed lines, skipped files); the import merges those in session order, so
the report is the same wherever the session was read.

:func:`read_sessions` reads a big tree in a helper process on the machine's other
core (``adapters/workers/claude_reader.py``) while this one prices, signs and
appends (it reads the first few sessions itself while the helper starts): a session
crosses as msgpack, and the pipe between the two holds about one
session, so memory stays flat. A small tree (under ``AHEAD_BYTES``, where starting
a process costs more than it saves) is read here, as is the rest of a tree whose
helper stopped.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import msgspec
from msgspec import Struct, field

from kei.app.cost_writes import price_request
from kei.app.importers.claude_files import SessionFiles, lines, subagent_of
from kei.domain.catalog.catalog import Catalog
from kei.domain.claude_code.subagents import Link, TaskCall, TaskResult
from kei.domain.claude_code.transcript import Billed, Malformed, parse_line, token_usage
from kei.domain.events import TokenUsage
from kei.errors import KeiError

log = logging.getLogger(__name__)
PROVIDER: Final = "anthropic"
AHEAD_BYTES: Final = 16_000_000  # a tree this big is read in a helper process
FIRST_BYTES: Final = 8_000_000  # read here while the helper starts (about 0.1 s)


class Priced(Struct, frozen=True, array_like=True):
    """A billed message's usage and price, as ``kei cost record`` prices it
    (``cost_writes.price_request``), or why it was refused."""

    usage: TokenUsage
    micro_cents: int = 0
    price_entry_id: str | None = None
    price_entry_hash: str | None = None
    unpriced: bool = False
    speed: str | None = None
    speed_unpriced: bool = False
    refused: str | None = None

    def fields(self) -> dict[str, Any]:
        """The cost event fields of the price (as ``Charge.fields``)."""
        return {"micro_cents": self.micro_cents, "price_entry_id": self.price_entry_id,
                "price_entry_hash": self.price_entry_hash, "unpriced": self.unpriced,
                "speed": self.speed, "speed_unpriced": self.speed_unpriced}  # fmt: skip


class Session(Struct):
    """One session's billed messages (file order) and, when read with a catalog, their
    prices (same order), its Task calls and their results, and what reading it
    counted for the report."""

    billed: list[Billed] = field(default_factory=list)
    priced: list[Priced] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)  # agentId -> tool_use_id
    calls: dict[str, TaskCall] = field(default_factory=dict)  # tool_use_id -> call
    ended: dict[str, TaskResult] = field(default_factory=dict)  # tool_use_id -> result
    cwd: str | None = None
    lines: int = 0
    files: int = 0
    bad: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, why)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)


DECODER: Final = msgspec.msgpack.Decoder(Session)


def read_session(session_id: str, files: Sequence[Path], catalog: Catalog | None = None) -> Session:
    """Every file of one session, parsed, its billed messages priced by ``catalog``
    when given; a file that cannot be read goes to ``skipped``."""
    session = Session()
    for path in files:
        try:
            _read_file(session, session_id, path)
        except (KeiError, OSError) as exc:
            session.skipped.append((str(path), str(exc)))
            continue
        session.files += 1
    if catalog is not None:
        session.priced = [price(catalog, b) for b in session.billed]
    return session


def price(catalog: Catalog, billed: Billed) -> Priced:
    """``billed`` priced as ``kei cost record`` prices it (a model the catalog cannot
    price is unpriced; one it names for another provider is refused)."""
    usage = token_usage(billed.usage)
    try:
        charge = price_request(catalog, PROVIDER, billed.model, usage, None, billed.usage.speed)
    except KeiError as exc:
        return Priced(usage, refused=str(exc))
    return Priced(usage, **charge.fields())


def _read_file(session: Session, session_id: str, path: Path) -> None:
    agent, name = subagent_of(path), str(path)
    billed, calls, bad = session.billed, session.calls, session.bad
    for number, raw in lines(path):
        session.lines += 1
        if raw is None:
            bad.append((name, number, "longer than the line bound"))
            continue
        found = parse_line(raw, number, session_id, agent, calls)
        if found is None:
            continue
        if isinstance(found, Billed):
            billed.append(found)
            session.cwd = session.cwd or found.cwd
            for call in found.calls:
                calls.setdefault(call.tool_use_id, call)
        elif isinstance(found, Link | TaskResult):
            if found.agent is not None:
                session.links.setdefault(found.agent, found.tool_use_id)
            if isinstance(found, TaskResult):
                session.ended.setdefault(found.tool_use_id, found)
        elif isinstance(found, Malformed):
            bad.append((name, found.line_no, found.reason))


@contextmanager
def read_sessions(
    groups: Sequence[SessionFiles],
    catalog: Catalog | None = None,
    *,
    helper: bool = True,
    ahead_bytes: int | None = None,
    first_bytes: int | None = None,
) -> Iterator[Iterator[Session]]:
    """Each of ``groups`` read, in order: the first ``first_bytes`` or so (at least one
    session) here, the rest in a helper process (started first, so it is ready when
    they are done) when ``helper`` and the groups hold at least ``ahead_bytes`` (see
    the module docstring), else here too (None: ``FIRST_BYTES``, ``AHEAD_BYTES``).
    Given a ``catalog``, the helper prices what it reads (sessions read here are not
    priced: the caller prices only the messages that are new)."""
    ahead = AHEAD_BYTES if ahead_bytes is None else ahead_bytes
    here_bytes = FIRST_BYTES if first_bytes is None else first_bytes
    sizes = [_size(g) for g in groups] if helper and len(groups) >= 2 else []
    if not sizes or sum(sizes) < ahead:
        yield (read_session(g.session, g.files) for g in groups)
        return
    first, total = 1, sizes[0]
    while first < len(groups) - 1 and total < here_bytes:
        total += sizes[first]
        first += 1
    from kei.adapters.workers.claude_reader import ReaderProcess

    rest = groups[first:]
    files = [(g.session, [str(f) for f in g.files]) for g in rest]
    with ReaderProcess(files, read_session, catalog) as reader:
        here = (read_session(g.session, g.files) for g in groups[:first])
        yield itertools.chain(here, _sessions(rest, reader.received()))


def _sessions(groups: Sequence[SessionFiles], received: Iterator[bytes]) -> Iterator[Session]:
    done = 0
    for data in received:
        yield DECODER.decode(data)
        done += 1
    for group in groups[done:]:  # the helper stopped early: the rest is read here
        yield read_session(group.session, group.files)


def _size(group: SessionFiles) -> int:
    total = 0
    for path in group.files:
        try:
            total += path.stat().st_size
        except OSError:
            continue
    return total
