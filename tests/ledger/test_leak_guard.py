"""The leak matrix on the write path: a secret in free text refuses the whole batch and
appends nothing, a substitute rule redacts what is signed and the log says which rule
did it, a warn rule flags; and for every fake credential in the corpus, the log's bytes
never hold the secret."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_helpers import cli_env, in_process
from kei.adapters.files.leaks import shipped_matrix
from kei.app.ledger.leak_guard import guard_batch
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain import events
from kei.domain.events.leaks import LeakNoted
from kei.domain.events.memory import MemoryWritten, memory_stream
from kei.domain.leaks.free_text import FREE_TEXT
from kei.domain.leaks.matrix import Matrix, _maybe
from kei.errors import LeakBlockedError

CORPUS = Path(__file__).parents[1] / "fixtures" / "leaks" / "secrets"
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
             "aZ9+/_-", "x" * 20, "0123456789abcdefABCDEF", "pass", "db_pass = ", "secret: ",
             "mysql -u r -p", "sshpass -p ", "curl -u a:", "!@#", "Zq7!mw2Lp"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=12), max_size=12))
def test_needles_never_hide_a_match(parts: list[str]) -> None:
    """A rule skipped for want of a needle could not have matched (the skip is exact)."""
    text = "".join(parts)
    assert len(NEEDLED) == 6
    for rule in NEEDLED:
        if not rule.could_match(text):
            assert rule.regex.search(text) is None, (rule.id, text)


def test_the_corpora_need_no_needle_they_lack() -> None:
    texts = [p.read_text() for p in (CORPUS.parent / "clean").iterdir() if p.is_file()]
    for text in [*texts, *_corpus()]:
        for rule in NEEDLED:
            if not rule.could_match(text):
                assert rule.regex.search(text) is None, rule.id


# --- every string, identifiers included -------------------------------------------------

JWT = ("eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiJhZ2VudC03In0." + "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")  # fmt: skip
TRACES = Path(__file__).parents[1] / "fixtures" / "traces"


def sample(t: msgspec.inspect.Type, secret: str | None = None) -> object:
    """A value of type ``t`` (holding ``secret`` if given). A type this does not know
    fails the test: a new kind of field must be taught here, and so thought about."""
    i = msgspec.inspect
    if isinstance(t, i.StrType):
        return secret or "x"
    if isinstance(t, i.LiteralType):
        return secret or t.values[0]
    if isinstance(t, i.IntType | i.FloatType | i.BoolType | i.NoneType):
        return {i.IntType: 1, i.FloatType: 0.5, i.BoolType: False}.get(type(t))
    if isinstance(t, i.UnionType):
        alts = [a for a in t.types if not secret or a != i.NoneType()]
        return sample(alts[0], secret)
    if isinstance(t, i.StructType):
        kwargs = {f.name: sample(f.type) for f in t.fields if f.required}
        if secret is not None:
            holder = next((f for f in t.fields if sample(f.type, "S") != sample(f.type)), None)
            if holder is not None:
                kwargs[holder.name] = sample(holder.type, secret)
        return t.cls(**kwargs)
    if isinstance(t, i.VarTupleType):  # holds a string only if its items can
        can = secret is not None and sample(t.item_type, "S") != sample(t.item_type)
        return (sample(t.item_type, secret),) if can else ()
    raise AssertionError(f"teach sample() the field type {t!r}")


def placements() -> list[tuple[str, str, bool, events.Payload]]:
    """(event type, field, free text?, payload with the secret in that field) for every
    field of every registered payload that can hold a string, found from the types."""
    out = []
    for name, et in sorted(events.REGISTRY.items()):
        info = msgspec.inspect.type_info(et.payload_type)
        assert isinstance(info, msgspec.inspect.StructType)
        base = {f.name: sample(f.type) for f in info.fields if f.required}
        for f in info.fields:
            if sample(f.type, "S") == sample(f.type):
                continue  # numbers, booleans: no string can go there
            payload = et.payload_type(**{**base, f.name: sample(f.type, "{secret}")})
            out.append((name, f.name, f.name in FREE_TEXT.get(name, ()), payload))
    return out


def with_secret(payload: events.Payload, secret: str) -> events.Payload:
    rebuilt: events.Payload = _rebuild(payload, secret)
    return rebuilt


def _rebuild(value: Any, secret: str) -> Any:
    if isinstance(value, str):
        return value.replace("{secret}", secret)
    if isinstance(value, msgspec.Struct):
        fields = {f: _rebuild(getattr(value, f), secret) for f in value.__struct_fields__}
        return type(value)(**fields)
    if isinstance(value, tuple):
        return tuple(_rebuild(v, secret) for v in value)
    return value


PLACEMENTS = placements()


def test_every_string_field_of_every_event_type_is_placed() -> None:
    # The list is derived from the types: a new string field lands here by itself.
    assert len(PLACEMENTS) >= 90
    assert {(n, f) for n, f, free, _ in PLACEMENTS if free} == {
        (n, f) for n, fs in FREE_TEXT.items() for f in fs
    }
    assert ("agent.forked", "origin") in {(n, f) for n, f, _, _ in PLACEMENTS}
    assert ("route.decided", "candidates") in {(n, f) for n, f, _, _ in PLACEMENTS}


@pytest.mark.parametrize(("name", "field", "free", "payload"), PLACEMENTS,
                         ids=[f"{n}.{f}" for n, f, _, _ in PLACEMENTS])  # fmt: skip
def test_a_secret_in_any_string_field_never_reaches_the_log(
    name: str, field: str, free: bool, payload: events.Payload
) -> None:
    matrix = shipped_matrix()
    blocked = with_secret(payload, f"see {GITHUB} here")
    with pytest.raises(LeakBlockedError, match=f"field '{field}") as e:
        guard_batch([NewEvent("s", blocked)], matrix)
    assert GITHUB not in str(e.value)
    redactable = with_secret(payload, f"see {JWT} here")
    if not free:  # an identifier is refused even where free text would be redacted
        with pytest.raises(LeakBlockedError, match="an identifier is refused, never redacted"):
            guard_batch([NewEvent("s", redactable)], matrix)
        return
    out, mine = guard_batch([NewEvent("s", redactable)], matrix)
    assert mine == 1 and JWT not in repr(out) and "[REDACTED:jwt]" in repr(out)


def test_stream_names_are_scanned_too() -> None:
    event = NewEvent(f"memory/default/{GITHUB}", MemoryWritten(namespace="d", key="k", value="v"))
    with pytest.raises(LeakBlockedError, match="field '<stream>' matches leak rule 'github-token'"):
        guard_batch([event], shipped_matrix())


def test_clean_identifiers_are_remembered_and_still_exact() -> None:
    matrix = shipped_matrix()
    payload = events.AgentForked(agent_id="agent-7", branch="kei/agent-7/task", creator="human")
    for _ in range(3):
        assert guard_batch([NewEvent("agent-7", payload)], matrix) == (
            [NewEvent("agent-7", payload)],
            1,
        )
    with pytest.raises(LeakBlockedError):
        guard_batch([NewEvent("agent-7", msgspec.structs.replace(payload, creator=GITHUB))], matrix)


def test_a_warn_rule_on_an_identifier_flags_it_in_a_leak_note(ledger: Ledger) -> None:
    matrix = Matrix.from_data({"rule": [{
        "id": "internal-host", "pattern": r"\bbuild-\d+\.corp\b", "category": "internal-infra",
        "severity": "warn", "scope": ["all-writes"], "rationale": "internal names",
        "added": "2026-11-25",
    }]}, source="test")  # fmt: skip
    flagged = Ledger(ledger.store, key=ledger.key, leaks=matrix)
    flagged.append([NewEvent("agent/a", events.AgentForked(agent_id="a", branch="b",
                                                           worktree="/w/build-7.corp"))])  # fmt: skip
    note = ledger.last(1)[0].payload()
    assert isinstance(note, LeakNoted)
    assert (note.fields, note.flagged_by) == (("worktree",), ("internal-host",))


IDENTIFIER_CASES = {
    "memory key": ["memory", "write", f"k-{GITHUB}", "v"],
    "memory tag": ["memory", "write", "k", "v", "--tag", GITHUB],
    "memory kind": ["memory", "write", "k", "v", "--kind", GITHUB],
    "memory namespace": ["memory", "write", "k", "v", "--namespace", GITHUB],
    "agent id": ["agent", "fork", GITHUB, "main"],
    "branch": ["agent", "fork", "a", f"feat/{GITHUB}"],
    "worktree": ["agent", "fork", "a", "main", "--worktree", f"/w/{GITHUB}"],
    "creator": ["agent", "fork", "a", "main", "--creator", GITHUB],
    "skill name": ["skill", "record", GITHUB, "--success"],
    "model": ["cost", "record", "c", "--provider", "p", "--model", GITHUB, "--micro-cents", "5"],
    "provider": ["cost", "record", "c", "--provider", JWT, "--model", "m", "--micro-cents", "5"],
    "key name": ["keys", "new", f"k-{GITHUB}"],
    "retro session": ["retro", "ingest", str(TRACES / "session-a.jsonl"), "--session", JWT],
}


@pytest.mark.parametrize("args", IDENTIFIER_CASES.values(), ids=IDENTIFIER_CASES.keys())
def test_a_token_in_an_identifier_is_refused_and_the_log_is_unchanged(
    store_url: str, tmp_path: Path, args: list[str]
) -> None:
    run = in_process(cli_env(tmp_path / "home", store_url))
    run("init")
    run("agent", "fork", "c", "main")  # the agent the cost cases charge
    with Ledger.open(store_url) as opened:
        before = [e.payload_bytes for e in opened.read()]
    result = run(*args, code=2)
    assert "an identifier is refused, never redacted" in result.stderr, result.stderr
    assert GITHUB not in result.stderr + result.stdout and JWT not in result.stderr
    with Ledger.open(store_url) as opened:
        assert [e.payload_bytes for e in opened.read()] == before
    assert sorted(p.name for p in (tmp_path / "home" / "keys").iterdir()) == ["default.key"]


def test_a_ledger_name_with_a_secret_is_refused_at_init(store_url: str, tmp_path: Path) -> None:
    run = in_process(cli_env(tmp_path / "home", store_url))
    result = run("init", "--name", f"prod {GITHUB}", code=2)
    assert "field 'name' matches leak rule 'github-token'" in result.stderr
    with Ledger.open(store_url) as opened:
        assert opened.store.count() == 0


def test_a_token_in_a_trace_path_rejects_that_event_not_the_ingest(
    store_url: str, tmp_path: Path
) -> None:
    lines = (TRACES / "session-a.jsonl").read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace('"cwd":"/repo"', f'"cwd":"/repo-{GITHUB}"')
    assert GITHUB in lines[1]
    trace = tmp_path / "t.jsonl"
    trace.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = in_process(cli_env(tmp_path / "home", store_url))
    run("init")
    report = json.loads(run("retro", "ingest", str(trace), "--session", "s", "--json").stdout)
    assert report["rejected"] >= 1 and report["appended"] > report["rejected"]
    with Ledger.open(store_url) as opened:
        assert GITHUB.encode() not in b"".join(e.payload_bytes for e in opened.read())
        rejected = [e.payload() for e in opened.read() if e.type == "trace.rejected"]
    assert {(r.source, r.rule) for r in rejected} == {("leak-matrix", "github-token")}  # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None)
@given(ident=st.lists(st.sampled_from([GITHUB, JWT, "agent-7", "sk-", "ghp_", "/", "token="])
                      | st.text(max_size=8), max_size=6).map("".join))  # fmt: skip
def test_an_identifier_is_refused_exactly_when_a_block_or_substitute_rule_matches(
    ident: str,
) -> None:
    """The memo and the length cut-offs never change the answer, asked twice."""
    matrix = shipped_matrix()
    expected = any(r.matches(ident) for r in matrix.rules if r.severity in ("block", "substitute"))
    event = NewEvent("agent/x", events.AgentForked(agent_id="x", branch="b", creator=ident))
    for _ in range(2):
        try:
            guard_batch([event], matrix)
            refused = False
        except LeakBlockedError:
            refused = True
        assert refused == expected, ident


# -- the identifiers' one-search shortcut ------------------------------------------------


def _texts_of_corpus() -> list[str]:
    root = Path(__file__).parents[1] / "fixtures" / "leaks"
    lines: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", "replace")
        lines += [line for line in text.splitlines() if line.strip()]
    return lines


def _candidates(text: str) -> set[str]:
    """The rules the scope's prefilters let through for ``text`` (``matrix._maybe``)."""
    return {r.id for r in _maybe(shipped_matrix()._active["all-writes"], text)}


def test_the_sharp_prefilter_passes_every_line_a_rule_matches() -> None:
    """Wherever a rule matches, both prefilters must let that rule through (else a
    secret would pass unchecked)."""
    rules = shipped_matrix()._active["all-writes"].scanning
    hits = 0
    for line in _texts_of_corpus():
        matching = {r.id for r in rules if r.matches(line)}
        hits += bool(matching)
        assert matching <= _candidates(line), line[:120]
    assert hits > 50  # the corpus really exercises the rules


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(_texts_of_corpus()), min_size=1, max_size=3), st.text(max_size=20))
def test_the_sharp_prefilter_never_misses_a_rule_on_mixed_text(
    parts: list[str], noise: str
) -> None:
    text = noise.join(parts)
    rules = shipped_matrix()._active["all-writes"].scanning
    assert {r.id for r in rules if r.matches(text)} <= _candidates(text)
