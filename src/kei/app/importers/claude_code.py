"""``kei import claude-code``: one ``cost.recorded`` per billed message of Claude Code's
transcripts, linked to the session, its project and, where the transcript shows it, the
sub-agent.

Each billed message (``kei.domain.claude_code.transcript``) is priced by the writer
``kei cost record`` uses (``cost_writes.price_request``: the catalog, so kei's pricing
applies; a model it cannot price is recorded unpriced) and recorded by
``cost_writes.record_costs`` with ``origin`` = (``claude-code``,
the message's time, its dedupe key ``message.id:requestId``), the session id and its
working directory. A fast-mode message (``usage.speed``) is priced at its entry's fast
rates, or at standard rates and marked ``speed_unpriced`` (counted in the report). A re-run, or a resumed session that copied earlier lines, appends
nothing new: keys already recorded are read from the log first, and the writer leaves
out any its agent's stream already holds (another import that came first).

The agent: ``claude-session-<session_id>``, the root the hook forks
(``app/hooks/calls.py``); a sub-agent's message goes to the sub-agent, named by the Task
call's ``tool_use_id`` as the hook names it, when the session's transcript links the
two. An agent the ledger lacks is forked first as the hook would fork it, so importing
before (or without) the hook works and a later hook call finds it there. A sub-agent
whose Task call's result is in the transcript is then closed, done or failed, by the
hook's own rules (``claude_closing.py``), once, before its costs land (a close reads
the agent's whole stream, checked; costs are allowed in any status, and with the hook
installed they land after its close anyway). Costs of several sessions go in one
append (``FLUSH_EVENTS``): each append is a transaction, a disk sync.

Memory stays flat: sessions are read and recorded one at a time, and the dedupe keys
and closed agents of the whole run live in a throw-away index on disk
(``claude_seen.py``), not in sets that grow with the tree. With ``helpers``, a big tree
is read (and, on a first import, priced) in a helper process a session or so ahead
(``claude_reading.py``); the writes all stay here.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

from kei.app.agent_writes import agent_stream
from kei.app.cost_writes import record_costs, record_costs_of
from kei.app.hooks.calls import ClaudeCall, fork_request, root_request, session_agent_id
from kei.app.hooks.recording import ensure_forked
from kei.app.importers.claude_closing import close_ended
from kei.app.importers.claude_files import SessionFiles, discover
from kei.app.importers.claude_reading import PROVIDER, Priced, Session, price, read_sessions
from kei.app.importers.claude_report import BadLine, ClaudeImportReport
from kei.app.importers.claude_seen import SOURCE, Seen
from kei.app.ledger.ledger import Ledger
from kei.domain.catalog.catalog import Catalog
from kei.domain.claude_code.transcript import Billed
from kei.domain.events import CostRecorded, Origin
from kei.errors import InputError, KeiError

__all__ = ["BadLine", "ClaudeImportReport", "import_claude_code", "sources"]
FLUSH_EVENTS: Final = 1_000  # cost events held across sessions before they are appended


class _Pending:
    """Costs of several sessions appended together: one transaction (a disk sync) for
    many agents instead of one each. Holds at most about ``FLUSH_EVENTS`` events."""

    def __init__(self, ledger: Ledger, report: ClaudeImportReport) -> None:
        self.ledger, self.report = ledger, report
        self.costs: dict[str, list[CostRecorded]] = {}
        self.events = 0

    def add(self, agent: str, requests: list[CostRecorded]) -> None:
        self.costs.setdefault(agent, []).extend(requests)
        self.events += len(requests)

    def flush(self) -> None:
        report = self.report
        try:
            report.events_appended += record_costs_of(self.ledger, self.costs)
        except KeiError:  # one agent's value the log refuses: the others go on without it
            for agent, requests in self.costs.items():
                try:
                    report.events_appended += record_costs(self.ledger, agent, requests)
                except KeiError as exc:
                    report.refused.append([agent, str(exc)])
        self.costs, self.events = {}, 0


def import_claude_code(
    ledger: Ledger,
    paths: Sequence[Path],
    catalog: Catalog,
    *,
    dry_run: bool = False,
    helpers: bool = True,
) -> ClaudeImportReport:
    """Import every transcript under ``paths`` (see the module docstring); ``helpers``:
    a big tree may be read in a helper process (``claude_reading.read_sessions``)."""
    report = ClaudeImportReport([str(p) for p in paths], dry_run=dry_run)
    skipped: list[tuple[str, str]] = []
    groups = discover(paths, skipped)
    with Seen.from_log(ledger) as seen:
        # on a first import nearly every message is new: the helper prices them
        pricing = None if seen.logged else catalog
        with read_sessions(groups, pricing, helper=helpers) as sessions:
            _import(ledger, catalog, groups, sessions, seen, report, skipped)
        already, repeated = seen.before_counts()
    report.already += already
    report.repeated += repeated
    report.skipped_files = [list(s) for s in skipped]
    return report


def _import(
    ledger: Ledger,
    catalog: Catalog,
    groups: Sequence[SessionFiles],
    sessions: Iterable[Session],
    seen: Seen,
    report: ClaudeImportReport,
    skipped: list[tuple[str, str]],
) -> None:
    """Record each session's new messages and close its ended sub-agents, in order."""
    pending = _Pending(ledger, report)
    for group, session in zip(groups, sessions, strict=True):
        _count(report, session, skipped)
        if session.billed:
            report.sessions += 1
        costed = _record(ledger, catalog, session, seen, pending) if session.billed else set()
        if session.ended:  # forked, not yet costed: the close reads a one-row stream
            close_ended(ledger, group.session, session.ended.values(), session.calls,
                        seen=seen, report=report, cwd=session.cwd, costed=costed)  # fmt: skip
        if pending.events >= FLUSH_EVENTS:
            pending.flush()
    pending.flush()


def _count(report: ClaudeImportReport, session: Session, skipped: list[tuple[str, str]]) -> None:
    """What reading ``session`` counted, into the report (in session order)."""
    report.lines += session.lines
    report.files += session.files
    for file, number, why in session.bad:
        report.bad(file, number, why)
    skipped += session.skipped


def _record(
    ledger: Ledger,
    catalog: Catalog,
    session: Session,
    seen: Seen,
    pending: _Pending,
) -> set[str]:
    """Price and link one session's new messages, fork their agents and hand the costs
    to ``pending``; returns the agents they go to."""
    report = pending.report
    by_agent: dict[str, list[CostRecorded]] = {}
    parents: dict[str, str] = {}
    unpriced: Counter[str] = Counter(report.unpriced)
    slow: Counter[str] = Counter(report.speed_unpriced)
    found = seen.sort(session.billed)
    report.repeated += found.repeated
    report.billed += len(found.new)
    prices = {id(b): p for b, p in zip(session.billed, session.priced, strict=False)}
    for billed in found.new:
        root = session_agent_id(billed.session)
        agent = session.links.get(billed.agent or "", root)
        if agent != root:
            parents[agent] = billed.session
        priced = prices.get(id(billed))
        priced = price(catalog, billed) if priced is None else priced  # not priced yet
        if priced.refused is not None:  # e.g. the catalog names the model for another provider
            report.refused.append([billed.key, priced.refused])
            continue
        request = _request(billed, agent, session.cwd, priced)
        unpriced[billed.model] += request.unpriced
        slow[billed.model] += request.speed_unpriced
        by_agent.setdefault(agent, []).append(request)
    report.unpriced = {m: n for m, n in sorted(unpriced.items()) if n}
    report.speed_unpriced = {m: n for m, n in sorted(slow.items()) if n}
    # Every agent is forked before any cost lands: a sub-agent's fork reads its parent's
    # stream (its first row, checked), and roots come first.
    for agent, requests in sorted(by_agent.items(), key=lambda item: item[0] in parents):
        report.micro_cents += sum(r.micro_cents for r in requests)
        if report.dry_run:
            report.events_appended += len(requests)
            continue
        try:
            report.agents_forked += _ensure_agent(ledger, agent, parents.get(agent), requests[0])
        except KeiError as exc:  # e.g. a value the log refuses: the other agents go on
            report.refused.append([agent, str(exc)])
            continue
        pending.add(agent, requests)
    return set(by_agent)


def _request(billed: Billed, agent: str, cwd: str | None, priced: Priced) -> CostRecorded:
    """The event for one message, at its price (``claude_reading.price``: as ``kei cost
    record`` prices it; a model the catalog cannot price is recorded unpriced)."""
    return CostRecorded(
        agent_id=agent, provider=PROVIDER, model=billed.model, usage=priced.usage,
        **priced.fields(), origin=Origin(source=SOURCE, occurred_at_us=billed.at_us,
        ref=billed.key), session=billed.session, cwd=cwd,
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
