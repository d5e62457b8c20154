"""GSM 03.38: which texts an SMS can carry in the 7-bit alphabet, and at what cost.

An SMS whose every character is in the GSM-7 alphabet travels 160 characters to a
segment (153 when the message spans several); one character outside it, and the whole
message goes as UCS-2: 70 to a segment, 67 when concatenated. Upstream joined subject
and body with an em dash, which is not in GSM-7, so every upstream SMS was UCS-2 and
cost up to 2.3 times the segments. kei joins with `` - `` and also replaces the
typographic look-alikes that text from editors and models is full of (curly quotes,
dashes, the ellipsis character, non-breaking spaces) by their GSM-7 forms, but only
when that makes the whole message GSM-7: a message that must be UCS-2 anyway (an emoji,
Cyrillic, CJK) is left exactly as written.
"""

from __future__ import annotations

import math
from typing import Final

BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The GSM 03.38 default alphabet (without the escape code that leads to EXTENSION)."""

EXTENSION: Final = frozenset("\f^{}\\[~]|€")
"""Characters of the extension table: each costs two septets."""

LOOKALIKES: Final[dict[str, str]] = {
    **dict.fromkeys("‘’‚‛′`´", "'"),
    **dict.fromkeys("“”„‟″«»", '"'),
    **dict.fromkeys("‐‑‒–—―−", "-"),
    **dict.fromkeys("\t\u00a0\u2002\u2003\u2007\u2009\u200a\u202f\u205f", " "),
    "\u200b": "",
    "\ufeff": "",
    "…": "...",
    "•": "*",
    "·": ".",
}
"""Typographic characters outside GSM-7 and the GSM-7 text each is sent as."""


def is_gsm7(text: str) -> bool:
    """Can ``text`` travel in the GSM-7 alphabet?"""
    return all(c in BASIC or c in EXTENSION for c in text)


def gsm7_friendly(text: str) -> str:
    """``text`` with its typographic look-alikes replaced, when that makes it GSM-7;
    else ``text`` unchanged (it will be sent as UCS-2 whatever kei does)."""
    if is_gsm7(text):
        return text
    plain = "".join(LOOKALIKES.get(c, c) for c in text)
    return plain if is_gsm7(plain) else text


def segments(text: str) -> int:
    """How many SMS segments ``text`` costs (GSM-7 when it can, else UCS-2)."""
    if is_gsm7(text):
        septets = sum(2 if c in EXTENSION else 1 for c in text)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)
