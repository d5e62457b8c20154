"""Claude's 5-hour usage windows ("blocks"), as ccusage's ``blocks`` report cuts them.

Claude plans meter usage in windows of five hours that start with the first request
after a window ends. ccusage (``_session-blocks.ts``) rebuilds them from the requests'
times: a block starts at the first request's time floored to the UTC hour; a request
more than five hours after the block's start, or more than five hours after the
previous request, starts a new one. A block is *active* while less than five hours have
passed since its last request and its five hours have not ended. Its burn rate is
spent over the time between its first and last request (none when that is zero), and
the projection adds that rate over the block's remaining time.

Integers throughout: money in micro-cents, time in microseconds, rates floored. ccusage
also lists the gaps between blocks as blocks of their own; they cost nothing, and are
left out here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from msgspec import Struct

HOUR_US: Final = 3_600_000_000
BLOCK_US: Final = 5 * HOUR_US
MINUTE_US: Final = 60_000_000


class Spend(Struct, frozen=True):
    """One cost at one moment: what a block sums."""

    at_us: int
    micro_cents: int
    tokens: int = 0  # input + output tokens (ccusage's burn-rate tokens)
    unverified: int = 0  # 1 when its catalog price is not vouched for
    given: int = 0  # 1 when its amount was given by hand


class Burn(Struct, frozen=True):
    """An active block's pace, and where it ends at that pace."""

    hourly_micro_cents: int
    tokens_per_minute: int
    projected_micro_cents: int
    remaining_us: int


class Block(Struct):
    start_us: int
    first_us: int
    last_us: int
    micro_cents: int = 0
    tokens: int = 0
    events: int = 0
    unverified: int = 0
    given: int = 0
    active: bool = False
    burn: Burn | None = None

    @property
    def end_us(self) -> int:
        return self.start_us + BLOCK_US


def blocks(spends: Iterable[Spend], now_us: int) -> list[Block]:
    """The blocks of ``spends`` (in any order), oldest first; see the module docstring."""
    found: list[Block] = []
    for s in sorted(spends, key=lambda s: s.at_us):
        current = found[-1] if found else None
        if (
            current is None
            or s.at_us - current.start_us > BLOCK_US
            or (s.at_us - current.last_us > BLOCK_US)
        ):
            current = Block(start_us=s.at_us - s.at_us % HOUR_US, first_us=s.at_us, last_us=s.at_us)
            found.append(current)
        current.last_us = s.at_us
        current.micro_cents += s.micro_cents
        current.tokens += s.tokens
        current.events += 1
        current.unverified += s.unverified
        current.given += s.given
    for block in found:
        block.active = now_us - block.last_us < BLOCK_US and now_us < block.end_us
        block.burn = burn(block, now_us) if block.active else None
    return found


def burn(block: Block, now_us: int) -> Burn | None:
    """The block's burn rate and projection (None when it spans no time)."""
    span = block.last_us - block.first_us
    if span <= 0:
        return None
    remaining = max(0, block.end_us - now_us)
    return Burn(
        hourly_micro_cents=block.micro_cents * HOUR_US // span,
        tokens_per_minute=block.tokens * MINUTE_US // span,
        projected_micro_cents=block.micro_cents + block.micro_cents * remaining // span,
        remaining_us=remaining,
    )
