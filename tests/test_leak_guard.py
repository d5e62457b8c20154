"""The leak matrix on the write path: a secret in free text refuses the whole batch and
appends nothing, a substitute rule redacts what is signed and the log says which rule
did it, a warn rule flags; and for every fake credential in the corpus, the log's bytes
never hold the secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kei.adapters.leak_files import shipped_matrix
from kei.adapters.ledger import Ledger, NewEvent
from kei.domain import events
from kei.domain.leaks import LeakBlockedError, Matrix
from kei.domain.memory_events import MemoryWritten, memory_stream

CORPUS = Path(__file__).parent / "fixtures" / "leaks" / "secrets"
GITHUB = "ghp_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"


def stored_bytes(ledger: Ledger) -> bytes:
    return b"".join(e.payload_bytes for e in ledger.read())


def test_a_blocked_secret_refuses_the_whole_batch(ledger: Ledger) -> None:
    before = ledger.store.count()
    batch = [
        NewEvent("agent/a", events.AgentForked(agent_id="a", branch="b")),
        NewEvent("agent/a", events.AgentFailed(agent_id="a", reason=f"token {GITHUB} expired")),
    ]
    with pytest.raises(
        LeakBlockedError, match="field 'reason' matches leak rule 'github-token'"
    ) as e:
        ledger.append(batch)
    assert GITHUB not in str(e.value) and ledger.store.count() == before


def test_a_substitute_rule_redacts_and_the_log_says_which(ledger: Ledger) -> None:
    url = "postgres://app:s3cr3t-pa55@db.internal/app"
    done = ledger.append([
        NewEvent("agent/a", events.AgentForked(agent_id="a", branch="b")),
        NewEvent("agent/a", events.AgentCompleted(agent_id="a", summary=f"migrated {url}")),
        NewEvent(memory_stream("default", "db"),
                 MemoryWritten(namespace="default", key="db", value=f"use {url}")),
    ])  # fmt: skip
    assert [e.type for e in done] == ["agent.forked", "agent.completed", "memory.written"]
    summary = done[1].payload()
    assert isinstance(summary, events.AgentCompleted)
    assert (
        summary.summary
        == "migrated postgres://app:[REDACTED:database-url-password]@db.internal/app"
    )
    memory = done[2].payload()
    assert isinstance(memory, MemoryWritten) and memory.redacted_by == ("database-url-password",)
    notes = [e.payload() for e in ledger.read() if e.type == "leak.noted"]
    assert len(notes) == 1 and notes[0].stream == "agent/a"  # type: ignore[attr-defined]
    assert notes[0].fields == ("summary",)  # type: ignore[attr-defined]
    assert b"s3cr3t-pa55" not in stored_bytes(ledger)


def test_warn_rules_flag_and_let_through(tmp_path: Path, ledger: Ledger) -> None:
    matrix = Matrix.from_data({"rule": [{
        "id": "internal-host", "pattern": r"\bbuild-\d+\.corp\b", "category": "internal-infra",
        "severity": "warn", "scope": ["all-writes"], "rationale": "internal names",
        "added": "2026-11-25",
    }]}, source="test")  # fmt: skip
    flagged = Ledger(ledger.store, key=ledger.key, leaks=matrix)
    event = flagged.append([NewEvent(memory_stream("default", "k"), MemoryWritten(
        namespace="default", key="k", value="built on build-7.corp"))])[0]  # fmt: skip
    payload = event.payload()
    assert isinstance(payload, MemoryWritten)
    assert (payload.value, payload.flagged_by) == ("built on build-7.corp", ("internal-host",))


def test_no_rules_means_no_scanning(ledger: Ledger) -> None:
    open_ledger = Ledger(ledger.store, key=ledger.key, leaks=Matrix(()))
    open_ledger.append([NewEvent(memory_stream("d", "k"),
                                 MemoryWritten(namespace="d", key="k", value=GITHUB))])  # fmt: skip
    assert GITHUB.encode() in stored_bytes(ledger)


def _corpus() -> list[str]:
    return sorted(p.read_text() for p in CORPUS.iterdir() if p.is_file())


_NO_NUL = st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\x00"
)  # no NUL: limits.py


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(index=st.integers(min_value=0), prefix=st.text(_NO_NUL, max_size=20),
       suffix=st.text(_NO_NUL, max_size=20))  # fmt: skip
def test_no_corpus_secret_ever_reaches_the_log(
    ledger: Ledger, index: int, prefix: str, suffix: str
) -> None:
    corpus = _corpus()
    text = prefix + "\n" + corpus[index % len(corpus)] + "\n" + suffix
    before = ledger.store.count()
    payload = MemoryWritten(namespace="p", key="k", value=text)
    try:
        ledger.append([NewEvent(memory_stream("p", "k"), payload)])
    except LeakBlockedError:
        assert ledger.store.count() == before
        return
    written = ledger.last(1)[0].payload()
    assert isinstance(written, MemoryWritten) and written.redacted_by  # redacted, not passed


NEEDLED = [r for r in shipped_matrix().rules if r.needles]
FRAGMENTS = ["key", "API_KEY", "token", "Secret", "password", "pwd", "credential", "://",
             "postgres://u:", "Authorization: Bearer ", "aws_secret_access_key=", "=", ":", '"',
             "aZ9+/_-", "x" * 20, "0123456789abcdefABCDEF"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=12), max_size=12))
def test_needles_never_hide_a_match(parts: list[str]) -> None:
    """A rule skipped for want of a needle could not have matched (the skip is exact)."""
    text = "".join(parts)
    assert len(NEEDLED) == 4
    for rule in NEEDLED:
        if not rule.could_match(text):
            assert rule.regex.search(text) is None, (rule.id, text)


def test_the_corpora_need_no_needle_they_lack() -> None:
    texts = [p.read_text() for p in (CORPUS.parent / "clean").iterdir() if p.is_file()]
    for text in [*texts, *_corpus()]:
        for rule in NEEDLED:
            if not rule.could_match(text):
                assert rule.regex.search(text) is None, rule.id
