"""Reading sessions in a helper process gives what reading them here gives, in order,
and a helper that dies leaves the rest to be read here; an import through the helper
records the same events and report as one without it."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from test_claude_code_import import costs

from kei.adapters.files.catalog import load_catalog
from kei.adapters.workers.claude_reader import ReaderProcess
from kei.app.importers import claude_reading
from kei.app.importers.claude_code import import_claude_code
from kei.app.importers.claude_files import discover
from kei.app.importers.claude_reading import Session, read_session, read_sessions
from kei.app.ledger.ledger import Ledger


def _here(projects: Path) -> list[Session]:
    with read_sessions(discover([projects], []), ahead_bytes=2**62) as sessions:
        return list(sessions)


def test_the_helper_reads_what_this_process_reads(projects: Path) -> None:
    groups = discover([projects], [])
    assert len(groups) >= 2
    with read_sessions(groups, ahead_bytes=0, first_bytes=0) as sessions:
        through_helper = list(sessions)
    assert through_helper == _here(projects)
    assert sum(s.lines for s in through_helper) > 0 and any(s.bad for s in through_helper)


def test_a_killed_helper_leaves_the_rest_to_this_process(projects: Path) -> None:
    groups = discover([projects], [])
    files = [(g.session, [str(f) for f in g.files]) for g in groups]
    with ReaderProcess(files) as reader:
        process = reader._process
        assert process is not None and process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        process.join(5)
        found = list(claude_reading._sessions(groups, reader.received()))
    assert found == [read_session(g.session, g.files) for g in groups]


def test_an_import_through_the_helper_matches_one_without(
    projects: Path,
    make_ledger: Callable[[str], Ledger],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here = make_ledger(f"sqlite:///{tmp_path / 'here.db'}")
    expected = import_claude_code(here, [projects], load_catalog(None))
    monkeypatch.setattr(claude_reading, "AHEAD_BYTES", 0)
    monkeypatch.setattr(claude_reading, "FIRST_BYTES", 0)
    helped = make_ledger(f"sqlite:///{tmp_path / 'helped.db'}")
    report = import_claude_code(helped, [projects], load_catalog(None))
    assert report.to_dict() == expected.to_dict()
    assert costs(helped) == costs(here)
    assert helped.verify().ok
