"""What each schema version of each event type added: the upcasting of old events.

Every change so far added fields with a default, so an event of an older schema
version decodes into today's Struct with those fields at their defaults (msgspec
fills them): that IS the upcast, and no function is needed. This table names, for
each (type, schema version) above 1, the fields that version added (a nested field
as ``usage.cache_write_1h_tokens``), so an example of every version ever written can
be made (``tests/fixtures/events/generate.py``) and decoded by a test. A change that
is not an addition would need a real upcaster here, keyed the same way.
"""

from __future__ import annotations

from typing import Final

_ORIGIN: Final = ("origin",)
_TIERS: Final = ("usage.cache_write_1h_tokens", "unpriced")
_SPEED: Final = ("speed", "speed_unpriced")

ADDED: Final[dict[tuple[str, int], tuple[str, ...]]] = {
    **{
        (t, 2): _ORIGIN
        for t in (
            "agent.forked",
            "agent.completed",
            "agent.failed",
            "agent.merged",
            "agent.outcome",
            "skill.invoked",
            "cost.recorded",
            "cost.amended",
        )
    },
    ("cost.recorded", 3): _TIERS,
    ("cost.recorded", 4): ("session", "cwd"),
    ("cost.recorded", 5): _SPEED,
    ("cost.amended", 3): _TIERS,
    ("cost.amended", 4): _SPEED,
    ("llm.call.completed", 2): ("usage.cache_write_1h_tokens",),
    ("llm.call.completed", 3): _SPEED,
    ("route.decided", 2): ("budget_micro_cents", "budget_scope"),
}


def fields_after(type_name: str, version: int, current: int) -> list[str]:
    """The fields an event of ``version`` lacks: those added by later versions."""
    return [f for v in range(version + 1, current + 1) for f in ADDED.get((type_name, v), ())]
