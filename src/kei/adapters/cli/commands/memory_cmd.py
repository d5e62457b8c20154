"""``kei memory write|get|query|search|forget|compact``: what agents remember.

Thin: ``kei.app.memory`` appends and reads. ``--session S`` is the
namespace ``session/S``; without it, ``--namespace`` (default ``default``). VALUE ``-``
reads standard input. Data goes to stdout (``--json``: one object per item),
confirmations to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from kei.adapters.cli.context import answering, command_group, open_ledger, service_scope, stderr
from kei.adapters.cli.options import (
    JsonLines,
    JsonObject,
    Since,
    number,
    option_group,
    since_us,
    time_us,
)
from kei.adapters.cli.output import json_line
from kei.app.ledger.tail import printable as safe
from kei.app.ledger.tail import terminal_text
from kei.domain.events.memory import DEFAULT_NAMESPACE
from kei.errors import InputError
from kei.limits import LIMITS

if TYPE_CHECKING:
    from kei.adapters.cli.config import Settings
    from kei.adapters.redis.memory import RedisMemory
    from kei.app.memory import MemoryService
    from kei.domain.memory.query import MemoryQuery

memory_app, register = command_group(
    "memory", "What agents remember: write, query, search, forget."
)

KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="The key.")]
Namespace = Annotated[str, typer.Option("--namespace", metavar="NAMESPACE", help="The namespace.")]
OnlyNamespace = Annotated[
    str | None, typer.Option("--namespace", metavar="NAMESPACE", help="Only this namespace.")
]
Limit = Annotated[int | None, number("--limit", help="At most N items.")]
Session = Annotated[
    str | None, typer.Option("--session", metavar="ID", help="Namespace session/S.")
]
Redis = Annotated[
    str | None,
    typer.Option("--redis", metavar="URL", envvar="KEI_REDIS_URL",
                 help="Read from the Redis mirror at this URL (caught up first)."),
]  # fmt: skip
REDIS_SCHEMES = ("redis", "rediss", "unix")


def namespace_of(namespace: str | None, session: str | None) -> str | None:
    """The namespace ``--namespace`` and ``--session`` name (``--session`` wins)."""
    return namespace if session is None else f"session/{session}"


in_namespace: Final = option_group(
    "where", {"namespace": Namespace, "session": Session}, namespace_of,
    {"namespace": DEFAULT_NAMESPACE},
)  # fmt: skip
"""``--namespace`` (default ``default``) and ``--session``, as one ``where: str``."""
only_namespace: Final = option_group(
    "where", {"namespace": OnlyNamespace, "session": Session}, namespace_of
)
"""``--namespace`` and ``--session`` as a filter, one ``where: str | None`` (None: all)."""


def _check_redis_url(url: str) -> None:
    """An empty or scheme-less ``--redis`` is refused, never read as "no mirror"."""
    if url.split("://", 1)[0] not in REDIS_SCHEMES or not url.partition("://")[2].strip():
        raise InputError(
            f"--redis {url[:80]!a} is not a Redis URL",
            hint="use redis://host:port/db, rediss://host:port/db or unix:///path/to/socket",
        )


@contextmanager
def _reader(settings: Settings, redis_url: str | None) -> Iterator[MemoryService | RedisMemory]:
    """The SQL read model, or its Redis mirror when a Redis URL is given."""
    if redis_url is None:
        with _service(settings) as service:
            yield service
        return
    from kei.adapters.redis.memory import RedisMemory

    _check_redis_url(redis_url)
    with open_ledger(settings) as ledger:
        mirror = RedisMemory(redis_url, ledger.store, prefix=f"kei:{ledger.ledger_id}")
        try:
            mirror.catch_up()
            yield mirror
        finally:
            mirror.close()


def _service(settings: Settings, *, write: bool = False) -> AbstractContextManager[MemoryService]:
    from kei.app.memory import MemoryService

    return service_scope(settings, MemoryService, write=write)


@memory_app.command("write")
@in_namespace
def write_cmd(
    ctx: typer.Context,
    key: KeyArg,
    value: Annotated[
        str, typer.Argument(metavar="VALUE", help="The value; - reads standard input.")
    ],
    kind: Annotated[
        str, typer.Option("--kind", metavar="KIND", help="What it is: note, concept, report, …")
    ] = "note",
    tag: Annotated[
        list[str] | None, typer.Option("--tag", metavar="TAG", help="A tag (repeat for more).")
    ] = None,
    dna: Annotated[
        str | None, typer.Option("--dna", metavar="DNA", help="The writer's DNA.")
    ] = None,
    parent_dna: Annotated[
        str | None, typer.Option("--parent-dna", metavar="DNA", help="Its parent's DNA.")
    ] = None,
    *,
    where: str,
    as_json: JsonObject = False,
) -> None:
    """Remember VALUE under KEY (a later write to KEY replaces it; the log keeps both)."""
    from kei.app.memory_writes import tags_of
    from kei.domain.events.memory import MemoryWritten

    with answering(ctx) as g:
        text = _stdin() if value == "-" else value
        payload = MemoryWritten(
            namespace=where, key=key, value=text, kind=kind,
            tags=tags_of(tag or []), dna=dna, parent_dna=parent_dna,
        )  # fmt: skip
        from kei.app.memory_writes import write_memory

        with open_ledger(g.settings(), with_key=True) as ledger:  # no read model: fast
            name = write_memory(ledger, payload)
    if as_json:
        json_line({"ok": True, "event": name, "namespace": payload.namespace, "key": key})
    else:
        stderr().print(f"kei: remembered {payload.namespace}/{key} ({name})", markup=False)


def _stdin() -> str:
    """The value on stdin: at most ``LIMITS.max_memory_stdin_bytes`` of UTF-8."""
    data = sys.stdin.buffer.read(LIMITS.max_memory_stdin_bytes + 1)
    if len(data) > LIMITS.max_memory_stdin_bytes:
        raise InputError(
            f"the value on standard input is over {LIMITS.max_memory_stdin_bytes} bytes"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"the value on standard input is not valid UTF-8 (byte {exc.start})",
            hint="pass text in UTF-8",
        ) from None


@memory_app.command("get")
@in_namespace
def get_cmd(
    ctx: typer.Context,
    key: KeyArg,
    *,
    where: str,
    redis: Redis = None,
    as_json: JsonObject = False,
) -> None:
    """The value under KEY (exit 1 when there is none)."""
    with answering(ctx) as g, _reader(g.settings(), redis) as reader:
        item = reader.get(where, key)
    if item is None:
        stderr().print(f"kei: nothing under {safe(f'{where}/{key}')}", markup=False)
        raise typer.Exit(1)
    if as_json:
        json_line(_jsonable(item))
    else:
        value = terminal_text(item["value"])  # --json gives the exact value
        sys.stdout.write(value + ("" if value.endswith("\n") else "\n"))


@memory_app.command("query")
@only_namespace
def query_cmd(
    ctx: typer.Context,
    kind: Annotated[
        str | None, typer.Option("--kind", metavar="KIND", help="Only this kind.")
    ] = None,
    key_prefix: Annotated[
        str | None, typer.Option("--key-prefix", metavar="PREFIX", help="Keys starting so.")
    ] = None,
    tag_any: Annotated[
        list[str] | None, typer.Option("--tag-any", metavar="TAG", help="Any of these tags.")
    ] = None,
    tag_all: Annotated[
        list[str] | None, typer.Option("--tag-all", metavar="TAG", help="All of these tags.")
    ] = None,
    since: Since = None,
    limit: Limit = None,
    *,
    where: str | None,
    redis: Redis = None,
    as_json: JsonLines = False,
) -> None:
    """Items by kind, key prefix, tags and time, newest first."""
    with answering(ctx) as g, _reader(g.settings(), redis) as reader:
        found = reader.query(_query(where, kind, key_prefix, tag_any, tag_all, since, limit))
    _print(found, as_json)


def _query(namespace: str | None, kind: str | None,
           key_prefix: str | None, tag_any: list[str] | None, tag_all: list[str] | None,
           since: str | None, limit: int | None) -> MemoryQuery:  # fmt: skip
    from kei.app.memory_writes import tags_of
    from kei.domain.memory.query import MemoryQuery

    return MemoryQuery(
        namespace=namespace, kind=kind,
        key_prefix=key_prefix, tag_any=tags_of(tag_any or []), tag_all=tags_of(tag_all or []),
        since_us=since_us(since), limit=limit,
    )  # fmt: skip


@memory_app.command("search")
@only_namespace
def search_cmd(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="Words every value found must hold.")],
    limit: Limit = 20,
    *,
    where: str | None,
    as_json: JsonLines = False,
) -> None:
    """Full-text search over values, best match first."""
    with answering(ctx) as g, _service(g.settings()) as service:
        q = _query(where, None, None, None, None, None, limit)
        found = service.search(text, q)
    _print(found, as_json)


@memory_app.command("forget")
@in_namespace
def forget_cmd(
    ctx: typer.Context,
    key: KeyArg,
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why.")] = "",
    *,
    where: str,
    as_json: JsonObject = False,
) -> None:
    """Stop returning KEY's value (a tombstone; the log keeps the history)."""
    with answering(ctx) as g, _service(g.settings(), write=True) as service:
        name = service.forget(where, key, reason)
        if as_json:
            json_line({"ok": True, "event": name, "namespace": where, "key": key})
    stderr().print(f"kei: forgot {where}/{key} ({name})", markup=False)


@memory_app.command("compact")
@in_namespace
def compact_cmd(
    ctx: typer.Context,
    before: Annotated[
        str,
        typer.Option("--before", metavar="WHEN", help="Hide values written before: 30d, a date."),
    ],
    *,
    where: str,
    as_json: JsonObject = False,
) -> None:
    """Stop returning the namespace's values written before a time."""
    with answering(ctx) as g, _service(g.settings(), write=True) as service:
        cutoff = time_us(before, "--before")
        name, hidden = service.compact(where, cutoff)
        if as_json:
            json_line({"ok": True, "event": name, "namespace": where, "hidden": hidden,
                       "before_us": cutoff})  # fmt: skip
    stderr().print(f"kei: compacted {hidden} value(s) ({name})", markup=False)


def _print(items: list[dict[str, Any]], as_json: bool) -> None:
    for item in items:
        if as_json:
            json_line(_jsonable(item))
        else:
            value = item["value"].replace("\n", " ")
            value = value if len(value) <= 80 else value[:79] + "…"
            tags = ",".join(map(safe, item["tags"]))
            ns, key, kind = safe(item["namespace"]), safe(item["key"]), safe(item["kind"])
            sys.stdout.write(f"{ns}\t{key}\t{kind}\t{tags}\t{safe(value)}\n")


def _jsonable(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in ("namespace", "key", "kind", "value", "tags", "dna",
                                 "parent_dna", "written_us", "position")}  # fmt: skip
