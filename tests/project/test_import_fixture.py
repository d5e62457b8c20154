"""``kei import project`` on the generated fixture repository: every upstream defect
the research note lists (§7.2), fixed, checked on the module it concerns."""

from __future__ import annotations

from pathlib import Path

import pytest

from kei.app.importers.project.importing import import_project
from kei.app.ledger.ledger import Ledger
from kei.domain.project import state as project_state
from kei.domain.project.facts import ModuleFacts
from project_fixtures import fixture_repo


def modules_of(ledger: Ledger, slug: str = "demo") -> dict[str, ModuleFacts]:
    s = project_state.fold(e.payload() for e in ledger.read_stream_checked(f"project/{slug}"))
    return s.modules


@pytest.fixture
def imported(tmp_path: Path, make_ledger: object) -> tuple[Ledger, dict[str, ModuleFacts]]:
    ledger = make_ledger(f"sqlite:///{tmp_path / 'l.db'}")  # type: ignore[operator]
    import_project(ledger, str(fixture_repo(tmp_path / "demo")))
    return ledger, modules_of(ledger)


def test_workspace_members_keep_their_sources(
    imported: tuple[Ledger, dict[str, ModuleFacts]],
) -> None:
    """Defect 6: the root [workspace] manifest hid every member's files upstream."""
    _, mods = imported
    assert "Cargo.toml" not in mods  # a workspace root is not a module
    tg = mods["crates/notify-tg/Cargo.toml"]
    # lib.rs, src/build/mod.rs (defect 3), kept.rs (generated=false), macro.rsx (language)
    assert (tg.name, tg.files) == ("notify-tg", 4)
    assert tg.sloc > 0 and tg.content_sha256
    core, nested = mods["crates/core/Cargo.toml"], mods["crates/core/nested/Cargo.toml"]
    assert (core.files, nested.files) == (1, 1)  # the nested crate's file is its own


def test_walker_honours_gitignore_gitattributes_and_cargo_target(
    imported: tuple[Ledger, dict[str, ModuleFacts]],
) -> None:
    _, mods = imported
    assert not any(m.startswith("ignored/") for m in mods)  # .gitignore
    # target/ beside Cargo.toml, linguist-vendored and -generated files are not sources
    assert mods["crates/notify-tg/Cargo.toml"].files == 4
    # identify: an executable without an extension, by its shebang
    assert mods["py/setup/setup.py"].files == 3


def test_bad_manifest_is_a_finding_not_the_end(
    imported: tuple[Ledger, dict[str, ModuleFacts]],
) -> None:
    """Defect 2: one templated package.json aborted the whole run upstream."""
    _, mods = imported
    bad = mods["web/packages/ui/test/fixtures/bad/package.json"]
    assert bad.error is not None and "does not parse" in bad.error
    ui = mods["web/packages/ui/package.json"]
    assert (ui.name, ui.files, ui.languages) == ("@demo/ui", 2, ("JavaScript", "TypeScript"))


def test_names_from_setup_py_and_go_mod(imported: tuple[Ledger, dict[str, ModuleFacts]]) -> None:
    """Defect 4: upstream took `namespace_packages=[...]` or the text NAME, and `v2`."""
    _, mods = imported
    assert mods["py/setup/setup.py"].name == "setup-pkg"
    assert mods["go/go.mod"].name == "sched"
    assert mods["py/pep621/pyproject.toml"].name == "pep621-pkg"
    assert mods["py/poetry/pyproject.toml"].name == "poetry-pkg"


def test_tags_matcher_reads_five_languages_and_only_implementations(
    imported: tuple[Ledger, dict[str, ModuleFacts]],
) -> None:
    """Defect 5: Rust only upstream, and any `fn` counted as a trait method."""
    _, mods = imported
    best = {i: (m.best.trait if m.best else None) for i, m in mods.items()}
    assert best["crates/notify-tg/Cargo.toml"] == "NotifyChannel"
    assert best["go/go.mod"] == "Scheduler"
    assert best["py/pep621/pyproject.toml"] == "MemoryBackend"
    # the free function mirror_to_remote is not an implemented method
    assert "mirror_to_remote" not in mods["py/pep621/pyproject.toml"].matches[0].methods
    # a trait's declarations are not an implementation (upstream: Backup, confident)
    assert mods["crates/core/Cargo.toml"].best is None


def test_regex_matcher_keeps_upstream_parity(tmp_path: Path, make_ledger: object) -> None:
    ledger = make_ledger(f"sqlite:///{tmp_path / 'l.db'}")  # type: ignore[operator]
    import_project(ledger, str(fixture_repo(tmp_path / "demo")), matcher="regex")
    mods = modules_of(ledger)
    assert mods["crates/core/Cargo.toml"].best is not None  # upstream's false positive
    assert mods["crates/core/Cargo.toml"].best.trait == "Backup"  # type: ignore[union-attr]
    assert mods["go/go.mod"].best is None  # non-Rust: never matched upstream
    # the same tree with the other matcher: every module is matched again
    switched = import_project(ledger, str(tmp_path / "demo"), matcher="tags")
    assert switched.modules.changed > 0
    assert modules_of(ledger)["crates/core/Cargo.toml"].best is None
    assert modules_of(ledger)["go/go.mod"].best is not None
    assert import_project(ledger, str(tmp_path / "demo"), matcher="tags").events_appended == 0


def test_rerun_appends_nothing_and_changes_append_only_themselves(
    imported: tuple[Ledger, dict[str, ModuleFacts]], tmp_path: Path
) -> None:
    ledger, _ = imported
    repo = tmp_path / "demo"
    before = ledger.store.max_position()
    again = import_project(ledger, str(repo))
    assert (again.events_appended, ledger.store.max_position()) == (0, before)
    (repo / "crates/core/src/extra.rs").write_text("pub fn more() {}\n")
    (repo / "go/go.mod").unlink()
    changed = import_project(ledger, str(repo))
    assert (changed.modules.changed, changed.modules.removed) == (1, 1)
    assert "go/go.mod" not in modules_of(ledger)
    assert modules_of(ledger)["crates/core/Cargo.toml"].files == 2
    assert import_project(ledger, str(repo)).events_appended == 0


def test_skills_are_memory_writes_without_fenced_headings(
    imported: tuple[Ledger, dict[str, ModuleFacts]],
) -> None:
    """Defect 7: `## ` inside a code fence started a section upstream."""
    from kei.app.memory import MemoryService
    from kei.domain.memory.query import MemoryQuery

    ledger, _ = imported
    with MemoryService(ledger) as memory:
        items = memory.query(MemoryQuery(namespace="skills/demo"))
        keys = sorted(i["key"] for i in items)
        assert keys == [
            "docs-config::configuration", "docs-config::second", "readme::install",
            "readme::usage-the-short-version",
        ]  # fmt: skip
        assert all(i["kind"] == "skill" for i in items)
        install = memory.get("skills/demo", "readme::install")
        assert install is not None and "## not a heading" in install["value"]
        usage = memory.get("skills/demo", "readme::usage-the-short-version")
        assert usage is not None
        assert 'description: "Call demo run. It works. It really works."' in usage["value"]
        assert memory.search("fourth sentence")  # memory search finds imported docs
