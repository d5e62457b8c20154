"""Hostile bundles: each one refused with a one-line message, and nothing written.

Every case of ``hostile_bundles.CASES`` is built from a genuine bundle that would
extend the target, then replayed into three targets: a SQLite file that does not
exist yet (it must still not exist), and an existing store of the same ledger on
SQLite and on PostgreSQL (same rows, same bytes). ``inspect`` flags each case too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from bundle_helpers import fill, snapshot, store_url_of
from hostile_bundles import CASES, pack, truncate, unpack
from kei import Ledger, SigningKey
from kei.adapters.files.tarsafe import ArchiveLimits
from kei.app.bundle.export import export_bundle
from kei.app.bundle.inspect import inspect_bundle
from kei.app.bundle.layout import BundleLimits
from kei.app.bundle.replay import replay_bundle
from kei.errors import BundleError


@dataclass(frozen=True)
class Genuine:
    early: Path
    later: Path
    key: SigningKey
    folder: Path


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> Genuine:
    folder = tmp_path_factory.mktemp("genuine")
    key = SigningKey.generate(name="default")
    url = f"sqlite:///{folder / 'source.db'}"
    with Ledger.open(url, key=key, create=True) as ledger:
        ledger.init("hostile")
        fill(ledger, 100)
        early = folder / "early.tar.zst"
        export_bundle(ledger, early, segment_events=50)
        fill(ledger, 150, tag="b")
        later = folder / "later.tar.zst"
        export_bundle(ledger, later, segment_events=50)
    return Genuine(early, later, key, folder)


_BUILT: dict[str, Path] = {}
# The bomb (128 MiB of zeros) is stopped by the cap on total output; the real cap
# (64 GiB, beyond any real bundle) is lowered here so the test does not take minutes.
LIMITS = {"zstd-bomb": BundleLimits(archive=ArchiveLimits(max_bytes=64 << 20))}


def hostile(genuine: Genuine, case: str) -> Path:
    """The hostile bundle of ``case``, built once per test session."""
    if case not in _BUILT:
        builder, _ = CASES[case]
        _BUILT[case] = pack(
            genuine.folder / f"{case}.tar.zst", builder(unpack(genuine.later), genuine.key)
        )
    return _BUILT[case]


@pytest.fixture(params=["new-file", "sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path, genuine: Genuine) -> str:
    """A target the genuine later bundle would change."""
    if request.param == "new-file":
        return f"sqlite:///{tmp_path / 'new' / 'ledger.db'}"
    url = store_url_of(request.param, request, tmp_path, "target")
    replay_bundle(genuine.early, url)
    return url


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_bundle_is_refused_and_nothing_is_written(
    case: str, genuine: Genuine, target: str
) -> None:
    path = hostile(genuine, case)
    before = snapshot(target)
    with pytest.raises(BundleError) as err:
        replay_bundle(path, target, limits=LIMITS.get(case, BundleLimits()))
    assert err.value.kind == CASES[case][1], str(err.value)
    assert "\n" not in str(err.value)
    assert snapshot(target) == before
    if target.endswith("/new/ledger.db"):
        folder = Path(target[len("sqlite:///") :]).parent
        assert not folder.exists()
        assert not [p for p in folder.parent.iterdir() if p.name.startswith(".kei-")]


@pytest.mark.parametrize("keep", [0.5, 0.98], ids=["half", "last-bytes-cut"])
def test_truncated_bundle_is_refused_and_nothing_is_written(
    keep: float, genuine: Genuine, target: str, tmp_path: Path
) -> None:
    path = truncate(genuine.later, tmp_path / "cut.tar.zst", keep)
    before = snapshot(target)
    with pytest.raises(BundleError, match="truncated") as err:
        replay_bundle(path, target)
    assert err.value.kind == "truncated"
    assert snapshot(target) == before


# Without the ledger, inspect knows no key but the exporter's: a manifest re-signed by
# a stranger shows as a checkpoint the exporter did not sign.
INSPECT_KIND = {"signed-by-unknown-key": "checkpoint"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_inspect_flags_the_hostile_entry(case: str, genuine: Genuine) -> None:
    found = inspect_bundle(hostile(genuine, case), limits=LIMITS.get(case, BundleLimits()))
    assert not found.ok
    assert INSPECT_KIND.get(case, CASES[case][1]) in [p.kind for p in found.problems]


def test_inspect_of_a_genuine_bundle_finds_nothing(genuine: Genuine) -> None:
    found = inspect_bundle(genuine.later)
    assert found.ok, [str(p) for p in found.problems]
    assert found.manifest is not None
    assert found.events_read == found.manifest.events == 251


def test_a_file_that_is_no_bundle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(BundleError, match="not zstd-compressed") as err:
        replay_bundle(path, f"sqlite:///{tmp_path / 'x.db'}")
    assert err.value.kind == "format"
    assert not (tmp_path / "x.db").exists()
