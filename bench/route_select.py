"""``kei route select`` against a ledger of 1,000,000 outcome events over 1,000 task classes.

The ledger: 1,000 task classes (DNAs of 10 roles × 100 scopes), and per class about
1,000 ``route.outcome`` events on the three ladder models, each model with its own
success rate per class (so some classes clear the bar on haiku, some only on sonnet,
some on nothing). Built once and cached under /tmp.

kei: ``RouteService.select`` in a running process (what an orchestrator embedding kei
pays per decision), once the ``posteriors`` read model is caught up: each decision
catches the projection up (the decisions appended since), reads the counts, decides,
and appends its ``route.decided`` event, signed, on its own stream. Measured apart:
decisions for known classes (the target), and decisions for classes no outcome names,
which read every class of every model for kernel smoothing. Raw limit: the same
decisions by ``kei.domain.routing.select.select`` over an in-memory dict of the same counts
(the Beta bounds and kernel sums alone), no log, no SQL, no signature.

    .venv/bin/python bench/route_select.py --events 1000000 --decisions 2000
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from common import BENCH_TMP, Figure, report
from kei.adapters.files.catalog import load_catalog
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.route_evidence import FoldedEvidence
from kei.app.routing import RouteService
from kei.domain.agents.dna import build_dna
from kei.domain.events.routing import RouteOutcome, decision_stream
from kei.domain.log.keys import SigningKey
from kei.domain.routing.kernel import similarity
from kei.domain.routing.select import DEFAULT_LADDER, DecisionInput, select

UNIT = "decisions/s"
ROLES = ("coder", "tester", "critic", "planner", "docs", "infra", "ml", "review", "ops", "data")


def task_dna(n: int, nonce: int = 0) -> str:
    role = ROLES[n % len(ROLES)]
    body = f"task{n // len(ROLES)}"
    return str(build_dna(role, ["rust", "test"], f"scope{n % 100}", body, nonce.to_bytes(4)))


def task_class(n: int) -> str:
    return task_dna(n).rsplit("-", 1)[0]


RATES = (0.55, 0.8, 0.97)


def success_rate(c: int, model: str) -> float:
    """Each (class, model) its own fixed rate, so classes differ in what clears the bar."""
    return RATES[(c * 7 + DEFAULT_LADDER.index(model)) % len(RATES)]


def outcomes(first: int, total: int, classes: int, rng: random.Random) -> list[NewEvent]:
    out = []
    for i in range(first, first + total):
        c, model = rng.randrange(classes), rng.choice(DEFAULT_LADDER)
        ok = rng.random() < success_rate(c, model)
        payload = RouteOutcome(decision_id=f"bench-{i}", task_class=task_class(c), model=model,
                               outcome="functional" if ok else "fail")  # fmt: skip
        out.append(NewEvent(decision_stream(f"bench-{i}"), payload, 0))
    return out


def cached_ledger(total: int, classes: int) -> Path:
    BENCH_TMP.mkdir(parents=True, exist_ok=True)
    path = BENCH_TMP / f"route-{total}-{classes}.db"
    if path.with_suffix(".done").exists() and path.exists():
        return path
    path.unlink(missing_ok=True)
    started, rng = time.perf_counter(), random.Random(5)
    key = SigningKey(b"\x07" * 32, name="bench")
    with Ledger.open(f"sqlite:///{path}", key=key, create=True, synchronous="OFF") as ledger:
        ledger.init("bench-route")
        for lo in range(0, total, 10_000):
            ledger.append(outcomes(lo, min(10_000, total - lo), classes, rng))
    path.with_suffix(".done").write_text(f"{total}\n")
    print(f"built {total:,} outcomes in {time.perf_counter() - started:.0f} s: {path}")
    return path


def inputs(count: int, classes: int, *, unseen: bool) -> list[DecisionInput]:
    """Decisions for known classes (outcomes on every model), or for classes no outcome
    names (every model falls back on kernel smoothing over all 1,000 classes)."""
    rng = random.Random(9)
    pick = (lambda i: classes + i) if unseen else (lambda i: rng.randrange(classes))
    return [DecisionInput(dna=task_dna(pick(i), nonce=i)) for i in range(count)]


def rate(decide: Callable[[DecisionInput], object], todo: list[DecisionInput]) -> float:
    similarity.cache_clear()  # no run inherits another's memo
    started = time.perf_counter()
    for inp in todo:
        decide(inp)
    return len(todo) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=1_000)
    parser.add_argument("--decisions", type=int, default=2_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    source = cached_ledger(args.events, args.classes)
    work = source.with_name("route-work.db")
    work.unlink(missing_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(work) as dst:
        src.backup(dst)
    url, catalog = f"sqlite:///{work}", load_catalog(None)
    known = inputs(args.decisions, args.classes, unseen=False)
    unseen = inputs(args.decisions // 10, args.classes, unseen=True)
    key = SigningKey(b"\x07" * 32, name="bench")
    with Ledger.open(url, key=key) as ledger, RouteService(ledger, catalog) as router:
        started = time.perf_counter()
        router.engine.catch_up()
        print(f"caught up {args.events:,} outcomes in {time.perf_counter() - started:.1f} s")
        evidence = FoldedEvidence(router_outcomes(router))
        kei_known, kei_unseen = rate(router.select, known), rate(router.select, unseen)

    def price(model: str, tokens_in: int, tokens_out: int) -> int:
        return catalog.price(model, tokens_in, tokens_out).micro_cents

    raw_known = rate(lambda inp: select(inp, evidence, price), known)
    raw_unseen = rate(lambda inp: select(inp, evidence, price), unseen)
    print(f"route select on {args.events:,} outcomes over {args.classes:,} classes: "
          f"{len(known):,} decisions for known classes, {len(unseen):,} for unseen ones")  # fmt: skip
    report(
        [
            Figure("route", "known class, vs the maths alone", kei_known, raw_known,
                   unit=UNIT),
            Figure("route", "known class, caught up, each appended", kei_known, None,
                   1_000.0, UNIT),
            Figure("route", "unseen class (smoothing), vs the maths alone", kei_unseen,
                   raw_unseen, unit=UNIT),
        ],
        args.json,
    )  # fmt: skip


def router_outcomes(router: RouteService) -> list[RouteOutcome]:
    return [o for _, o in router._outcomes()]


if __name__ == "__main__":
    main()
