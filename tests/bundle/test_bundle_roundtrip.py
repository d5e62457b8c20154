"""Export and replay: the same events, bytes and digests, on both stores and across them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bundle_helpers import fill, rows_of, snapshot, store_url_of
from kei import Ledger, NewEvent, SigningKey
from kei.adapters.store import open_store
from kei.app.bundle.export import export_bundle
from kei.app.bundle.replay import replay_bundle
from kei.app.ledger.verification import verify_store
from kei.domain import events
from kei.errors import BundleError, InputError
from kei.projections.registry import default_projections


def rotated_source(make_ledger: Callable[..., Ledger], url: str, key: SigningKey) -> Ledger:
    """A ledger with 300 events, a key rotation, then 50 more signed by the new key."""
    ledger = make_ledger(url)
    fill(ledger, 300)
    second = SigningKey.generate(name="second")
    ledger.add_key(second)
    ledger.key = second
    ledger.revoke_key(key.key_id_hex, "rotation")
    fill(ledger, 50, tag="b")
    return ledger


def export(ledger: Ledger, out: Path, **kwargs: int) -> Path:
    export_bundle(ledger, out, machine="test-host", segment_events=100, **kwargs)
    return out


@pytest.mark.parametrize("target_kind", ["sqlite", "postgres"])
def test_round_trip_restores_the_same_events_bytes_and_digests(
    store_url: str,
    target_kind: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    make_ledger: Callable[..., Ledger],
    key: SigningKey,
) -> None:
    source = rotated_source(make_ledger, store_url, key)
    bundle = export(source, tmp_path / "brain.tar.zst")
    url = store_url_of(target_kind, request, tmp_path, "target")
    report = replay_bundle(bundle, url)
    assert (report.mode, report.appended, report.keys) == ("restore", source.store.count(), 2)
    assert [d.status for d in report.digests] == ["matched"] * len(default_projections())
    assert [d.status for d in report.live] == ["matched"] * len(default_projections())
    target = open_store(url)
    try:
        assert rows_of(target) == rows_of(source.store)
        assert verify_store(target).ok
    finally:
        target.close()


def test_sqlite_to_postgres_to_sqlite_gives_the_same_bundle_bytes(
    sqlite_url: str,
    pg_url: str,
    tmp_path: Path,
    make_ledger: Callable[..., Ledger],
    key: SigningKey,
) -> None:
    source = rotated_source(make_ledger, sqlite_url, key)
    first = export(source, tmp_path / "one.tar.zst")
    replay_bundle(first, pg_url)
    with Ledger.open(pg_url, key=source.key) as middle:
        second = export(middle, tmp_path / "two.tar.zst")
        pg_rows = rows_of(middle.store)
    assert second.read_bytes() == first.read_bytes()
    back = f"sqlite:///{tmp_path / 'back.db'}"
    replay_bundle(second, back)
    target = open_store(back)
    try:
        assert rows_of(target) == pg_rows == rows_of(source.store)
    finally:
        target.close()


def test_exporting_twice_gives_identical_bytes(
    ledger: Ledger, store_url: str, tmp_path: Path
) -> None:
    fill(ledger, 120)
    one = tmp_path / "one.tar.zst"
    two = tmp_path / "two.tar.zst"
    export_bundle(ledger, one)
    export_bundle(ledger, two)
    assert one.read_bytes() == two.read_bytes()


def test_a_later_bundle_extends_a_store_restored_from_an_earlier_one(
    store_url: str,
    tmp_path: Path,
    make_ledger: Callable[..., Ledger],
    request: pytest.FixtureRequest,
) -> None:
    source = make_ledger(f"sqlite:///{tmp_path / 'source.db'}")
    fill(source, 150)
    early = export(source, tmp_path / "early.tar.zst")
    early_head = source.store.max_position()
    replay_bundle(early, store_url)
    fill(source, 80, tag="x")
    later = export(source, tmp_path / "later.tar.zst")
    report = replay_bundle(later, store_url)
    assert (report.mode, report.appended) == ("extend", 80)
    again = replay_bundle(early, store_url)
    assert (again.mode, again.appended) == ("prefix", 0)
    other = store_url_of("sqlite", request, tmp_path, "other")
    replay_bundle(early, other)
    tail = export(source, tmp_path / "tail.tar.zst", since=early_head)
    assert (replay_bundle(tail, other).mode, replay_bundle(tail, other).mode) == (
        "extend",
        "prefix",
    )
    for url in (store_url, other):
        target = open_store(url)
        try:
            assert rows_of(target) == rows_of(source.store)
        finally:
            target.close()


def test_a_forked_bundle_is_refused_and_nothing_is_written(
    store_url: str, tmp_path: Path, make_ledger: Callable[..., Ledger], key: SigningKey
) -> None:
    source = make_ledger(f"sqlite:///{tmp_path / 'source.db'}")
    fill(source, 60)
    replay_bundle(export(source, tmp_path / "early.tar.zst"), store_url)
    with Ledger.open(store_url, key=key) as diverging:
        diverging.append([NewEvent("agent/z", events.AgentMerged(agent_id="z"))])
    fill(source, 10, tag="y")
    later = export(source, tmp_path / "later.tar.zst")
    before = snapshot(store_url)
    with pytest.raises(BundleError, match="forks from this store's log at sequence 61") as err:
        replay_bundle(later, store_url)
    assert err.value.kind == "forked"
    assert snapshot(store_url) == before


def test_another_ledgers_bundle_is_refused(
    store_url: str, tmp_path: Path, make_ledger: Callable[..., Ledger]
) -> None:
    make_ledger(store_url)
    stranger = make_ledger(f"sqlite:///{tmp_path / 'stranger.db'}")
    fill(stranger, 5)
    bundle = export(stranger, tmp_path / "s.tar.zst")
    before = snapshot(store_url)
    with pytest.raises(BundleError, match="this store holds ledger") as err:
        replay_bundle(bundle, store_url)
    assert err.value.kind == "other-ledger"
    assert snapshot(store_url) == before


def test_a_since_bundle_cannot_restore_an_empty_store(
    ledger: Ledger, store_url: str, tmp_path: Path
) -> None:
    fill(ledger, 20)
    bundle = export(ledger, tmp_path / "tail.tar.zst", since=5)
    target = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(BundleError, match="starts at sequence 5") as err:
        replay_bundle(bundle, target)
    assert err.value.kind == "gap"
    assert not (tmp_path / "empty.db").exists()


def test_dry_run_verifies_everything_and_writes_nothing(
    ledger: Ledger, store_url: str, tmp_path: Path
) -> None:
    fill(ledger, 30)
    bundle = export(ledger, tmp_path / "b.tar.zst")
    target = tmp_path / "new.db"
    report = replay_bundle(bundle, f"sqlite:///{target}", dry_run=True)
    assert (report.mode, report.appended, report.dry_run) == ("restore", 0, True)
    assert [d.status for d in report.digests] == ["matched"] * len(default_projections())
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".kei-")]


def test_exporting_past_the_head_is_refused(ledger: Ledger, store_url: str, tmp_path: Path) -> None:
    out = tmp_path / "b.tar.zst"
    with pytest.raises(InputError, match="nothing to export after position 1"):
        export_bundle(ledger, out, since=1)
    assert not out.exists()


@pytest.mark.slow
def test_a_large_bundle_is_verified_in_worker_processes(
    sqlite_url: str, tmp_path: Path, make_ledger: Callable[..., Ledger]
) -> None:
    source = make_ledger(sqlite_url)
    fill(source, 21_000)
    bundle = export(source, tmp_path / "big.tar.zst")
    target = f"sqlite:///{tmp_path / 'big.db'}"
    report = replay_bundle(bundle, target, jobs=2)
    assert (report.mode, report.appended, report.ok) == ("restore", 21_001, True)
