"""Strings from providers and templates, made fit to sign before they reach an event.

A provider's answer is hostile input: a receipt or status with a control character, a
megabyte error page or a lone surrogate would make ``Ledger.append`` refuse the
outcome (``kei.domain.events.limits``), and a refused outcome would leave the claim in
doubt for ever. So every provider string is cut to size here first: identifiers lose
their control characters and are cut to the identifier limit, free text loses NUL and
lone surrogates and is cut to ``TEXT_MOST`` characters.
"""

from __future__ import annotations

from typing import Final

from kei.domain.events.strings import CONTROL
from kei.limits import LIMITS

TEXT_MOST: Final = 2_000
"""Characters of an error text kept (the rest is cut, with an ellipsis)."""
SUBJECT_MOST: Final = 1_000
BODY_MOST: Final = 16_000


def clip_id(text: str | None) -> str | None:
    """``text`` as an identifier: control characters dropped, at most the identifier
    limit; None for None or for nothing left."""
    if text is None:
        return None
    kept = CONTROL.sub("", str(text)).strip()[: LIMITS.max_id_chars]
    return kept or None


def clip_text(text: str | None, most: int = TEXT_MOST) -> str:
    """``text`` as free text: no NUL, no lone surrogate, at most ``most`` characters."""
    if not text:
        return ""
    clean = str(text).replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return clean if len(clean) <= most else clean[: most - 1] + "…"
