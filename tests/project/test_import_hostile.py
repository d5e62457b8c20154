"""Hostile repositories: odd names, links out, unreadable and oversized manifests.
Each becomes a finding or a skipped path; none ends the run or reaches the log."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from kei.app.importers.project.importing import import_project
from kei.app.ledger.ledger import Ledger
from kei.domain.project import state as project_state
from project_fixtures import write


def test_hostile_tree(tmp_path: Path, make_ledger: Callable[[str], Ledger]) -> None:
    ledger = make_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    repo = write(tmp_path / "hostile", {
        "ok/Cargo.toml": '[package]\nname = "ok"\n',
        "ok/src/lib.rs": "pub fn a() {}\n",
        "ok/src/new\nline.rs": "pub fn b() {}\n",
        "ctl/Cargo.toml": '[package]\nname = "bad\\u0007name"\n',
        "big/package.json": json.dumps({"name": "big", "pad": "x" * (2 << 20)}),
        "deep/package.json": "[" * 200_000,
        "notstr/package.json": '{"name": ["a"]}',
    })  # fmt: skip
    (repo / "README.md").write_bytes(b"## Title\n\nbody \xff\x00 end\n")  # not UTF-8, a NUL
    (repo / "latin1").mkdir()
    (repo / "latin1" / "pyproject.toml").write_bytes(b'[project]\nname = "caf\xe9"\n')
    (repo / "ok" / "src" / "outside").symlink_to(tmp_path, target_is_directory=True)
    (repo / "ok" / "src" / "loop").symlink_to(repo, target_is_directory=True)
    run = import_project(ledger, str(repo))
    assert [why for _, why in run.skipped_paths] == ["name holds a control character"]
    s = project_state.fold(e.payload() for e in ledger.read_stream_checked("project/hostile"))
    assert s.modules["ok/Cargo.toml"].files == 1  # the link out and the loop are not followed
    errors = {i: m.error for i, m in s.modules.items() if m.error is not None}
    assert set(errors) == {
        "ctl/Cargo.toml", "big/package.json", "deep/package.json", "notstr/package.json",
        "latin1/pyproject.toml",
    }  # fmt: skip
    assert "control characters" in errors["ctl/Cargo.toml"]
    assert "bytes; a manifest may be at most" in errors["big/package.json"]
    assert "not UTF-8" in errors["latin1/pyproject.toml"]
    assert run.skills.found == 1
    assert ledger.verify().ok
    assert import_project(ledger, str(repo)).events_appended == 0


def test_dry_run_appends_nothing(tmp_path: Path, make_ledger: Callable[[str], Ledger]) -> None:
    ledger = make_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    repo = write(tmp_path / "p", {"go.mod": "module x.org/p\n", "p.go": "package p\n"})
    before = ledger.store.max_position()
    run = import_project(ledger, str(repo), dry_run=True)
    assert run.events_appended > 0 and ledger.store.max_position() == before
