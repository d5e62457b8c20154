"""kei's worker processes die with their parent, never run the caller's script, and
the scratch folder a killed run leaves behind is removed by the next run.

Real processes, real SIGKILLs: a child process runs ``verify_store(jobs=2)`` or a
replay with two verification workers, says so from a progress callback once its
workers run, and waits; the test lists the child's own children from ``/proc``,
kills the child with SIGKILL and polls (for a bounded time) until every worker is
gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bundle_helpers import fill
from kei import Ledger, SigningKey
from kei.adapters.store import open_store
from kei.adapters.workers import scratch
from kei.app.bundle.export import export_bundle
from kei.app.bundle.pipeline import PassSizes
from kei.app.bundle.replay import replay_bundle

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc"),
]

GONE_WITHIN_S = 30.0

VERIFY_CHILD = r"""
import sys, time
from kei.adapters.store import open_store
from kei.app.ledger.verification import VerifyLimits, verify_store

url = sys.argv[1]
def progress(n):
    print("working", flush=True)
    time.sleep(120)

verify_store(open_store(url), jobs=2, url=url, progress=progress,
             limits=VerifyLimits(page=100, range_size=100, parallel_min=10))
"""

REPLAY_CHILD = r"""
import sys, time
from pathlib import Path
from kei.app.bundle.pipeline import PassSizes
from kei.app.bundle.replay import replay_bundle

def progress(name, done, total):
    if name == "verifying" and done:
        print("working", flush=True)
        time.sleep(120)

replay_bundle(Path(sys.argv[1]), sys.argv[2], jobs=2, progress=progress,
              sizes=PassSizes(range_rows=100, batch_rows=200, parallel_min=10))
"""


SIGNER_CHILD = r"""
import sys, time
from kei import Ledger, NewEvent, SigningKey
from kei.domain import events

with Ledger.open(sys.argv[1], key=SigningKey(bytes.fromhex(sys.argv[2]), name="k"),
                 parallel_signing=True) as ledger:
    ledger.append([NewEvent("agent-1", events.CostRecorded(
        agent_id="agent-1", provider="p", model="m", micro_cents=i + 1)) for i in range(64)])
    print("working", flush=True)
    time.sleep(120)
"""


def _ppid_and_state(pid: int) -> tuple[int, str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), fields[0]


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _ppid_and_state(int(entry))
            if info is not None and info[0] == pid:
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    info = _ppid_and_state(pid)
    return info is not None and info[1] != "Z"


def kill_while_working(args: list[str]) -> list[int]:
    """Run ``args``; once it says "working", SIGKILL it; its kei workers (not
    multiprocessing's resource tracker) as they were just before the kill."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("working"), proc.stderr.read() if proc.stderr else line
        workers = [p for p in children_of(proc.pid) if not _is_resource_tracker(p)]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return workers


def _is_resource_tracker(pid: int) -> bool:
    try:
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def assert_all_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + GONE_WITHIN_S
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = [p for p in pids if alive(p)]
    for p in survivors:  # do not leave them behind for the next test
        os.kill(p, signal.SIGKILL)
    assert not survivors, f"workers outlived their parent: {survivors}"


def _ledger(folder: Path, n: int) -> str:
    url = f"sqlite:///{folder / 'source.db'}"
    with Ledger.open(url, key=SigningKey.generate(name="k"), create=True) as ledger:
        ledger.init("lifetime")
        fill(ledger, n)
    return url


def test_verify_chain_workers_die_with_their_parent(tmp_path: Path) -> None:
    url = _ledger(tmp_path, 2000)
    workers = kill_while_working([sys.executable, "-c", VERIFY_CHILD, url])
    assert len(workers) == 2
    assert_all_gone(workers)


def test_replay_workers_die_and_the_next_run_removes_the_scratch(tmp_path: Path) -> None:
    bundle = tmp_path / "b.tar.zst"
    _export(tmp_path, bundle)
    target = tmp_path / "restored"
    target.mkdir()
    workers = kill_while_working(
        [sys.executable, "-c", REPLAY_CHILD, str(bundle), f"sqlite:///{target / 'ledger.db'}"]
    )
    assert len(workers) == 2
    assert_all_gone(workers)
    left = [p for p in target.iterdir() if p.name.startswith(scratch.PREFIX)]
    assert len(left) == 1 and (left[0] / scratch.OWNER_FILE).is_file()
    assert not (target / "ledger.db").exists()

    report = replay_bundle(
        bundle,
        f"sqlite:///{target / 'ledger.db'}",
        jobs=2,
        sizes=PassSizes(range_rows=100, batch_rows=200, parallel_min=10),
    )
    assert report.mode == "restore"
    assert sorted(p.name for p in target.iterdir()) == ["ledger.db"]


def _export(folder: Path, bundle: Path) -> None:
    url = f"sqlite:///{folder / 'exported.db'}"
    with Ledger.open(url, key=SigningKey.generate(name="k"), create=True) as ledger:
        ledger.init("lifetime")
        fill(ledger, 2000)
        export_bundle(ledger, bundle)


def test_a_live_owners_scratch_folder_is_kept(tmp_path: Path) -> None:
    mine = scratch.make(tmp_path, "stage")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone = _dead_pid()
    here = os.readlink("/proc/self/ns/pid")

    def folder(name: str, owner: str | None, age_s: float = 0) -> Path:
        path = tmp_path / f"{scratch.PREFIX}stage-{name}"
        path.mkdir()
        (path / "data").write_text("x")
        if owner is not None:
            (path / scratch.OWNER_FILE).write_text(owner)
        if age_s:
            os.utime(path, (time.time() - age_s, time.time() - age_s))
        return path

    try:
        theirs = folder(f"{other.pid}-a", f"{other.pid} - {here}\n")
        dead = folder(f"{gone}-b", f"{gone} - {here}\n")
        reused = folder(f"{other.pid}-c", f"{other.pid} 1 {here}\n")  # another start time
        elsewhere = folder(f"{gone}-d", f"{gone} - pid:[1]\n")  # another namespace
        starting = folder(f"{gone}-e", None)  # no owner file yet, just made
        abandoned = folder(f"{gone}-f", None, age_s=2 * scratch.YOUNG_S)
        foreign = tmp_path / ".kei-scratch-stage-notapid"
        foreign.mkdir()
        link = tmp_path / f"{scratch.PREFIX}stage-{gone}-lnk"
        link.symlink_to(foreign)
        assert sorted(scratch.sweep(tmp_path)) == sorted([dead, reused, abandoned])
        for kept in (Path(mine.name), theirs, elsewhere, starting, foreign):
            assert kept.is_dir()
        assert link.is_symlink()
    finally:
        other.kill()
        other.wait()
        mine.cleanup()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


UNGUARDED = r"""
import sys
from kei import Ledger, NewEvent, SigningKey
from kei.domain import events

url = sys.argv[1]
print("script ran", flush=True)
ledger = Ledger.open(url, key=SigningKey(bytes.fromhex(sys.argv[2]), name="k"),
                     parallel_signing=True)
ledger.append([
    NewEvent(f"agent-{i % 3}", events.CostRecorded(
        agent_id=f"agent-{i % 3}", provider="p", model="m", micro_cents=i + 1))
    for i in range(40)
])
ledger.close()
"""

UNGUARDED_VERIFY = r"""
import sys
from kei.adapters.store import open_store
from kei.app.ledger.verification import VerifyLimits, verify_store

url = sys.argv[1]
print("script ran", flush=True)
report = verify_store(open_store(url), jobs=2, url=url,
                      limits=VerifyLimits(page=100, range_size=100, parallel_min=10))
print("ok" if report.ok else "findings", report.events_checked, flush=True)
"""


def test_parallel_signing_never_reruns_an_unguarded_script(tmp_path: Path) -> None:
    key = SigningKey.generate(name="k")
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Ledger.open(url, key=key, create=True) as ledger:
        ledger.init("unguarded")
    script = tmp_path / "script.py"
    script.write_text(UNGUARDED)
    done = subprocess.run(
        [sys.executable, str(script), url, key.seed.hex()],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("script ran") == 1
    assert "parallel signing unavailable" not in done.stderr
    store = open_store(url)
    try:
        assert store.count() == 41  # the genesis and the 40 events, once
    finally:
        store.close()


def test_verify_workers_never_rerun_an_unguarded_script(tmp_path: Path) -> None:
    url = _ledger(tmp_path, 500)
    script = tmp_path / "script.py"
    script.write_text(UNGUARDED_VERIFY)
    done = subprocess.run(
        [sys.executable, str(script), url],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["script ran", "ok 501"]


def test_the_parallel_signer_dies_with_its_parent(tmp_path: Path) -> None:
    key = SigningKey.generate(name="k")
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Ledger.open(url, key=key, create=True) as ledger:
        ledger.init("signer")
    workers = kill_while_working([sys.executable, "-c", SIGNER_CHILD, url, key.seed.hex()])
    assert len(workers) == 1
    assert_all_gone(workers)


THREAD_CHILD = r"""
import threading, time
from kei.adapters.workers import processes as workers

started = []
def start():
    p = workers.context().Process(target=time.sleep, args=(120,), daemon=True)
    p.start()
    started.append(p)

t = threading.Thread(target=start)
t.start()
t.join()  # the starting thread is gone: the worker must live on (no death signal)
time.sleep(1)
assert started[0].is_alive()
print("working", flush=True)
time.sleep(120)
"""


def test_a_worker_started_from_a_thread_outlives_the_thread_not_the_process() -> None:
    """Without the kernel's death signal (asked only from the main thread), the
    watcher thread alone ends the worker."""
    workers = kill_while_working([sys.executable, "-c", THREAD_CHILD])
    assert len(workers) == 1
    assert_all_gone(workers)
