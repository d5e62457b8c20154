"""SIGKILL during a replay leaves the target exactly as it was; a new replay then works.

A child process replays a bundle and, at a chosen phase, says so and waits (so the
kill lands at a known point): while the rows are being inserted into the target
(after the first page, inside the one transaction), or while a new SQLite file is
still being verified in its staging folder. The parent kills it with SIGKILL and
checks the target: same rows, same file bytes, or still no file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bundle_helpers import fill, rows_of, snapshot, store_url_of
from kei import Ledger, SigningKey
from kei.adapters.store import open_store
from kei.app.bundle.export import export_bundle
from kei.app.bundle.replay import replay_bundle

pytestmark = pytest.mark.slow

CHILD = r"""
import sys, time
from pathlib import Path
from kei.app.bundle.replay import replay_bundle

path, url, phase, at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
calls = 0

def progress(name, done, total):
    global calls
    if name == phase:
        calls += 1
        if calls == at:
            print("in", name, flush=True)
            time.sleep(120)

replay_bundle(Path(path), url, progress=progress)
print("finished", flush=True)
"""


def kill_during(bundle: Path, url: str, phase: str, at: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(bundle), url, phase, str(at)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"in {phase}"), proc.stderr.read() if proc.stderr else line
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _bundles(folder: Path) -> tuple[Path, Path, list[object]]:
    url = f"sqlite:///{folder / 'source.db'}"
    with Ledger.open(url, key=SigningKey.generate(name="k"), create=True) as ledger:
        ledger.init("sigkill")
        fill(ledger, 100)
        early = folder / "early.tar.zst"
        export_bundle(ledger, early)
        fill(ledger, 3000, tag="b")
        later = folder / "later.tar.zst"
        export_bundle(ledger, later)
        rows = list(rows_of(ledger.store))
    return early, later, rows


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_killed_while_inserting_leaves_the_target_as_it_was(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    early, later, rows = _bundles(tmp_path)
    url = store_url_of(kind, request, tmp_path, "target")
    replay_bundle(early, url)
    before = snapshot(url)
    kill_during(later, url, "writing", 2)
    assert snapshot(url) == before
    report = replay_bundle(later, url)
    assert (report.mode, report.appended) == ("extend", 3000)
    target = open_store(url)
    try:
        assert rows_of(target) == rows
    finally:
        target.close()


@pytest.mark.parametrize("phase", ["reading", "verifying"])
def test_killed_before_a_new_file_is_moved_into_place_leaves_no_file(
    phase: str, tmp_path: Path
) -> None:
    _, later, rows = _bundles(tmp_path)
    path = tmp_path / "restored" / "ledger.db"
    kill_during(later, f"sqlite:///{path}", phase, 1)
    assert not path.exists()
    report = replay_bundle(later, f"sqlite:///{path}")
    assert report.mode == "restore"
    target = open_store(f"sqlite:///{path}")
    try:
        assert rows_of(target) == rows
    finally:
        target.close()
