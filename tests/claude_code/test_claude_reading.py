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

from claude_transcripts import assistant, write
from conftest import S1, S2
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
    with ReaderProcess(files, read_session) as reader:
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


def test_a_price_the_catalog_refuses_is_reported_alike_through_the_helper(
    tmp_path: Path, make_ledger: Callable[[str], Ledger], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "models.toml").write_text(
        '[[models]]\nid = "claude-elsewhere"\nprovider = "openai"\nstatus = "active"\n'
        "[models.pricing]\ninput_per_mtok_micro = 1\noutput_per_mtok_micro = 2\n"
        'status = "needs-verification"\n'
    )
    catalog = load_catalog(home)
    root = tmp_path / "projects" / "-p"
    for n, session in enumerate((S1, S2)):
        at = f"2026-03-0{n + 1}T10:00:00.000Z"
        write(root / f"{session}.jsonl", [
            assistant(session, f"msg_{n}", f"req_{n}", at, tokens_in=1, tokens_out=2),
            assistant(session, f"msg_x{n}", f"req_x{n}", at, model="claude-elsewhere",
                      tokens_in=1, tokens_out=2),
        ])  # fmt: skip
    reports = []
    for name, ahead in (("here", 2**62), ("helped", 0)):
        monkeypatch.setattr(claude_reading, "AHEAD_BYTES", ahead)
        monkeypatch.setattr(claude_reading, "FIRST_BYTES", 0)
        ledger = make_ledger(f"sqlite:///{tmp_path / name}.db")
        reports.append(import_claude_code(ledger, [root.parent], catalog).to_dict())
    assert reports[0] == reports[1]
    assert [key for key, _ in reports[0]["refused"]] == ["msg_x0:req_x0", "msg_x1:req_x1"]
    assert "openai model in the catalog" in reports[0]["refused"][0][1]
    assert reports[0]["events_appended"] == 2


def test_without_helpers_no_process_is_started(
    projects: Path, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: ReaderProcess) -> ReaderProcess:
        raise AssertionError("a helper process was started")

    monkeypatch.setattr(claude_reading, "AHEAD_BYTES", 0)
    monkeypatch.setattr(ReaderProcess, "__enter__", refuse)
    report = import_claude_code(ledger, [projects], load_catalog(None), helpers=False)
    assert report.events_appended == 4
