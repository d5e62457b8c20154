"""The Redis mirror of the memory read model, against the real Redis server named by
``KEI_TEST_REDIS_URL``: it answers every query as the SQL read model does, applies each
event once even with two mirrors catching up, and trusts no broken chain."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_helpers import run_sql
from kei.adapters.redis.memory import RedisMemory
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.memory import MemoryService
from kei.domain.events.memory import MemoryCompacted, MemoryWritten, compaction_stream
from kei.domain.memory.query import MemoryQuery
from kei.errors import VerificationError

REDIS_ENV = "KEI_TEST_REDIS_URL"


@pytest.fixture
def redis_url() -> Iterator[str]:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"Redis tests need {REDIS_ENV} (e.g. redis://127.0.0.1:6379)")
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=5).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {url} is unreachable: {exc}")
    yield url


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    import redis

    name = f"kei-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{name}:*"):
        client.delete(key)


def write(service: MemoryService, key: str, value: str, *tags: str, ns: str = "default",
          kind: str = "note") -> None:  # fmt: skip
    service.write(MemoryWritten(namespace=ns, key=key, value=value, kind=kind, tags=tags))


QUERIES = [
    MemoryQuery(),
    MemoryQuery(namespace="default"),
    MemoryQuery(kind="trace"),
    MemoryQuery(key_prefix="run"),
    MemoryQuery(tag_any=("ci", "rust")),
    MemoryQuery(tag_all=("ci", "rust")),
    MemoryQuery(limit=2),
    MemoryQuery(namespace="session/s1", tag_any=("x",)),
]


def test_the_mirror_answers_as_the_sql_read_model(
    ledger: Ledger, store_url: str, redis_url: str, prefix: str
) -> None:
    with MemoryService(ledger) as service:
        write(service, "run1", "a", "ci", "rust", kind="trace")
        write(service, "run2", "b", "rust", kind="trace")
        write(service, "other", "c", "ci")
        write(service, "run1", "a2", "ci", kind="trace")  # rewritten: tags change
        write(service, "k", "v", "x", ns="session/s1")
        service.forget("default", "other")
        mirror = RedisMemory(redis_url, ledger.store, prefix=prefix)
        assert mirror.catch_up() == ledger.store.count()
        for q in QUERIES:
            assert mirror.query(q) == service.query(q), q
        assert mirror.get("default", "run1") == service.get("default", "run1")
        assert mirror.get("default", "other") is None
        ledger.append([NewEvent(compaction_stream("default"),
                                MemoryCompacted(namespace="default", before_us=4_102_444_800_000_000))])  # fmt: skip
        mirror.catch_up()
        assert mirror.query(MemoryQuery(namespace="default")) == []
        assert mirror.query(MemoryQuery()) == service.query(MemoryQuery())
        mirror.close()


def test_two_mirrors_apply_each_event_once(
    ledger: Ledger, store_url: str, redis_url: str, prefix: str
) -> None:
    with MemoryService(ledger) as service:
        for i in range(5):
            write(service, f"k{i}", f"v{i}", "t")
    first = RedisMemory(redis_url, ledger.store, prefix=prefix)
    second = RedisMemory(redis_url, ledger.store, prefix=prefix)
    first.catch_up()
    assert second.catch_up() == 0  # nothing left for the second one
    assert len(second.query(MemoryQuery(tag_any=("t",)))) == 5


def test_a_broken_chain_is_not_mirrored(ledger: Ledger, redis_url: str, prefix: str) -> None:
    with MemoryService(ledger) as service:
        write(service, "a", "one")
        write(service, "b", "two")
    last = ledger.store.max_position()
    column = "rowid" if ledger.store.url.startswith("sqlite") else "notification_id"
    (raw,) = run_sql(ledger.store.url, f"SELECT state FROM kei_events WHERE {column} = ?",
                     (last,))[0]  # fmt: skip
    flipped = bytearray(raw)
    flipped[-1] ^= 0x01
    run_sql(ledger.store.url, f"UPDATE kei_events SET state = ? WHERE {column} = ?",
            (bytes(flipped), last))  # fmt: skip
    mirror = RedisMemory(redis_url, ledger.store, prefix=prefix)
    with pytest.raises(VerificationError, match=f"position {last}"):
        mirror.catch_up()
    assert mirror.get("default", "a") is not None and mirror.get("default", "b") is None


def test_the_cli_reads_from_the_mirror_with_redis(
    store_url: str, redis_url: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from cli_helpers import cli_env
    from kei.adapters.cli.app import app

    env = cli_env(tmp_path / "home", store_url)

    def kei(*args: str) -> str:
        result = CliRunner().invoke(app, list(args), env=env)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result.stdout

    kei("init")
    kei("memory", "write", "k", "mirrored value", "--tag", "t")
    with Ledger.open(store_url) as ledger:
        prefix = f"kei:{ledger.ledger_id}"
    try:
        assert kei("memory", "get", "k", "--redis", redis_url) == "mirrored value\n"
        assert kei("memory", "query", "--tag-any", "t", "--redis", redis_url).startswith(
            "default\tk\tnote\tt\tmirrored value"
        )
    finally:
        import redis

        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
