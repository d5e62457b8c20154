"""``kei memory`` end to end on both stores: the latest write is the value, the log keeps
every write, ``tag_any`` means any and ``tag_all`` all, full-text search on both
databases, tombstones and compaction hide without erasing, refusals append nothing, and
the read model rebuilt from the log is the one kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from cli_helpers import cli_env, in_process
from kei.app.ledger.ledger import Ledger

Kei = Callable[..., Result]


@pytest.fixture
def kei(store_url: str, tmp_path: Path) -> Kei:
    run: Kei = in_process(cli_env(tmp_path / "home", store_url))
    run("init")
    return run


def items(kei: Kei, *args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in kei(*args, "--json").stdout.splitlines()]


def count(url: str) -> int:
    with Ledger.open(url) as ledger:
        return ledger.store.count()


def test_the_latest_write_is_the_value_and_the_log_keeps_both(kei: Kei, store_url: str) -> None:
    kei("memory", "write", "policy", "backoff, 5 tries", "--kind", "concept", "--tag", "retry")
    kei("memory", "write", "policy", "backoff, 6 tries", "--kind", "concept", "--tag", "retry")
    assert kei("memory", "get", "policy").stdout == "backoff, 6 tries\n"
    got = items(kei, "memory", "get", "policy")[0]
    assert (got["kind"], got["tags"], got["namespace"]) == ("concept", ["retry"], "default")
    with Ledger.open(store_url) as ledger:
        values = [e.payload().value for e in ledger.read_stream("memory/default/policy")]
    assert values == ["backoff, 5 tries", "backoff, 6 tries"]


def test_tag_any_means_any_and_tag_all_means_all(kei: Kei) -> None:
    kei("memory", "write", "a", "one", "--tag", "rust", "--tag", "ci")
    kei("memory", "write", "b", "two", "--tag", "rust")
    kei("memory", "write", "c", "three", "--tag", "a,b")  # a comma is just a character
    keys = lambda *a: sorted(i["key"] for i in items(kei, "memory", "query", *a))  # noqa: E731
    assert keys("--tag-any", "ci", "--tag-any", "rust") == ["a", "b"]
    assert keys("--tag-all", "ci", "--tag-all", "rust") == ["a"]
    assert keys("--tag-any", "a,b") == ["c"] and keys("--tag-any", "a") == []


def test_query_filters_and_orders_as_upstream(kei: Kei) -> None:
    for key, kind in (
        ("run_1", "trace"),
        ("run%2", "trace"),
        ("runX", "report"),
        ("other", "trace"),
    ):
        kei("memory", "write", key, f"value of {key}", "--kind", kind)
    newest_first = [i["key"] for i in items(kei, "memory", "query", "--kind", "trace")]
    assert newest_first == ["other", "run%2", "run_1"]
    assert [i["key"] for i in items(kei, "memory", "query", "--key-prefix", "run_")] == ["run_1"]
    assert [i["key"] for i in items(kei, "memory", "query", "--key-prefix", "run%")] == ["run%2"]
    assert len(items(kei, "memory", "query", "--limit", "2")) == 2
    assert items(kei, "memory", "query", "--since", "2999-01-01") == []


def test_full_text_search_needs_every_word(kei: Kei) -> None:
    kei("memory", "write", "k1", "jittered exponential backoff for the retry loop")
    kei("memory", "write", "k2", "retry budget is five attempts")
    kei("memory", "write", "k3", "unrelated note about caching", "--session", "s1")
    assert [i["key"] for i in items(kei, "memory", "search", "retry backoff")] == ["k1"]
    assert sorted(i["key"] for i in items(kei, "memory", "search", "retry")) == ["k1", "k2"]
    assert [i["key"] for i in items(kei, "memory", "search", "caching", "--session", "s1")] == [
        "k3"
    ]
    assert items(kei, "memory", "search", 'quote"d') == []  # FTS syntax is quoted away


def test_forget_and_compact_hide_without_erasing(kei: Kei, store_url: str) -> None:
    kei("memory", "write", "old", "x")
    kei("memory", "forget", "old", "--reason", "stale")
    assert kei("memory", "get", "old", code=1).stdout == ""
    before = count(store_url)
    refused = kei("memory", "forget", "old", code=2)
    assert "nothing to forget" in refused.stderr and count(store_url) == before
    kei("memory", "write", "old", "y")
    assert kei("memory", "get", "old").stdout == "y\n"
    kei("memory", "compact", "--before", "2999-01-01")
    assert items(kei, "memory", "query") == []
    kei("memory", "write", "new", "z")
    assert [i["key"] for i in items(kei, "memory", "query")] == ["new"]


def test_value_from_stdin_and_refusals(kei: Kei, store_url: str) -> None:
    kei("memory", "write", "notes", "-", stdin="line one\nline two\n")
    assert kei("memory", "get", "notes").stdout == "line one\nline two\n"
    before = count(store_url)
    for args, message in ((("memory", "write", " ", "v"), "key must not be empty"),
                          (("memory", "write", "k", "v", "--tag", " "), "tags must not be empty"),
                          (("memory", "search", "  "), "at least one word")):  # fmt: skip
        result = kei(*args, code=2)
        assert message in result.stderr and "Traceback" not in result.stderr
    assert count(store_url) == before


def test_the_memory_rebuilt_from_the_log_is_the_one_kept(kei: Kei) -> None:
    kei("memory", "write", "a", "one", "--tag", "t")
    kei("memory", "write", "b", "two")
    kei("memory", "forget", "b")
    kept = [json.loads(x) for x in kei("projections", "status", "--json").stdout.splitlines()]
    rebuilt = json.loads(kei("projections", "rebuild", "memory", "--json").stdout)
    assert next(k for k in kept if k["name"] == "memory")["digest"] == rebuilt["digest"]
    assert [i["key"] for i in items(kei, "memory", "search", "one")] == ["a"]  # FTS rebuilt too
