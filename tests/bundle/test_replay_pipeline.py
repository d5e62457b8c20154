"""Replay's one pass: staging, verification workers and the fold, as one.

Each bundle is replayed in this process (``jobs=1``) and with two verification
workers and ranges of a few rows (a 350-event bundle becomes 12 ranges and 9 staged
batches, a key rotation among them), and both must end the same: the same rows and digests, or the
same refusal with nothing written. Events are tampered with below the manifest (the
segment changed, its hash and the manifest re-signed by the ledger's own key), so
only the event checks can catch them.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundle_helpers import fill, rows_of, snapshot, store_url_of
from hostile_bundles import pack, resign, unpack
from kei import Ledger, SigningKey
from kei.adapters.store import open_store
from kei.app.bundle.export import export_bundle
from kei.app.bundle.layout import segment_name
from kei.app.bundle.pipeline import PassSizes
from kei.app.bundle.replay import replay_bundle
from kei.app.bundle.segments import encode_frame
from kei.app.bundle.verifiers import FrameVerifiers
from kei.domain.log.keyring import build_keyring
from kei.domain.log.verify import RangeChecker
from kei.errors import BundleError, StoreError
from kei.projections.registry import default_projections

RANGE = 23
SEGMENT = 10  # a page is a segment here, so ranges are 30 rows: 1-30, 31-60, 61-90, ...
MODES = {
    "serial": {"jobs": 1, "sizes": PassSizes(range_rows=RANGE, batch_rows=40)},
    "workers": {"jobs": 2, "sizes": PassSizes(range_rows=RANGE, batch_rows=40, parallel_min=0)},
}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, SigningKey]:
    """A ledger of 300 events, a key rotation, 50 more; bundles of its first part and
    of all of it; the key that signed the manifests."""
    folder = tmp_path_factory.mktemp("pipeline")
    first = SigningKey.generate(name="default")
    url = f"sqlite:///{folder / 'source.db'}"
    with Ledger.open(url, key=first, create=True) as ledger:
        ledger.init("pipeline")
        fill(ledger, 150)
        early = folder / "early.tar.zst"
        export_bundle(ledger, early, segment_events=SEGMENT)
        fill(ledger, 150, tag="b")
        second = SigningKey.generate(name="second")
        ledger.add_key(second)
        ledger.key = second
        ledger.revoke_key(first.key_id_hex, "rotation")
        fill(ledger, 50, tag="c")
        full = folder / "full.tar.zst"
        export_bundle(ledger, full, segment_events=SEGMENT)
    return early, full, second


def source_rows(bundle: Path, tmp_path: Path) -> list[tuple[Any, ...]]:
    url = f"sqlite:///{tmp_path / 'reference.db'}"
    replay_bundle(bundle, url, **MODES["serial"])  # type: ignore[arg-type]
    store = open_store(url)
    try:
        return rows_of(store)
    finally:
        store.close()


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("target_kind", ["new-file", "sqlite", "postgres"])
def test_both_modes_restore_and_extend_to_the_same_rows_and_digests(
    mode: str,
    target_kind: str,
    source: tuple[Path, Path, SigningKey],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    early, full, _ = source
    if target_kind == "new-file":
        url, expected_mode = f"sqlite:///{tmp_path / 'new' / 'ledger.db'}", "restore"
    else:
        url, expected_mode = store_url_of(target_kind, request, tmp_path, "target"), "extend"
        replay_bundle(early, url)
    report = replay_bundle(full, url, **MODES[mode])  # type: ignore[arg-type]
    assert report.mode == expected_mode
    assert [d.status for d in report.digests] == ["matched"] * len(default_projections())
    assert [d.status for d in report.live] == ["matched"] * len(default_projections())
    store = open_store(url)
    try:
        assert rows_of(store) == source_rows(full, tmp_path)
    finally:
        store.close()


def test_a_restored_file_is_a_wal_store_like_any_other(
    source: tuple[Path, Path, SigningKey], tmp_path: Path
) -> None:
    """The stage keeps its journal in memory; the file it becomes is WAL, and nothing
    of the stage (its folder, a journal) is left beside it."""
    _, full, key = source
    path = tmp_path / "ledger.db"
    replay_bundle(full, f"sqlite:///{path}", **MODES["workers"])  # type: ignore[arg-type]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.db"]
    with Ledger.open(f"sqlite:///{path}", key=key) as ledger:
        fill(ledger, 3, tag="after")
        assert ledger.verify().ok


@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_bundle_that_is_a_prefix_appends_nothing(
    mode: str, source: tuple[Path, Path, SigningKey], tmp_path: Path
) -> None:
    early, full, _ = source
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    replay_bundle(full, url)
    before = snapshot(url)
    report = replay_bundle(early, url, **MODES[mode])  # type: ignore[arg-type]
    assert (report.mode, report.appended) == ("prefix", 0)
    assert all(d.status == "matched" for d in report.digests)
    assert snapshot(url) == before


def tampered(full: Path, key: SigningKey, out: Path, change: Callable[[bytes], bytes]) -> Path:
    """``full`` with the bytes of its segment from position 61 changed by ``change``,
    listed and signed anew by ``key`` (the ledger's own: the manifest checks pass)."""
    entries = unpack(full)
    at = next(i for i, e in enumerate(entries) if e.name == segment_name(61))
    entries[at] = replace(entries[at], data=change(entries[at].data))
    return pack(out, resign(entries, key, as_exporter=True))


def frames_of(data: bytes) -> list[list[Any]]:
    rows, at = [], 0
    while at < len(data):
        (size,) = struct.unpack_from(">I", data, at)
        rows.append(list(msgspec.msgpack.decode(data[at + 4 : at + 4 + size])))
        at += 4 + size
    return rows


def with_row(index: int, field: int, value: Callable[[Any], Any]) -> Callable[[bytes], bytes]:
    """A change to one field of one row of a segment, framed anew."""

    def change(data: bytes) -> bytes:
        rows = frames_of(data)
        rows[index][field] = value(rows[index][field])
        return b"".join(encode_frame(tuple(r)) for r in rows)

    return change


def flip_last(b: bytes) -> bytes:
    return b[:-1] + bytes([b[-1] ^ 1])


# Position 61 opens a range: its link is joined to the range before, not checked in a
# worker, and a broken link there is re-checked from the staged rows to be named.
CHANGES = {
    "payload-byte": (with_row(3, 4, flip_last), 64, "content-changed"),
    "range-edge-prev-hash": (with_row(0, 6, flip_last), 61, "chain-broken"),
    "signature-byte": (with_row(8, 4, lambda s: s[:9] + bytes([s[9] ^ 1]) + s[10:]), 69,
                       "content-changed"),
}  # fmt: skip


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("case", sorted(CHANGES))
def test_a_changed_event_is_refused_at_its_position_and_nothing_is_written(
    mode: str, case: str, source: tuple[Path, Path, SigningKey], tmp_path: Path
) -> None:
    _, full, key = source
    change, position, kind = CHANGES[case]
    bundle = tampered(full, key, tmp_path / "bad.tar.zst", change)
    url = f"sqlite:///{tmp_path / 'new' / 'ledger.db'}"
    with pytest.raises(BundleError) as err:
        replay_bundle(bundle, url, **MODES[mode])  # type: ignore[arg-type]
    assert err.value.kind == "events", str(err.value)
    assert f"the first at position {position}: {kind}" in str(err.value)
    assert not (tmp_path / "new").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".kei-")]


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_changed_byte_of_a_segment_is_refused(
    data: st.DataObject, source: tuple[Path, Path, SigningKey], tmp_path_factory: Any
) -> None:
    _, full, key = source
    where = data.draw(st.floats(0, 1, exclude_max=True))
    bit = data.draw(st.integers(0, 7))
    mode = data.draw(st.sampled_from(sorted(MODES)))

    def flip(b: bytes) -> bytes:
        i = int(where * len(b))
        return b[:i] + bytes([b[i] ^ (1 << bit)]) + b[i + 1 :]

    folder = tmp_path_factory.mktemp("flip")
    bundle = tampered(full, key, folder / "bad.tar.zst", flip)
    url = f"sqlite:///{folder / 'new' / 'ledger.db'}"
    with pytest.raises(BundleError):
        replay_bundle(bundle, url, **MODES[mode])  # type: ignore[arg-type]
    assert not (folder / "new").exists()


@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_byte_that_makes_two_events_claim_one_version_is_refused(
    source: tuple[Path, Path, SigningKey], tmp_path: Path, mode: str
) -> None:
    """Found by the test above: one flipped bit early in a segment gave two staged rows
    one (stream, version); the staging store's UNIQUE error escaped as a StoreError
    (exit 3) instead of the bundle being refused, nothing written."""
    _, full, key = source

    def flip(b: bytes) -> bytes:
        i = int(0.005 * len(b))
        return b[:i] + bytes([b[i] ^ 1]) + b[i + 1 :]

    bundle = tampered(full, key, tmp_path / "bad.tar.zst", flip)
    url = f"sqlite:///{tmp_path / 'new' / 'ledger.db'}"
    with pytest.raises(BundleError):
        replay_bundle(bundle, url, **MODES[mode])  # type: ignore[arg-type]
    assert not (tmp_path / "new").exists()


def test_workers_check_frames_as_this_process_checks_rows(
    source: tuple[Path, Path, SigningKey], tmp_path: Path
) -> None:
    _, full, _ = source
    rows = [tuple(r) for r in source_rows(full, tmp_path)]
    store = open_store(f"sqlite:///{tmp_path / 'reference.db'}")
    keys = [r for r in store.read() if r.stream == "kei.keys"]
    store.close()
    ring = build_keyring(keys)
    here = RangeChecker(ring, link_first=False)
    here.feed(rows[:100])
    with FrameVerifiers(2, max_frame=1 << 20, max_findings=10) as workers:
        workers.submit(keys, b"".join(encode_frame(r) for r in rows[:100]))
        workers.submit(keys, b"".join(encode_frame(r) for r in rows[100:]))
        first, second = workers.next_result(), workers.next_result()
    assert (first.count, first.findings, first.last) == (100, [], here.result.last)
    assert (second.count, second.findings) == (len(rows) - 100, [])
    assert second.first is not None and second.first[0] == rows[100][0]


def test_a_worker_that_dies_is_a_store_error() -> None:
    with FrameVerifiers(1, max_frame=1 << 20, max_findings=10) as workers:
        worker = workers._workers[0]
        worker.process.kill()
        worker.process.join()
        workers.submit([], b"")
        with pytest.raises(StoreError, match="died"):
            workers.next_result()


def test_source_bundle_round_trips_with_entries_unchanged(
    source: tuple[Path, Path, SigningKey], tmp_path: Path
) -> None:
    """The tampering helpers change nothing by themselves: re-packed as it is, the
    bundle still replays (so every refusal above is the change's doing)."""
    _, full, key = source
    bundle = tampered(full, key, tmp_path / "same.tar.zst", lambda b: b)
    url = f"sqlite:///{tmp_path / 'x.db'}"
    report = replay_bundle(bundle, url, **MODES["workers"])  # type: ignore[arg-type]
    assert all(d.status == "matched" for d in report.digests)


class FoldFailedError(Exception):
    pass


def failing_fold(calls: int) -> Callable[..., None]:
    """A ``Rebuild.fold`` that works ``calls`` times, then fails."""
    from kei.app.bundle.digests import Rebuild

    real = Rebuild.fold
    seen = [0]

    def fold(self: Rebuild, records: Any) -> None:
        seen[0] += 1
        if seen[0] > calls:
            raise FoldFailedError("the projection code failed")
        real(self, records)

    return fold


@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_failed_fold_is_raised_after_verification_and_nothing_is_written(
    mode: str,
    source: tuple[Path, Path, SigningKey],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, full, key = source
    monkeypatch.setattr("kei.app.bundle.digests.Rebuild.fold", failing_fold(2))
    url = f"sqlite:///{tmp_path / 'new' / 'ledger.db'}"
    with pytest.raises(FoldFailedError):
        replay_bundle(full, url, **MODES[mode])  # type: ignore[arg-type]
    assert not (tmp_path / "new").exists()
    bad = tampered(full, key, tmp_path / "bad.tar.zst", with_row(3, 4, flip_last))
    with pytest.raises(BundleError) as err:  # a finding is named before a failed fold
        replay_bundle(bad, url, **MODES[mode])  # type: ignore[arg-type]
    assert err.value.kind == "events"
    assert not (tmp_path / "new").exists()
