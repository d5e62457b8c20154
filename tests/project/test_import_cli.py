"""``kei import project`` end to end: the CLI, golden reports, clones, kill and resume,
running a phase, and kei's own repository as a larger corpus."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import cli_env, in_process
from kei.app.importers.project.importing import import_project
from kei.app.ledger.ledger import Ledger
from kei.domain.project import state as project_state
from project_fixtures import fixture_repo, git_repo

GOLDEN = Path(__file__).parent / "golden"


def masked(plan: str) -> str:
    """A plan with its date and source (which vary per run) replaced."""
    lines = plan.splitlines(keepends=True)
    assert lines[2].startswith("> Generated: 20") and lines[3].startswith("> Source: ")
    return "".join([*lines[:2], "> Generated: DATE\n", "> Source: SOURCE\n", *lines[4:]])


@pytest.fixture
def kei(tmp_path: Path) -> Callable[..., Any]:
    run = in_process(cli_env(tmp_path / "home"))
    run("init")
    return run


def test_cli_import_then_golden_report_and_plan(kei: Callable[..., Any], tmp_path: Path) -> None:
    repo = fixture_repo(tmp_path / "demo")
    first = json.loads(kei("import", "project", str(repo), "--json").stdout)
    assert (first["modules"]["found"], first["unreadable"], first["skills"]["found"]) == (11, 1, 4)
    again = json.loads(kei("import", "project", str(repo), "--json").stdout)
    assert again["events_appended"] == 0
    report = kei("import", "project", str(repo), "--report").stdout
    assert report == (GOLDEN / "demo_gap.md").read_text()
    ended = json.loads(kei("events", "tail", "-n", "1", "--json").stdout.splitlines()[-1])
    assert ended["type"] == "project.import.completed"
    assert ended["payload"]["report_sha256"] == hashlib.sha256(report.encode()).hexdigest()
    plan = kei("import", "project", str(repo), "--plan").stdout
    assert f"> Source: {repo.resolve()}\n" in plan
    assert masked(plan) == (GOLDEN / "demo_plan.md").read_text()
    data = json.loads(kei("import", "project", str(repo), "--report", "--format", "json").stdout)
    sections = {m["module_id"]: m["section"] for m in data["modules"]}
    assert sections["crates/notify-tg/Cargo.toml"] == "confident"
    assert sections["web/packages/ui/test/fixtures/bad/package.json"] == "unreadable"


def test_empty_report_is_upstreams(kei: Callable[..., Any], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "go.mod").write_text("module example.com/empty\n")
    kei("import", "project", str(tmp_path / "empty"))
    report = kei("import", "project", str(tmp_path / "empty"), "--report").stdout
    assert report == (GOLDEN / "empty_gap.md").read_text()


def test_report_of_unknown_project_and_bad_source_are_one_line(
    kei: Callable[..., Any], tmp_path: Path
) -> None:
    gone = kei("import", "project", str(tmp_path / "never"), "--report", code=2)
    assert "no import of project 'never'" in gone.stderr and "Traceback" not in gone.stderr
    missing = kei("import", "project", str(tmp_path / "missing"), code=2)
    assert "no such folder" in missing.stderr
    bad_url = kei("import", "project", f"file://{tmp_path}/nothing-here", code=2)
    assert "cannot clone" in bad_url.stderr
    for args, said in [
        (("--report", "--plan"), "one at a time"),
        (("--format", "json"), "--format goes with --report or --plan"),
        (("--dry-run", "--run-phase", "P0.1"), "--dry-run goes with an import"),
        (("--report", "--format", "md", "--json"), "--json conflicts with --format"),
    ]:
        usage = kei("import", "project", str(tmp_path), *args, code=2)
        assert said in usage.stderr and "Traceback" not in usage.stderr


def test_url_is_cloned_into_a_folder_always_removed(
    kei: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    repo = git_repo(fixture_repo(tmp_path / "demo"))
    out = json.loads(kei("import", "project", f"file://{repo}", "--json").stdout)
    assert out["source"] == f"file://{repo}" and len(out["commit"]) == 40
    assert out["modules"]["found"] == 11 and list(scratch.iterdir()) == []
    kei("import", "project", f"file://{tmp_path}/nope.git", code=2)
    assert list(scratch.iterdir()) == []  # removed after a failed clone too


def test_run_phase_forks_an_agent_with_a_trait_dna(kei: Callable[..., Any], tmp_path: Path) -> None:
    repo = fixture_repo(tmp_path / "demo")
    kei("import", "project", str(repo))
    forked = json.loads(kei("import", "project", str(repo), "--run-phase", "P2.1", "--json").stdout)
    assert forked["agent_id"] == "import-demo-p2-1"
    assert forked["dna"].startswith("code-implementer::NotifyChannel::")
    agent = json.loads(kei("agent", "show", "import-demo-p2-1", "--json").stdout)["agent"]
    assert agent["status"] == "running" and agent["branch"] == "import/demo/P2.1"
    twice = json.loads(kei("import", "project", str(repo), "--run-phase", "P2.1", "--json").stdout)
    assert twice["appended"] == 0
    plan = json.loads(kei("import", "project", str(repo), "--plan", "--format", "json").stdout)
    by_id = {p["phase_id"]: p for p in plan["phases"]}
    assert (by_id["P2.1"]["status"], by_id["P2.1"]["agent_id"]) == ("forked", "import-demo-p2-1")
    weak = kei("import", "project", str(repo), "--run-phase", "Pwip.1", code=2)
    assert "needs review" in weak.stderr
    # a re-import keeps the forked phase as it is
    assert json.loads(kei("import", "project", str(repo), "--json").stdout)["events_appended"] == 0


KILLER = """
import os, signal, sys
from kei.app.importers.project import importing
from kei.app.ledger.ledger import Ledger
from kei.adapters.files.keyfile import load_key
importing.BATCH = 3
calls = 0
real = importing._append_one
def once_then_die(*a, **k):
    global calls
    calls += 1
    if calls == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*a, **k)
importing._append_one = once_then_die
ledger = Ledger.open(sys.argv[1], key=load_key(sys.argv[2]))
importing.import_project(ledger, sys.argv[3])
"""


def test_sigkill_mid_import_then_resume(tmp_path: Path, make_ledger: Callable[..., Ledger]) -> None:
    from kei.adapters.files.keyfile import write_key
    from kei.domain.log.keys import SigningKey

    key = SigningKey.generate(name="k")
    write_key(tmp_path / "key", key)
    url = f"sqlite:///{tmp_path / 'l.db'}"
    ledger = make_ledger(url, signing_key=key)
    repo = fixture_repo(tmp_path / "demo")
    done = subprocess.run([sys.executable, "-c", KILLER, url, str(tmp_path / "key"), str(repo)],
                          check=False, capture_output=True)  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    half = project_state.fold(e.payload() for e in ledger.read_stream_checked("project/demo"))
    assert (half.runs_started, half.runs_completed) == (1, 0) and 0 < len(half.modules) < 11
    resumed = import_project(ledger, str(repo))
    assert 0 < resumed.modules.changed < 11
    whole = project_state.fold(e.payload() for e in ledger.read_stream_checked("project/demo"))
    assert (whole.runs_started, whole.runs_completed) == (2, 1) and len(whole.modules) == 11
    fresh = make_ledger(f"sqlite:///{tmp_path / 'fresh.db'}")
    import_project(fresh, str(repo))
    same = project_state.fold(e.payload() for e in fresh.read_stream_checked("project/demo"))
    assert (same.modules, same.skills, same.phases) == (whole.modules, whole.skills, whole.phases)
    assert import_project(ledger, str(repo)).events_appended == 0
    assert ledger.verify().ok


def test_keis_own_repository(tmp_path: Path, make_ledger: Callable[..., Ledger]) -> None:
    """A larger real corpus: structural facts only (numbers move with every commit)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        pytest.skip("not run from a kei checkout")
    ledger = make_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    run = import_project(ledger, str(root), name="kei")
    mods = project_state.fold(
        e.payload() for e in ledger.read_stream_checked("project/kei")
    ).modules
    kei_module = mods["pyproject.toml"]
    assert (kei_module.name, kei_module.kind, kei_module.languages) == (
        "kei",
        "python-package",
        ("Python",),
    )
    src_files = sum(1 for _ in (root / "src").rglob("*.py")) + sum(
        1 for _ in (root / "tests").rglob("*.py")
    )
    assert kei_module.files >= src_files  # every source file counted, none from .venv
    assert kei_module.sloc > 20_000 and run.skills.found > 20
    assert all(not i.startswith(".venv/") for i in mods)
    assert import_project(ledger, str(root), name="kei").events_appended == 0


def test_without_the_extra_one_line_and_no_clone(
    kei: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tree_sitter" else real(name, *a),
    )
    refused = kei("import", "project", f"file://{tmp_path}/never-cloned", code=2)
    assert "needs the kei[project] extra (tree_sitter missing)" in refused.stderr
    assert "pip install 'kei[project]'" in refused.stderr
