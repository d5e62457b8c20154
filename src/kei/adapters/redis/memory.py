"""A Redis mirror of the ``memory`` read model, fed from the log, for low-latency reads.

Upstream kei-memory-redis was a backend of its own; here Redis is a read model like
any other: ``catch_up`` reads the log after the mirror's cursor, checks every link and
hash before it trusts an event (``kei.adapters.store.follow``), and applies memory events in
Redis transactions that also move the cursor. Each transaction ``WATCH``es the cursor
and writes only if it is where this catch-up found it, so two mirrors catching up at
once never apply an event twice. Reads answer the SQL read model's questions with the
same answers (``tests/features/test_memory_redis.py`` compares them): ``get`` and ``query``
(kind, key prefix, tag any/all, since, limit, newest first). Full-text search stays
with the SQL read model.

Keys, under a prefix (``kei`` by default; one prefix per ledger):

- ``<p>:cursor`` hash: ``position``, ``seq``, ``hash`` (hex) of the last event applied;
- ``<p>:item:<namespace>:<key>`` hash: the item's fields, ``tags`` as JSON;
- ``<p>:time:<namespace>`` sorted set: keys scored by ``written_us``;
- ``<p>:tag:<namespace>:<tag>`` set: the keys carrying the tag;

(namespace, key and tag percent-encoded, so a ``:`` in them cannot be misread);
- ``<p>:namespaces`` set.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final
from urllib.parse import quote

from kei.adapters.store.base import PAGE, EventStore
from kei.adapters.store.follow import LogFollower, link_of
from kei.adapters.store.urls import redact_url
from kei.domain.events.memory import MemoryCompacted, MemoryForgotten, MemoryWritten
from kei.domain.log.recorded import RecordedEvent
from kei.domain.log.verify import Link
from kei.domain.memory.query import Item, MemoryQuery
from kei.errors import StoreError

TYPES: Final = frozenset({"memory.written", "memory.forgotten", "memory.compacted"})
FIELDS: Final = (
    "namespace", "key", "kind", "value", "dna", "parent_dna", "written_us", "position", "version",
)  # fmt: skip


class RedisMemory:
    """The mirror over one store; ``url`` is a ``redis://`` URL."""

    def __init__(self, url: str, store: EventStore, *, prefix: str = "kei") -> None:
        import redis as redis_lib

        self.store, self.prefix = store, prefix
        try:
            # redis-py's return types are unions of bytes and str; with decode_responses
            # every reply here is str, so the client is typed loosely.
            self.r: Any = redis_lib.Redis.from_url(url, decode_responses=True,
                                                            socket_timeout=5)  # fmt: skip
            self.r.ping()
        except redis_lib.RedisError as exc:
            raise StoreError(f"Redis at {redact_url(url)} is unreachable: {exc}") from exc

    def close(self) -> None:
        self.r.close()

    # -- catching up -------------------------------------------------------------------

    def catch_up(self) -> int:
        """Apply every verified memory event after the cursor; returns events read.

        Each page starts from the cursor as stored: another mirror may have moved it."""
        read = 0
        while True:
            link = self._cursor()
            follower = LogFollower(self.store, link)
            records = follower.read(PAGE)
            for record in records:
                self._apply(record_event(record), link)
                link = link_of(record)
            read += len(records)
            if follower.broken is not None:
                raise follower.error("Redis memory catch-up")
            if follower.fetched == 0:
                return read

    def _cursor(self) -> Link | None:
        found = self.r.hgetall(f"{self.prefix}:cursor")
        if not found:
            return None
        return Link(int(found["position"]), int(found["seq"]), bytes.fromhex(found["hash"]))

    def _apply(self, event: RecordedEvent, link: Link | None) -> None:
        """One event and the cursor move, in one transaction that the cursor guards."""
        import redis as redis_lib

        key = f"{self.prefix}:cursor"
        with self.r.pipeline() as pipe:
            try:
                pipe.watch(key)
                if self._cursor() != link:
                    return  # another mirror applied it first
                payload = event.payload() if event.type in TYPES else None
                reads = self._reads_for(payload)
                pipe.multi()
                self._write(pipe, payload, event, reads)
                pipe.hset(key, mapping={"position": event.position, "seq": event.seq or 0,
                                        "hash": (event.hash or b"").hex()})  # fmt: skip
                pipe.execute()
            except redis_lib.WatchError:
                return

    def _reads_for(self, payload: Any) -> list[dict[str, str]]:
        """What the write must undo: the items it replaces or hides."""
        if isinstance(payload, MemoryWritten | MemoryForgotten):
            old = self.r.hgetall(self._item(payload.namespace, payload.key))
            return [old] if old else []
        if isinstance(payload, MemoryCompacted):
            keys = self.r.zrangebyscore(self._time(payload.namespace), "-inf",
                                        f"({payload.before_us}")  # fmt: skip
            return [self.r.hgetall(self._item(payload.namespace, k)) for k in keys]
        return []

    def _write(
        self, pipe: Any, payload: Any, event: RecordedEvent, old: list[dict[str, str]]
    ) -> None:
        for item in old:
            self._remove(pipe, item)
        if isinstance(payload, MemoryWritten):
            ns, key = payload.namespace, payload.key
            tags = sorted(set(payload.tags))
            fields = {"namespace": ns, "key": key, "kind": payload.kind, "value": payload.value,
                      "dna": payload.dna or "", "parent_dna": payload.parent_dna or "",
                      "written_us": event.timestamp_us, "position": event.position,
                      "version": event.version,
                      "tags": json.dumps(tags)}  # fmt: skip
            pipe.hset(self._item(ns, key), mapping=fields)
            pipe.zadd(self._time(ns), {key: event.timestamp_us})
            pipe.sadd(f"{self.prefix}:namespaces", ns)
            for tag in tags:
                pipe.sadd(self._tag(ns, tag), key)

    def _remove(self, pipe: Any, item: dict[str, str]) -> None:
        ns, key = item["namespace"], item["key"]
        pipe.delete(self._item(ns, key))
        pipe.zrem(self._time(ns), key)
        for tag in json.loads(item.get("tags") or "[]"):
            pipe.srem(self._tag(ns, tag), key)

    # -- reads ---------------------------------------------------------------------------

    def get(self, namespace: str, key: str) -> Item | None:
        found = self.r.hgetall(self._item(namespace, key))
        return _item(found) if found else None

    def query(self, q: MemoryQuery) -> list[Item]:
        """The SQL read model's query, answered from Redis."""
        namespaces = [q.namespace] if q.namespace is not None else sorted(
            self.r.smembers(f"{self.prefix}:namespaces"))  # fmt: skip
        found = [item for ns in namespaces for item in self._candidates(ns, q)]
        found = [i for i in found if _matches(i, q)]
        found.sort(key=lambda i: (i["written_us"], i["position"]), reverse=True)
        return found if q.limit is None else found[: q.limit]

    def _candidates(self, ns: str, q: MemoryQuery) -> Iterator[Item]:
        keys: set[str] = set(self.r.zrange(self._time(ns), 0, -1))
        if q.tag_any:
            keys &= set(self.r.sunion([self._tag(ns, t) for t in q.tag_any]))
        if q.tag_all:
            keys &= set(self.r.sinter([self._tag(ns, t) for t in q.tag_all]))
        for key in sorted(keys):
            found = self.r.hgetall(self._item(ns, key))
            if found:
                yield _item(found)

    def _item(self, ns: str, key: str) -> str:
        return f"{self.prefix}:item:{_part(ns)}:{_part(key)}"

    def _time(self, ns: str) -> str:
        return f"{self.prefix}:time:{_part(ns)}"

    def _tag(self, ns: str, tag: str) -> str:
        return f"{self.prefix}:tag:{_part(ns)}:{_part(tag)}"


def _part(text: str) -> str:
    return quote(text, safe="")


def record_event(record: Any) -> RecordedEvent:
    return RecordedEvent.from_record(record)


def _item(found: dict[str, str]) -> Item:
    item: Item = {f: found.get(f) for f in FIELDS}
    item["dna"] = item["dna"] or None
    item["parent_dna"] = item["parent_dna"] or None
    for field in ("written_us", "position", "version"):
        item[field] = int(found[field])
    item["tags"] = json.loads(found.get("tags") or "[]")
    return item


def _matches(item: Item, q: MemoryQuery) -> bool:
    if q.kind is not None and item["kind"] != q.kind:
        return False
    if q.key_prefix and not str(item["key"]).startswith(q.key_prefix):
        return False
    return q.since_us is None or item["written_us"] >= q.since_us
