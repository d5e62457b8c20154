"""Cutting text to a provider's length limit, measured the way that provider counts.

Upstream sent whatever it was given, so a long message drew a 400 from Discord and
Telegram. Every channel now cuts each field to its provider's documented limit and marks
the cut with an ellipsis. A cut always falls between two code points, never inside a
UTF-8 sequence or a UTF-16 surrogate pair, and the result with its ellipsis fits the
limit exactly. Three measures exist because the providers count differently: Slack and
Discord count characters, Telegram counts UTF-16 code units, and upstream's SMS cut
counted UTF-8 bytes.
"""

from __future__ import annotations

from typing import Final, Literal

ELLIPSIS: Final = "…"

Measure = Literal["chars", "utf16", "utf8"]


def measure(text: str, unit: Measure) -> int:
    """The length of ``text`` in ``unit``."""
    if unit == "chars":
        return len(text)
    if unit == "utf16":
        return len(text.encode("utf-16-le")) // 2
    return len(text.encode("utf-8"))


def cut(text: str, limit: int, unit: Measure = "chars", ellipsis: str = ELLIPSIS) -> str:
    """``text`` unchanged when it fits ``limit``; else its longest prefix that fits with
    ``ellipsis`` after it (the ellipsis alone when even that does not fit)."""
    if measure(text, unit) <= limit:
        return text
    budget = limit - measure(ellipsis, unit)
    if budget <= 0:
        return ellipsis if measure(ellipsis, unit) <= limit else ""
    if unit == "chars":
        return text[:budget] + ellipsis
    if unit == "utf16":
        # A cut inside a surrogate pair leaves half a pair, which ``ignore`` drops.
        head = text.encode("utf-16-le", "surrogatepass")[: budget * 2]
        return head.decode("utf-16-le", "ignore") + ellipsis
    # A cut inside a UTF-8 sequence leaves an incomplete tail, which ``ignore`` drops.
    return text.encode("utf-8")[:budget].decode("utf-8", "ignore") + ellipsis


def clean(text: str) -> str:
    """``text`` as valid Unicode: a lone surrogate (which no UTF-8 body can carry)
    becomes ``?``."""
    return text.encode("utf-8", "replace").decode("utf-8")


def one_line(text: str, limit: int = 200) -> str:
    """A provider's message as one short line: whitespace runs become one space."""
    return cut(" ".join(text.split()), limit)
