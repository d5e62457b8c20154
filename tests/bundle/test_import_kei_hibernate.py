"""``kei import kei-hibernate``: an upstream bundle is checked whole, then its kei-ledger
database is imported; every damaged or hostile bundle is refused with nothing appended.

Bundles are built here the way upstream builds them (spec §3): a GNU tar of the kit's
files in sorted order, then ``hibernate-manifest.toml``, compressed with zstd level 3.
"""

from __future__ import annotations

import hashlib
import io
import sqlite3
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import zstandard

from cli_helpers import cli_env, kei
from kei.adapters.files.tarsafe import ArchiveLimits
from kei.app.importers.kei_hibernate import LEDGER_ENTRY, import_kei_hibernate
from kei.app.ledger.ledger import Ledger
from kei.errors import BundleError, InputError
from upstream_ledger import UpstreamLedger

T = 1_700_000_000


@dataclass
class Kit:
    """An upstream bundle's content: files, then the manifest (editable to break it)."""

    files: dict[str, bytes]
    version: str = "1"
    listed: dict[str, tuple[str, int]] = field(default_factory=dict)
    extra: list[tarfile.TarInfo] = field(default_factory=list)

    def manifest(self) -> bytes:
        lines = [f'version = "{self.version}"', f"timestamp = {T}", 'machine_id = "laptop"']
        for path in sorted(self.files):
            sha, size = self.listed.get(path, (hashlib.sha256(self.files[path]).hexdigest(), 0))
            size = size or len(self.files[path])
            lines += ["", "[[entries]]", f'path = "{path}"', f'sha256 = "{sha}"', f"size = {size}"]
        return ("\n".join(lines) + "\n").encode()

    def tar(self, *, manifest: bool = True) -> bytes:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for path in sorted(self.files):
                _add(tar, path, self.files[path])
            for info in self.extra:
                tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
            if manifest:
                _add(tar, "hibernate-manifest.toml", self.manifest())
        return out.getvalue()

    def write(self, path: Path, *, manifest: bool = True, cut: int = 0) -> Path:
        data = zstandard.ZstdCompressor(level=3).compress(self.tar(manifest=manifest))
        path.write_bytes(data[: len(data) - cut])
        return path


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, T
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def kit(tmp_path: Path) -> Callable[[], Kit]:
    made = iter(range(1_000))

    def make() -> Kit:
        path = tmp_path / f"up-{next(made)}.sqlite"
        db = UpstreamLedger(path)
        db.agent("a1", status="done", started=T, finished_ts=T + 5, summary="ok")
        db.agent("a2", parent_branch="agent/a1", started=T + 1, cost_cents=3, model="m")
        db.skill("grep", T + 2, duration_ms=40)
        db.close()
        return Kit(
            {
                LEDGER_ENTRY: path.read_bytes(),
                ".claude/memory/kei-memory.sqlite": b"memory db",
                "skills/grep/SKILL.md": b"# grep\n",
            }
        )

    return make


def streams(ledger: Ledger) -> list[tuple[str, str]]:
    return [(e.stream, e.type) for e in ledger.read()]


def test_a_good_bundle_imports_its_ledger_and_a_rerun_appends_nothing(
    ledger: Ledger, store_url: str, kit: Callable[[], Kit], tmp_path: Path
) -> None:
    bundle = kit().write(tmp_path / "brain.tar.zst")
    report = import_kei_hibernate(ledger, store_url, bundle)
    assert report.agents_imported == 2 and report.skill_invocations == 1
    assert "all 3 files match the manifest" in report.notes[0]
    assert ("agent/a2", "cost.recorded") in streams(ledger)
    before = streams(ledger)
    again = import_kei_hibernate(ledger, store_url, bundle)
    assert again.events_appended == 0 and streams(ledger) == before


def hostile(kit: Kit, case: str) -> dict[str, object]:
    """Break ``kit`` one way; returns extra options for ``write``/``import``."""
    if case == "sha":
        kit.listed[LEDGER_ENTRY] = ("0" * 64, 0)
    elif case == "size":
        kit.listed["skills/grep/SKILL.md"] = (hashlib.sha256(b"# grep\n").hexdigest(), 99)
    elif case == "version":
        kit.version = "999"
    elif case in ("unlisted", "symlink", "hardlink", "fifo", "climb", "absolute", "duplicate"):
        info = tarfile.TarInfo(
            {"climb": "../escape.txt", "absolute": "/etc/passwd", "duplicate": LEDGER_ENTRY}.get(
                case, "skills/extra.md"
            )
        )
        info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                     "fifo": tarfile.FIFOTYPE}.get(case, tarfile.REGTYPE)  # fmt: skip
        info.linkname = "/etc/passwd" if case in ("symlink", "hardlink") else ""
        info.size = 3 if info.type == tarfile.REGTYPE else 0
        kit.extra.append(info)
    elif case == "missing":
        kit.listed["skills/gone.md"] = ("a" * 64, 1)
        kit.files["skills/gone.md"] = b"x"
        return {"drop": "skills/gone.md"}
    elif case == "no-manifest":
        return {"manifest": False}
    elif case == "truncated":
        return {"cut": 200}
    return {}


EXPECTED = {
    "sha": "sha256 mismatch", "size": "size mismatch", "version": "manifest version mismatch",
    "unlisted": "is not in the manifest", "symlink": "not a regular file",
    "hardlink": "not a regular file", "fifo": "not a regular file", "climb": "climbs out",
    "absolute": "unsafe path", "duplicate": "appears twice", "missing": "bundle lacks it",
    "no-manifest": "holds no hibernate-manifest.toml", "truncated": "damaged or truncated",
}  # fmt: skip
CASES = list(EXPECTED)


@pytest.mark.parametrize("case", CASES)
def test_a_hostile_bundle_is_refused_and_nothing_is_appended(
    sqlite_url: str, make_ledger: Callable[[str], Ledger], kit: Callable[[], Kit],
    tmp_path: Path, case: str,
) -> None:  # fmt: skip
    ledger = make_ledger(sqlite_url)
    k = kit()
    options = hostile(k, case)
    drop = options.pop("drop", None)
    if drop is not None:
        manifest = k.manifest()
        del k.files[str(drop)]
        k.manifest = lambda: manifest  # type: ignore[method-assign]
    bundle = k.write(tmp_path / "bad.tar.zst", **options)  # type: ignore[arg-type]
    before = streams(ledger)
    with pytest.raises(InputError) as refused:
        import_kei_hibernate(ledger, sqlite_url, bundle)
    assert EXPECTED[case] in str(refused.value) and "\n" not in str(refused.value)
    assert streams(ledger) == before


def test_a_bundle_holding_100_mb_of_zeros_imports(
    ledger: Ledger, sqlite_url: str, kit: Callable[[], Kit], tmp_path: Path
) -> None:
    """Issue 21: a real kit file of zeros compresses ~10,000 to 1; a ratio cap refused it."""
    k = kit()
    k.files["skills/zeros.bin"] = bytes(100_000_000)
    bundle = k.write(tmp_path / "zeros.tar.zst")
    assert bundle.stat().st_size < 100_000  # far past any 1,000:1 ratio
    report = import_kei_hibernate(ledger, sqlite_url, bundle)
    assert report.agents_imported == 2 and "all 4 files match the manifest" in report.notes[0]


def test_a_zstd_bomb_is_refused_at_the_total_cap_naming_it(
    sqlite_url: str, make_ledger: Callable[[str], Ledger], kit: Callable[[], Kit], tmp_path: Path
) -> None:
    ledger = make_ledger(sqlite_url)
    k = kit()
    k.files["skills/zeros.bin"] = bytes(8 << 20)
    bundle = k.write(tmp_path / "bomb.tar.zst")
    with pytest.raises(BundleError, match="zstd bomb") as refused:
        import_kei_hibernate(ledger, sqlite_url, bundle, limits=ArchiveLimits(max_bytes=4 << 20))
    text = str(refused.value)
    assert "beyond 4194304 bytes" in text and "max_archive_bytes" in text, text
    assert refused.value.kind == "bomb" and "\n" not in text
    assert len(streams(ledger)) == 1  # the genesis


def test_a_bundle_without_a_ledger_is_refused(
    sqlite_url: str, make_ledger: Callable[[str], Ledger], tmp_path: Path
) -> None:
    ledger = make_ledger(sqlite_url)
    bundle = Kit({"skills/x.md": b"x"}).write(tmp_path / "kit.tar.zst")
    with pytest.raises(BundleError, match=r"holds no \.claude/agents/ledger\.sqlite"):
        import_kei_hibernate(ledger, sqlite_url, bundle)


def test_cli_imports_and_refuses_in_one_line(tmp_path: Path, kit: Callable[[], Kit]) -> None:
    env = cli_env(tmp_path / "home")
    assert kei(["init"], env).returncode == 0
    bundle = kit().write(tmp_path / "brain.tar.zst")
    dry = kei(["import", "kei-hibernate", str(bundle), "--dry-run"], env)
    assert dry.returncode == 0, dry.stderr
    assert "dry run" in dry.stdout and "all 3 files match the manifest" in dry.stdout
    done = kei(["import", "kei-hibernate", str(bundle)], env)
    assert done.returncode == 0 and "agents: 2 imported" in done.stdout
    k = kit()
    k.version = "999"
    bad = kei(["import", "kei-hibernate", str(k.write(tmp_path / "v999.tar.zst"))], env)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "manifest version mismatch: bundle=999 primitive=1" in bad.stderr
    missing = kei(["import", "kei-hibernate", str(tmp_path / "nope.tar.zst")], env)
    assert missing.returncode != 0 and "no such file" in missing.stderr


def test_a_second_kei_ledger_database_is_named_and_imported(
    ledger: Ledger, sqlite_url: str, kit: Callable[[], Kit], tmp_path: Path
) -> None:
    """Issue 21: it was counted among the "other files", neither named nor imported."""
    k = kit()
    other = UpstreamLedger(tmp_path / "other.sqlite").agent("a1", started=T + 50).agent("y")
    other.close()
    k.files["old/.claude/agents/ledger.sqlite"] = other.path.read_bytes()
    memory = sqlite3.connect(tmp_path / "memory.sqlite")
    memory.execute("CREATE TABLE events (id INTEGER)")
    memory.commit()
    memory.close()
    k.files[".claude/memory/kei-memory.sqlite"] = (tmp_path / "memory.sqlite").read_bytes()
    newer = UpstreamLedger(tmp_path / "newer.sqlite").agent("z")
    newer.sql("PRAGMA user_version = 99")
    newer.close()
    k.files["next/ledger.sqlite"] = newer.path.read_bytes()
    bundle = k.write(tmp_path / "brain.tar.zst")

    report = import_kei_hibernate(ledger, sqlite_url, bundle)

    assert report.agents_imported == 2 and report.namespace == "brain"
    [second] = report.also  # the kei-memory database is SQLite too, but no kei-ledger
    assert second.source == f"{bundle}!old/.claude/agents/ledger.sqlite"
    assert second.namespace == "brain.old" and second.agents_imported == 2
    assert ("agent/brain.old:a1", "agent.forked") in streams(ledger)  # a1 collided: kept apart
    refused = {i.row: i.why for i in report.not_carried if i.what == "kei-ledger database"}
    assert "schema v99 is newer" in refused[f"{bundle}!next/ledger.sqlite"]
    again = import_kei_hibernate(ledger, sqlite_url, bundle)
    assert again.events_appended == 0 and again.also[0].events_appended == 0


def test_a_ledger_entry_that_is_no_database_names_the_entry(
    ledger: Ledger, sqlite_url: str, kit: Callable[[], Kit], tmp_path: Path
) -> None:
    """Issue 21: the error named a temporary file."""
    k = kit()
    k.files[LEDGER_ENTRY] = b"not a database at all, just text" * 100
    bundle = k.write(tmp_path / "brain.tar.zst")
    with pytest.raises(InputError) as refused:
        import_kei_hibernate(ledger, sqlite_url, bundle)
    text = str(refused.value)
    assert text.startswith(f"{bundle}!{LEDGER_ENTRY} is not a readable SQLite database"), text
    assert "kei-hibernate-" not in text and "\n" not in text
