"""Which fields of which events hold free text: what the leak matrix scans on the write
path (``kei.adapters.leak_guard``).

Free text is what a person or a model wrote: summaries, failure reasons, memory
values, error messages, trace messages. Identifiers (agent ids, models, hashes, DNAs)
follow formats of their own and are not scanned: scanning every field of every cost
event would cost the append path more than the signature, and find nothing. A new
event type with free text is added here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

FREE_TEXT: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "agent.completed": ("summary",),
        "agent.failed": ("reason",),
        "cost.amended": ("reason",),
        "kei.key.revoked": ("reason",),
        "memory.written": ("value",),
        "memory.forgotten": ("reason",),
        "llm.call.completed": ("error",),
        "route.escalated": ("reason",),
    }
)
