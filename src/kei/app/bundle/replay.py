"""``kei replay --from FILE``: verify a bundle completely, then replay it, all or nothing.

Steps (``docs/events.md``, "Bundles"):

1. read the manifest and check its signature against the key it names;
2. read every entry (``reader.py``: safe names, regular files, listed, sizes, hashes,
   no bomb, not truncated) and stage its rows in a scratch store
   (``app/restore/staging.py``);
3. decide what the bundle may do to the target (``app/restore/placement.py``: restore,
   extend or prefix; a fork, a gap or another ledger is refused);
4-8. verify the events, keys, exporter key and checkpoint (``checks.py``);
9. rebuild every projection from the target's log followed by the bundle's rows, in
   a scratch database, and compare each digest with the manifest's;
10. commit: insert the new rows verbatim in ONE transaction that checks the target
    has not moved (``EventStore.insert_stored``), or, for a SQLite file that does not
    exist yet, move the staged database into place in one rename;
11. catch up the target's own projections and compare their digests again.

Steps 2, 5 and 9 run in one pass over the bundle (``pipeline.py``): the rows are
staged, sent to verification workers and folded into the rebuild as they are read,
so the workers check signatures while this process stages and folds. Until step 10
commits, the target is untouched, whatever fails or kills the process. After it, a
crash leaves the projections merely behind (the next catch-up repairs them); a
digest mismatch at step 9 never reaches step 10.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

from msgspec import Struct

from kei.app.bundle.checks import verify_bundle
from kei.app.bundle.content import BundleContent
from kei.app.bundle.digests import Rebuild
from kei.app.bundle.layout import BundleLimits
from kei.app.bundle.manifest import Manifest, ProjectionDigest
from kei.app.bundle.pipeline import PassSizes, ReplayPass
from kei.app.bundle.reader import BundleReader
from kei.app.bundle.report import DigestCheck, ReplayReport, compare
from kei.app.restore.placement import Incoming, Placement, Words, check_overlap, place
from kei.app.restore.staging import Staging
from kei.app.restore.target import Target, open_target, stage_folder
from kei.domain.log.heads import HeadRow
from kei.errors import BundleError

P = TypeVar("P", bound=Sized)
PhaseProgress = Callable[[str, int, int], None] | None
"""(phase, rows done since the last call, rows in the phase)."""


def replay_bundle(
    path: Path,
    url: str,
    *,
    dry_run: bool = False,
    jobs: int = 1,
    limits: BundleLimits = BundleLimits(),
    synchronous: str = "FULL",
    progress: PhaseProgress = None,
    sizes: PassSizes = PassSizes(),
    seal_key: bytes | None = None,
) -> ReplayReport:
    """Verify the bundle at ``path`` and replay it into the store at ``url``; ``jobs``
    verification processes (for a bundle of ``sizes.parallel_min`` events or more).
    ``seal_key``: the target's read models end sealed (``projection_seal``), so the
    next read command trusts them without rebuilding."""
    target = open_target(url, synchronous)
    try:
        with closing(BundleReader(path, limits=limits)) as reader:
            manifest = reader.manifest()  # step 1
            the_plan = place(incoming(manifest), target)  # step 3 (before reading the rest)
            folder = None if dry_run else stage_folder(target)
            with closing(Staging(folder, journal="MEMORY")) as staging:
                work = Work(jobs, sizes, progress)
                report = _replay(reader, manifest, target, the_plan, staging, dry_run, work)
        if report.appended and target.new_file is not None:
            report.live = report.digests  # step 11: the moved file's projections are step 9's
            if seal_key is not None and all(d.status != "differs" for d in report.live):
                _seal(target.url, seal_key)
        elif report.appended:
            report.live = _catch_up(target.url, manifest, seal_key)  # step 11
        return report
    finally:
        target.close()


class Work(Struct, frozen=True):
    """How the pass runs: worker processes, sizes, progress."""

    jobs: int
    sizes: PassSizes
    progress: PhaseProgress


def _replay(
    reader: BundleReader,
    m: Manifest,
    target: Target,
    the_plan: Placement,
    staging: Staging,
    dry_run: bool,
    work: Work,
) -> ReplayReport:
    content = BundleContent(m)
    moving = target.new_file is not None and not dry_run
    scratch = staging.url if moving else f"sqlite:///{staging.folder / 'projections.db'}"
    lower = _lower(target, the_plan, m)
    rebuild = Rebuild(scratch, target.store if lower else None, lower)  # step 9 begins
    digests: list[ProjectionDigest] = []
    try:
        checked = ReplayPass(  # steps 2 and 5, and step 9's fold
            content, staging, link=the_plan.link,
            keys_before=target.keys_before(m.first_position),
            fold=None if the_plan.mode == "prefix" else rebuild.fold, fold_after=lower,
            jobs=work.jobs, sizes=work.sizes, progress=work.progress,
        ).run(reader, meanwhile=lambda: digests.extend(rebuild.digests()))  # fmt: skip
        if the_plan.mode == "extend":
            check_overlap(incoming(m), target, staging.store)  # step 3, now the rows are here
        ring = verify_bundle(staging.store, content, target, checked)  # steps 4-8
        if checked.fold_error is not None:
            raise checked.fold_error
        report = ReplayReport(str(reader.path), target.url, the_plan.mode, dry_run, m,
                              keys=len(ring.keys))  # fmt: skip
        report.digests = compare(m.projections, digests)  # step 9 ends
    finally:
        rebuild.close()
    bad = [d for d in report.digests if d.status == "differs"]
    if bad:
        raise BundleError(
            f"projection {bad[0].name} rebuilt from the bundle has digest {bad[0].found}, "
            f"its manifest says {bad[0].expected}",
            kind="digest",
        )
    if dry_run or the_plan.mode == "prefix":
        return report
    report.appended = _commit(target, the_plan, staging, m, work.progress, content.heads)
    return report


def _lower(target: Target, the_plan: Placement, m: Manifest) -> int:
    """Where the target's own log ends for the rebuild: nothing (restore), its head
    (extend), or the bundle's head (prefix: the bundle adds nothing to fold)."""
    if the_plan.mode == "restore":
        return 0
    if the_plan.mode == "prefix":
        return m.last_position
    return the_plan.split


def incoming(m: Manifest) -> Incoming:
    """The bundle's rows as its manifest states them, for ``placement.place``."""

    def other_ledger(ours: str | None) -> str:
        return (
            f"the bundle is of ledger {m.ledger_id} ({m.ledger_name}), this store holds "
            f"ledger {ours}: refused"
        )

    words = Words(
        "the bundle starts",
        f"it can only extend a store holding ledger {m.ledger_id}",
        other_ledger,
    )
    return Incoming(
        m.first_seq, _digest(m.prev_hash), m.last_seq, m.last_position, _digest(m.head_hash),
        words, ledger_id=m.ledger_id,
    )  # fmt: skip


def _digest(text: str) -> bytes:
    """The bytes of a manifest's ``sha256:<hex>`` (checked well-formed when decoded)."""
    return bytes.fromhex(text.removeprefix("sha256:"))


def _commit(
    target: Target,
    the_plan: Placement,
    staging: Staging,
    m: Manifest,
    progress: PhaseProgress,
    heads: list[HeadRow],
) -> int:
    """Step 10; the bundle's signed heads land in the same transaction (or file)."""
    if target.new_file is not None:
        staging.put_heads(heads)
        staging.move_to(target.new_file)
        return m.events
    assert target.store is not None
    total = m.last_seq + 1 - target.size
    pages = _ticking(staging.rows_after(the_plan.split), "writing", total, progress)
    return target.store.insert_stored(
        pages, head=target.head, create=not target.created, heads=heads
    )


def _seal(url: str, seal_key: bytes) -> None:
    """Seal the moved file's read models: step 9 folded them from the bundle's rows
    and each matched the digest the signed manifest names."""
    from kei.adapters.readmodels.engine import default_engine

    with default_engine(url, seal_key) as engine:
        engine.seal()


def _catch_up(url: str, m: Manifest, seal_key: bytes | None = None) -> list[DigestCheck]:
    """Step 11: the target's own projections, caught up, against the manifest; a
    projection that differs is rebuilt once (the log reproduced the digest at step 9)."""
    from kei.adapters.readmodels.engine import default_engine

    with default_engine(url, seal_key) as engine:
        checks = _live(engine, m)
        stale = [c.name for c in checks if c.status == "differs"]
        if stale:
            engine.rebuild(stale)
            checks = _live(engine, m)
    return checks


def _live(engine: Any, m: Manifest) -> list[DigestCheck]:
    statuses = engine.status()
    found = [
        ProjectionDigest(s.name, s.version, s.digest_text)
        for s in statuses
        if s.position == m.last_position
    ]
    return compare(m.projections, found)


def _ticking(pages: Iterable[P], phase: str, total: int, progress: PhaseProgress) -> Iterator[P]:
    for page in pages:
        if progress is not None:
            progress(phase, len(page), total)
        yield page
