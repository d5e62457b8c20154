"""Plain message lines on stderr, without typer or rich: what the fast paths print."""

from __future__ import annotations

import sys
from typing import Final

# What rich strips from text it prints (bell, backspace, vertical tab, form feed, CR):
_CONTROL: Final = dict.fromkeys((7, 8, 11, 12, 13))


class Lines:
    """Plain lines on stderr, as a rich console with ``markup=False`` prints them, without
    loading rich: the messages of the fast write commands."""

    def print(self, text: str, *, markup: bool = False) -> None:
        sys.stderr.write(text.translate(_CONTROL) + "\n")
        sys.stderr.flush()
