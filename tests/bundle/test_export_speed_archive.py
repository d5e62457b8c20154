"""The fast export paths write the bytes the plain ones would.

- The archive writer lays out the tar exactly as ``tarfile`` does and compresses it
  in zstd's multi-threaded mode: one frame, the same bytes for any worker count.
- The digests folded from the log in a helper process are the ones folded in this
  process: when the helper fails, the export folds them itself and the bundle is
  byte for byte the same; the store's own read models play no part.
"""

from __future__ import annotations

import io
import multiprocessing
import sqlite3
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from bundle_helpers import fill
from kei import Ledger
from kei.adapters.files.tarsafe import frame_problem
from kei.app.bundle import export as export_module
from kei.app.bundle.archive import BundleWriter
from kei.app.bundle.export import export_bundle
from kei.errors import VerificationError

FILES = [
    (f"proof/f{i}", bytes([i]) * size) for i, size in enumerate([0, 1, 511, 512, 513, 3 << 20])
]


def _write(path: Path, threads: int) -> bytes:
    writer = BundleWriter(path, threads=threads)
    for name, data in FILES:
        writer.add(name, len(data), io.BytesIO(data))
    writer.commit()
    return path.read_bytes()


def _tarfile_bytes() -> bytes:
    """What ``tarfile`` writes for the same entries with the bundle's fixed headers."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in FILES:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_the_archive_is_tarfiles_layout_in_one_frame_whatever_the_workers(
    tmp_path: Path,
) -> None:
    one = _write(tmp_path / "one.tar.zst", threads=1)
    three = _write(tmp_path / "three.tar.zst", threads=3)
    assert one == three
    assert frame_problem(io.BytesIO(one), len(one)) is None
    first_frame = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(one)).read()
    assert first_frame == _tarfile_bytes(), "the whole archive is in the first frame"


def test_a_short_entry_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "short.tar.zst"
    writer = BundleWriter(out)
    with pytest.raises(Exception, match="ended 10 bytes early"):
        writer.add("proof/x", 20, io.BytesIO(bytes(10)))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def filled(sqlite_url: str, make_ledger: Callable[[str], Ledger]) -> Ledger:
    ledger = make_ledger(sqlite_url)
    fill(ledger, 150)
    return ledger


def _export(ledger: Ledger, out: Path) -> bytes:
    export_bundle(ledger, out, machine="test-host", segment_events=40)
    return out.read_bytes()


def test_a_failed_helper_gives_the_same_bundle(
    filled: Ledger, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = _export(filled, tmp_path / "plain.tar.zst")
    monkeypatch.setattr(
        export_module._Digests, "result", lambda self: export_module._Failed("test")
    )
    assert _export(filled, tmp_path / "fallback.tar.zst") == plain


def test_the_stores_own_projections_do_not_change_the_bundle(
    filled: Ledger, sqlite_url: str, tmp_path: Path
) -> None:
    """The digests are folded from the log: the store's read models, behind, caught
    up or edited, play no part."""
    from kei.adapters.readmodels.engine import ProjectionEngine
    from kei.projections.registry import default_projections

    behind = _export(filled, tmp_path / "behind.tar.zst")
    engine = ProjectionEngine(sqlite_url, filled.store, default_projections())
    try:
        engine.catch_up()
    finally:
        engine.close()
    assert _export(filled, tmp_path / "caught-up.tar.zst") == behind
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE costs_events SET micro_cents = 1")
    assert _export(filled, tmp_path / "edited.tar.zst") == behind


def test_a_failed_export_ends_its_helper_and_leaves_no_file(
    filled: Ledger, sqlite_url: str, tmp_path: Path
) -> None:
    db = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE kei_events SET state = state || x'00' WHERE rowid = 77")
    before = set(tmp_path.iterdir())
    with pytest.raises(VerificationError, match="export stopped"):
        export_bundle(filled, tmp_path / "bad.tar.zst", segment_events=40)
    assert set(tmp_path.iterdir()) == before
    assert multiprocessing.active_children() == []
