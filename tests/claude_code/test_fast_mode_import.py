"""``kei import claude-code`` reads ``usage.speed``: a fast-mode message is priced with its
entry's fast table (Opus 4.7: $30/$150 per Mtok, 6 x standard), and one on a model
without a fast price at standard rates, marked ``speed_unpriced`` and counted in the
report; on both stores."""

from __future__ import annotations

from pathlib import Path

from claude_transcripts import assistant, write
from kei.adapters.files.catalog import load_catalog
from kei.app.importers.claude_code import import_claude_code
from kei.app.ledger.ledger import Ledger
from kei.domain.events import CostRecorded
from kei.domain.log.recorded import RecordedEvent

SESSION = "33333333-cccc"


def _costs(ledger: Ledger) -> dict[str, CostRecorded]:
    found = {}
    for record in ledger.store.read_types(["cost.recorded"]):
        p = RecordedEvent.from_record(record).payload()
        assert isinstance(p, CostRecorded) and p.origin is not None and p.origin.ref
        found[p.origin.ref] = p
    return found


def test_fast_lines_are_priced_with_the_fast_table_or_flagged(
    ledger: Ledger, tmp_path: Path
) -> None:
    lines = []
    for n, (model, speed) in enumerate([("claude-opus-4-7", "fast"), ("claude-opus-4-7", None),
                                        ("claude-sonnet-4-6", "fast"),
                                        ("claude-opus-4-7", "standard")]):  # fmt: skip
        line = assistant(SESSION, f"msg_{n}", f"req_{n}", f"2026-05-03T10:0{n}:00.000Z",
                         model=model, tokens_in=100, tokens_out=1_000)  # fmt: skip
        if speed is not None:
            line["message"]["usage"]["speed"] = speed
        lines.append(line)
    write(tmp_path / "projects" / "-home-dev-proj" / f"{SESSION}.jsonl", lines)
    report = import_claude_code(ledger, [tmp_path / "projects"], load_catalog(None))
    costs = _costs(ledger)
    opus = 100 * 500 + 1_000 * 2_500  # µ¢ at $5/$25 per Mtok
    fast, plain = costs["msg_0:req_0"], costs["msg_1:req_1"]
    assert (fast.micro_cents, fast.speed, fast.speed_unpriced) == (6 * opus, "fast", False)
    assert (plain.micro_cents, plain.speed, plain.speed_unpriced) == (opus, None, False)
    assert costs["msg_3:req_3"].speed is None  # "standard" is recorded as None
    sonnet = costs["msg_2:req_2"]
    assert sonnet.micro_cents == 100 * 300 + 1_000 * 1_500  # standard rates, marked
    assert (sonnet.speed, sonnet.speed_unpriced, sonnet.unpriced) == ("fast", True, False)
    assert report.speed_unpriced == {"claude-sonnet-4-6": 1}
    assert report.micro_cents == 6 * opus + 2 * opus + sonnet.micro_cents
