"""Writing one memory item: no read model involved, so no SQLAlchemy is loaded.

A write appends ``memory.written`` on the key's stream ``memory/<namespace>/<key>``
without an expected version: writes are independent facts and the later one in the
log is the value (``kei.app.memory`` reads them back). Kept apart from the reads so a
hook's ``kei memory write`` costs the ledger and nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.events.memory import MemoryWritten, memory_stream
from kei.errors import InputError
from kei.limits import LIMITS


def check_write(p: MemoryWritten) -> None:
    """Refuse what would make a useless or ambiguous item, naming the field."""
    for name, value in (("namespace", p.namespace), ("key", p.key), ("kind", p.kind)):
        if not value.strip():
            raise InputError(f"memory {name} must not be empty")
        if len(value) > LIMITS.max_memory_key_chars:
            raise InputError(
                f"memory {name} is {len(value)} characters; at most {LIMITS.max_memory_key_chars}"
            )
    if any(not t.strip() for t in p.tags):
        raise InputError("memory tags must not be empty")


def write_memory(ledger: Ledger, payload: MemoryWritten) -> str:
    """Append one write; returns its ``STREAM:VERSION``."""
    check_write(payload)
    stream = memory_stream(payload.namespace, payload.key)
    return event_name(ledger.append([NewEvent(stream, payload)])[-1])


def event_name(event: Any) -> str:
    return f"{event.stream}:{event.version}"


def tags_of(values: Sequence[str]) -> tuple[str, ...]:
    """``--tag`` values, each once, in the order given."""
    return tuple(dict.fromkeys(v.strip() for v in values))
