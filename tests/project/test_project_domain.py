"""The pure rules of project import: manifests, doc sections, the fold."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kei.domain.project import state as project_state
from kei.domain.project.facts import ModuleFacts
from kei.domain.project.manifests import read_manifest
from kei.domain.project.skills import sections
from kei.domain.project.traits import TraitScore


def test_manifest_names() -> None:
    assert read_manifest("setup.py", 'setup(name="a", version="1")').name == "a"
    assert read_manifest("setup.py", "from x import NAME\nsetup(name=NAME)").error is not None
    assert read_manifest("go.mod", "module example.com/foo/v2\n").name == "foo"
    assert read_manifest("go.mod", "module foo\n").name == "foo"
    assert read_manifest("Cargo.toml", "[workspace]\n").name is None  # a root, no error
    assert read_manifest("Cargo.toml", "[package\n").error is not None
    assert (
        read_manifest("package.json", "[]").error
        == "package.json does not parse: not a JSON object"
    )
    assert read_manifest("package.json", '{"name": 3}').error is not None
    assert read_manifest("package.json", '{"name": "a\\nb"}').error is not None  # control char
    assert read_manifest("pyproject.toml", "[tool]\n", 'setup(name="s")').name == "s"
    deep = "[" * 100_000
    assert read_manifest("package.json", deep).error is not None


def test_fenced_headings_are_not_sections() -> None:
    text = "## One\n\n```\n## fenced\n```\n\n## Two\n\n````md\n```\n## inner\n````\nx\n"
    assert [heading for heading, _ in sections(text)] == ["One", "Two"]


@given(st.lists(st.sampled_from(["## Head", "```", "~~~", "text", "", "## ab"]), max_size=30))
def test_sections_never_start_inside_a_fence(lines: list[str]) -> None:
    text = "\n".join(lines)
    fence: str | None = None  # CommonMark: closed only by a fence of the same character
    outside = set()
    for line in lines:
        if line.startswith(("```", "~~~")):
            fence = line[0] if fence is None else (None if line[0] == fence else fence)
        elif fence is None and line.startswith("## "):
            outside.add(line[3:])
    assert {heading for heading, _ in sections(text)} <= outside


names = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8)
scores = st.builds(TraitScore, names, st.floats(0.3, 1.0), st.tuples(names), st.tuples(names))
facts = st.builds(
    ModuleFacts, module_id=names.map(lambda n: f"{n}/Cargo.toml"), kind=st.just("rust-crate"),
    manifest_path=names, name=names, files=st.integers(0, 99), sloc=st.integers(0, 9999),
    content_sha256=names, languages=st.just(("Rust",)),
    matches=st.lists(scores, max_size=3).map(tuple),
)  # fmt: skip


@given(st.lists(facts, max_size=6, unique_by=lambda m: m.module_id))
def test_fold_of_changes_gives_the_modules_and_a_second_diff_is_empty(
    mods: list[ModuleFacts],
) -> None:
    mods = [m.__class__(**{**{f: getattr(m, f) for f in m.__struct_fields__},
                           "manifest_path": m.module_id}) for m in mods]  # fmt: skip
    s = project_state.ProjectState()
    for group in project_state.module_changes(s, "p", mods, "tags/1"):
        project_state.fold(group, s)
    assert s.modules == {m.module_id: m for m in mods}
    assert project_state.module_changes(s, "p", mods, "tags/1") == []
    assert project_state.module_changes(s, "p", mods, "regex/1") == [
        project_state.module_events("p", m, "regex/1") for m in mods if m.matches
    ]


dirs = st.lists(st.sampled_from(["a", "b", "src", "build", "c"]), max_size=3).map("/".join)


@settings(max_examples=30, deadline=None)
@given(
    crates=st.lists(dirs, min_size=1, max_size=5, unique=True),
    sources=st.lists(dirs, min_size=1, max_size=8),
    workspace=st.booleans(),
)
def test_every_source_file_belongs_to_its_nearest_crate_once(
    crates: list[str], sources: list[str], workspace: bool
) -> None:
    """Defect 6 as a property: a .rs file counts once, for the deepest crate above it,
    whatever manifests enclose that crate (a root [workspace] included)."""
    import tempfile
    from pathlib import Path

    from kei.app.importers.project.modules import identify
    from kei.app.importers.project.walk import walk
    from kei.domain.project.traits import Evidence

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifests = {d: f'[package]\nname = "c{i}"\n' for i, d in enumerate(crates) if d}
        if workspace and "" not in crates:
            (root / "Cargo.toml").write_text("[workspace]\n")
        elif "" in crates:
            manifests[""] = '[package]\nname = "root"\n'
        for d, text in manifests.items():
            (root / d).mkdir(parents=True, exist_ok=True)
            (root / d / "Cargo.toml").write_text(text)
        for n, d in enumerate(sources):
            (root / d).mkdir(parents=True, exist_ok=True)
            (root / d / f"f{n}.rs").write_text("fn f() {}\n")
        found = identify(root, walk(root), lambda files: Evidence())
        counted = {m.module_id.removesuffix("Cargo.toml").rstrip("/"): m.files for m in found}

        def owner(d: str) -> str | None:
            parts = d.split("/") if d else []
            for k in range(len(parts), -1, -1):
                if "/".join(parts[:k]) in manifests:
                    return "/".join(parts[:k])
            return None

        expected = dict.fromkeys(manifests, 0)
        for d in sources:
            o = owner(d)
            if o is not None:
                expected[o] += 1
        assert counted == expected
