"""``kei import claude-code``: one ``cost.recorded`` per billed message of Claude Code's
transcripts, linked to the session, its project and, where the transcript shows it, the
sub-agent.

Each billed message (``kei.domain.claude_code.transcript``) is priced by the writer
``kei cost record`` uses (``cost_writes.price_request``: the catalog, so kei's pricing
applies; a model it cannot price is recorded unpriced) and recorded by
``cost_writes.record_costs`` with ``origin`` = (``claude-code``,
the message's time, its dedupe key ``message.id:requestId``), the session id and its
working directory. A re-run, or a resumed session that copied earlier lines, appends
nothing new: keys already recorded are read from the log first, and the writer leaves
out any its agent's stream already holds (another import that came first).

The agent: ``claude-session-<session_id>``, the root the hook forks
(``app/hooks/calls.py``); a sub-agent's message goes to the sub-agent, named by the Task
call's ``tool_use_id`` as the hook names it, when the session's transcript links the
two. An agent the ledger lacks is forked first as the hook would fork it, so importing
before (or without) the hook works and a later hook call finds it there.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec
from msgspec import Struct, field

from kei.app.agent_writes import agent_stream
from kei.app.cost_writes import price_request, record_costs
from kei.app.hooks.calls import ClaudeCall, fork_request, root_request, session_agent_id
from kei.app.hooks.recording import ensure_forked
from kei.app.importers.claude_files import SessionFiles, discover, lines, subagent_of
from kei.app.ledger.ledger import Ledger
from kei.domain.catalog.catalog import Catalog
from kei.domain.claude_code.transcript import Billed, Link, Malformed, parse_line, token_usage
from kei.domain.events import CostRecorded, Origin
from kei.domain.log.recorded import RecordedEvent
from kei.errors import InputError, KeiError

SOURCE: Final = "claude-code"
PROVIDER: Final = "anthropic"
KEPT: Final = 1_000  # malformed lines listed in a report; the rest are counted


class BadLine(Struct, frozen=True):
    file: str
    line: int
    why: str


class ClaudeImportReport(Struct):
    """What one import read, recorded and left out (and why)."""

    sources: list[str]
    dry_run: bool = False
    files: int = 0
    lines: int = 0
    sessions: int = 0
    billed: int = 0  # distinct billed messages read
    repeated: int = 0  # lines repeating a message already read in this run
    already: int = 0  # messages kei recorded before this run
    events_appended: int = 0  # cost events appended (a dry run: would append)
    agents_forked: int = 0
    micro_cents: int = 0  # what the appended events cost
    unpriced: dict[str, int] = field(default_factory=dict)  # model -> messages recorded unpriced
    malformed: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)
    skipped_files: list[list[str]] = field(default_factory=list)  # [path, why]
    refused: list[list[str]] = field(default_factory=list)  # [agent or message, why]: not recorded

    def bad(self, file: Path, line: int, why: str) -> None:
        self.malformed += 1
        if len(self.bad_lines) < KEPT:
            self.bad_lines.append(BadLine(str(file), line, why))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data


class _Keys(Struct):
    """Dedupe keys: those kei held before this run, and those this run has read."""

    before: set[str]
    seen: set[str] = field(default_factory=set)

    def new(self, key: str, report: ClaudeImportReport) -> bool:
        """Is ``key`` a message to record? Counts it in ``report`` either way."""
        if key in self.seen:
            report.repeated += 1
            return False
        self.seen.add(key)
        if key in self.before:
            report.already += 1
            return False
        report.billed += 1
        return True


class _Session(Struct):
    """One session's billed messages (file order) and its Task links."""

    billed: list[Billed] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)  # agentId -> tool_use_id
    cwd: str | None = None


def import_claude_code(
    ledger: Ledger, paths: Sequence[Path], catalog: Catalog, *, dry_run: bool = False
) -> ClaudeImportReport:
    """Import every transcript under ``paths`` (see the module docstring)."""
    report = ClaudeImportReport([str(p) for p in paths], dry_run=dry_run)
    skipped: list[tuple[str, str]] = []
    groups = discover(paths, skipped)
    keys = _Keys(recorded_keys(ledger))
    for group in groups:
        session = _read(group, report, skipped)
        if session.billed:
            report.sessions += 1
            _record(ledger, catalog, session, keys, report)
    report.skipped_files = [list(s) for s in skipped]
    return report


def recorded_keys(ledger: Ledger) -> set[str]:
    """The dedupe key of every message an import recorded (their cost events' refs),
    the log read in pages so memory holds the keys, not the events."""
    from kei.adapters.store.base import iter_all

    keys = set()
    for record in iter_all(ledger.store):
        if record.type != "cost.recorded":
            continue
        origin = getattr(RecordedEvent.from_record(record).payload(), "origin", None)
        if isinstance(origin, Origin) and origin.source == SOURCE and origin.ref is not None:
            keys.add(origin.ref)
    return keys


def _read(
    group: SessionFiles, report: ClaudeImportReport, skipped: list[tuple[str, str]]
) -> _Session:
    session = _Session()
    for path in group.files:
        agent = subagent_of(path)
        try:
            for number, raw in lines(path):
                report.lines += 1
                found = parse_line(raw, number, group.session, agent) if raw is not None else None
                if raw is None:
                    report.bad(path, number, "longer than the line bound")
                elif isinstance(found, Billed):
                    session.billed.append(found)
                    session.cwd = session.cwd or found.cwd
                elif isinstance(found, Link):
                    session.links.setdefault(found.agent, found.tool_use_id)
                elif isinstance(found, Malformed):
                    report.bad(path, found.line_no, found.reason)
        except (KeiError, OSError) as exc:
            skipped.append((str(path), str(exc)))
            continue
        report.files += 1
    return session


def _record(
    ledger: Ledger,
    catalog: Catalog,
    session: _Session,
    keys: _Keys,
    report: ClaudeImportReport,
) -> None:
    """Price, link and record one session's new messages, agent by agent."""
    by_agent: dict[str, list[CostRecorded]] = {}
    parents: dict[str, str] = {}
    unpriced: Counter[str] = Counter(report.unpriced)
    for billed in session.billed:
        if not keys.new(billed.key, report):
            continue
        root = session_agent_id(billed.session)
        agent = session.links.get(billed.agent or "", root)
        if agent != root:
            parents[agent] = billed.session
        try:
            request = _request(catalog, billed, agent, session.cwd)
        except KeiError as exc:  # e.g. the catalog names the model for another provider
            report.refused.append([billed.key, str(exc)])
            continue
        unpriced[billed.model] += request.unpriced
        by_agent.setdefault(agent, []).append(request)
    report.unpriced = {m: n for m, n in sorted(unpriced.items()) if n}
    for agent, requests in by_agent.items():
        report.micro_cents += sum(r.micro_cents for r in requests)
        if report.dry_run:
            report.events_appended += len(requests)
            continue
        try:
            report.agents_forked += _ensure_agent(ledger, agent, parents.get(agent), requests[0])
            report.events_appended += record_costs(ledger, agent, requests)
        except KeiError as exc:  # e.g. a value the log refuses: the other agents go on
            report.refused.append([agent, str(exc)])


def _request(catalog: Catalog, billed: Billed, agent: str, cwd: str | None) -> CostRecorded:
    """The event for one message, priced as ``kei cost record`` prices it (a model the
    catalog cannot price is recorded unpriced)."""
    usage = token_usage(billed.usage)
    charge = price_request(catalog, PROVIDER, billed.model, usage, None)
    return CostRecorded(
        agent_id=agent, provider=PROVIDER, model=billed.model, usage=usage, **charge.fields(),
        origin=Origin(source=SOURCE, occurred_at_us=billed.at_us, ref=billed.key),
        session=billed.session, cwd=cwd,
    )  # fmt: skip


def _ensure_agent(
    ledger: Ledger, agent: str, parent_session: str | None, first: CostRecorded
) -> int:
    """Fork the session root, and the sub-agent below it, unless the ledger has them."""
    session = first.session or ""
    call = ClaudeCall(event="PreToolUse", session_id=parent_session or session, cwd=first.cwd,
                      tool_name="Task", tool_use_id=agent if parent_session else None)  # fmt: skip
    forked = 0
    wanted = [root_request(call, None)]
    if parent_session is not None:
        at_s = (first.origin.occurred_at_us or 0) // 1_000_000 if first.origin else 0
        wanted.append(fork_request(call, None, at_s))
    for request in wanted:
        if ledger.store.stream_version(agent_stream(request.agent_id)) == 0:
            forked += ensure_forked(ledger, request) > 0
    return forked


def sources(explicit: Iterable[Path], home: Path, config_dir: str | None) -> list[Path]:
    """The paths to read: those given (each must exist: a typo is refused before anything
    is read, never an empty import), else ``~/.claude/projects`` and, when set,
    ``$CLAUDE_CONFIG_DIR/projects`` (those that exist; refused when none does)."""
    given = list(explicit)
    for path in given:
        if not os.path.lexists(path):
            raise InputError(
                f"{path}: no such file or folder",
                hint="name a transcript (.jsonl) or a folder of them, e.g. ~/.claude/projects",
            )
    if given:
        return given
    found = [home / ".claude" / "projects"]
    if config_dir:
        found += [Path(d.strip()) / "projects" for d in config_dir.split(",") if d.strip()]
    unique = list(dict.fromkeys(p.resolve() if p.exists() else p for p in found))
    roots = [p for p in unique if p.is_dir()]
    if not roots:
        raise InputError(
            "no Claude Code transcripts: neither ~/.claude/projects nor "
            "$CLAUDE_CONFIG_DIR/projects exists",
            hint="give the PATH of a projects folder or of a transcript",
        )
    return roots
