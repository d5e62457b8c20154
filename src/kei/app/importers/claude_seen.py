"""What a Claude Code import remembers while it runs: every dedupe key met and every
sub-agent already closed, kept on disk so memory stays flat however big the tree.

Both start from the log, read once a page at a time (``iter_all``): the ``origin.ref``
of every cost event an import recorded (state ``BEFORE``) and every agent whose stream
holds a ``done``, ``failed`` or ``merged`` event. They then live in a throw-away SQLite
index (``adapters/files/scratch_index.py``), which the import deletes when it ends, so
the process holds one session's keys at a time instead of a Python set that grew with
the input (129 MB for a 1 GB tree). Dedupe stays exact: the keys themselves are stored,
not a digest of them.

A session's keys are sorted in one batch (:meth:`Seen.sort`), with the rule the sets
had: the first line of a key in this run is new, or ``already`` when the log held it;
every later line of it is ``repeated``. A key the log held is never recorded, so which
of its lines came first only matters to those two counts: its lines are tallied
(appended, no index to update) and counted at the end (:meth:`Seen.before_counts`),
which keeps a re-run, where every key is such a key, cheap. Both sets are hints for
speed and for the report; the writers still decide from the agent's own stream
(``record_costs`` leaves out a ref it holds, the agent rules refuse a second close).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

import msgspec
from msgspec import Struct, field

from kei.adapters.files.scratch_index import ScratchIndex
from kei.app.closing import Closing
from kei.app.ledger.ledger import Ledger
from kei.domain.claude_code.transcript import Billed
from kei.domain.events import Origin
from kei.domain.log.recorded import RecordedEvent
from kei.errors import InputError

SOURCE: Final = "claude-code"
BEFORE: Final = 0  # recorded in the log before this run, not met in it yet
SEEN: Final = 1  # met in this run
KEYS: Final = "keys"
CLOSED: Final = "closed"
MET: Final = "met"  # a tally: one entry per session that met a key the log held
PAGE: Final = 5_000  # keys written to the index at a time while the log is read
_AGENT: Final = "agent/"
_CLOSING_TYPES: Final = frozenset({"agent.completed", "agent.failed", "agent.merged"})


class Sorted(Struct):
    """One session's billed lines sorted by key: the new messages, and the counts."""

    new: list[Billed] = field(default_factory=list)
    repeated: int = 0  # lines whose key was met earlier in this run (keys the log held: later)


class Seen(Closing):
    """The run's dedupe keys and closed agents (see the module docstring)."""

    def __init__(self, index: ScratchIndex) -> None:
        self._index = index
        self.logged = 0  # the keys the log held (an import's first run: 0)

    @classmethod
    def from_log(cls, ledger: Ledger) -> Seen:
        """The keys and closed agents the log holds, read a page at a time."""
        from kei.adapters.store.base import iter_all

        seen = cls(ScratchIndex((KEYS, CLOSED), (MET,)))
        try:
            keys: list[tuple[str, int]] = []
            closed: list[tuple[str, int]] = []
            for record in iter_all(ledger.store):
                if record.type == "cost.recorded":
                    ref = _import_ref(RecordedEvent.from_record(record))
                    if ref is not None:
                        keys.append((ref, BEFORE))
                        seen.logged += 1
                elif record.type in _CLOSING_TYPES and record.stream.startswith(_AGENT):
                    closed.append((record.stream.removeprefix(_AGENT), BEFORE))
                if len(keys) >= PAGE:
                    seen._index.put_many(KEYS, keys)
                    keys.clear()
            seen._index.put_many(KEYS, keys)
            seen._index.put_many(CLOSED, closed)
        except BaseException:
            seen.close()
            raise
        return seen

    def sort(self, billed: Sequence[Billed]) -> Sorted:
        """``billed`` (file order) sorted by the rule above; their keys are met now."""
        now = self._index.get_many(KEYS, (b.key for b in billed))
        here: set[str] = set()
        logged: list[str] = []
        found = Sorted()
        for line in billed:
            key = line.key
            if key in here:
                found.repeated += 1
                continue
            here.add(key)
            state = now.get(key)
            if state == SEEN:
                found.repeated += 1
            elif state == BEFORE:
                logged.append(key)
            else:
                found.new.append(line)
        self._index.put_many(KEYS, ((b.key, SEEN) for b in found.new))
        self._index.add_many(MET, logged)
        return found

    def before_counts(self) -> tuple[int, int]:
        """Of the lines whose key the log held (one per session that met it): the
        messages (``already``) and the later lines of one (``repeated``)."""
        lines, keys = self._index.tally(MET)
        return keys, lines - keys

    def closed(self, agents: Iterable[str]) -> set[str]:
        """Those of ``agents`` known to be closed (by the log, or by this run)."""
        return set(self._index.get_many(CLOSED, agents))

    def mark_closed(self, agents: Iterable[str]) -> None:
        self._index.put_many(CLOSED, ((a, SEEN) for a in agents))

    def close(self) -> None:
        self._index.close()


class _Origins(Struct):
    """The one field of a cost payload the scan needs; msgspec skips the others unread."""

    origin: Origin | None = None


_ORIGINS: Final = msgspec.msgpack.Decoder(_Origins)


def _import_ref(event: RecordedEvent) -> str | None:
    """The dedupe key of a cost event an import recorded (None for any other)."""
    try:
        origin = _ORIGINS.decode(event.payload_bytes).origin
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # as RecordedEvent.payload
        raise InputError(f"payload of {event.type} does not decode: {exc}") from exc
    if origin is not None and origin.source == SOURCE and origin.ref is not None:
        return origin.ref
    return None
