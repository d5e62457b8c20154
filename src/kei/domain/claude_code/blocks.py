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

import msgspec
from msgspec import Struct

HOUR_US: Final = 3_600_000_000
BLOCK_US: Final = 5 * HOUR_US
MINUTE_US: Final = 60_000_000


class Tally(Struct, kw_only=True):
    """Costs summed exactly, and how many of them were priced how: the one sum every
    cost report row and every block keeps."""

    micro_cents: int = 0
    events: int = 0
    unverified: int = 0  # catalog-priced events whose price the catalog cannot vouch for
    given: int = 0  # events whose amount was given by hand (no price entry)
    unpriced: int = 0  # events the catalog had no price for (their 0 means unknown)
    speed_unpriced: int = 0  # events priced at standard rates: no rates for their speed

    def add(self, other: Tally) -> None:
        """Count ``other`` in this sum, exactly."""
        self.micro_cents += other.micro_cents
        self.events += other.events
        self.unverified += other.unverified
        self.given += other.given
        self.unpriced += other.unpriced
        self.speed_unpriced += other.speed_unpriced


class Spend(Tally, kw_only=True):
    """What costs at one moment (one event), or summed over a block from its first."""

    at_us: int
    events: int = 1
    tokens: int = 0  # input + output tokens (ccusage's burn-rate tokens)

    def add(self, other: Tally) -> None:
        super().add(other)
        self.tokens += other.tokens if isinstance(other, Spend) else 0


class Burn(Struct, frozen=True):
    """An active block's pace, and where it ends at that pace."""

    hourly_micro_cents: int
    tokens_per_minute: int
    projected_micro_cents: int
    remaining_us: int


class Block(Struct):
    """One 5-hour window: its start, its first and last call, and their sum."""

    start_us: int
    last_us: int
    total: Spend  # ``total.at_us`` is the first call's time
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
        if current is None or max(s.at_us - current.start_us, s.at_us - current.last_us) > BLOCK_US:
            start = s.at_us - s.at_us % HOUR_US
            found.append(Block(start, s.at_us, msgspec.structs.replace(s)))
        else:
            current.last_us = s.at_us
            current.total.add(s)
    for block in found:
        block.active = now_us - block.last_us < BLOCK_US and now_us < block.end_us
        block.burn = burn(block, now_us) if block.active else None
    return found


def burn(block: Block, now_us: int) -> Burn | None:
    """The block's burn rate and projection (None when it spans no time)."""
    total = block.total
    span = block.last_us - total.at_us
    if span <= 0:
        return None
    remaining = max(0, block.end_us - now_us)
    return Burn(
        hourly_micro_cents=total.micro_cents * HOUR_US // span,
        tokens_per_minute=total.tokens * MINUTE_US // span,
        projected_micro_cents=total.micro_cents + total.micro_cents * remaining // span,
        remaining_us=remaining,
    )
