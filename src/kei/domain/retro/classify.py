"""Event classes: upstream kei-memory's ``classify``, the label patterns are counted by.

A class names what kind of thing happened, so that recurrences (spec §6.7) can be
counted across events that differ in every other field. Precedence, first match
wins (spec §6.3, ``classifier.rs``):

1. An error: ``tool_error:<tool>``, or ``tool_error`` when no tool is known.
2. The message, case-insensitive: ``permission_denied``, ``user_correction``
   (English and Russian "you broke it again" cues), ``worktree_error``,
   ``cargo_workspace``, ``retry_loop``, tried in that order.
3. Structure: an assistant or legacy ``tool_use`` line with a tool is
   ``tool_use:<tool>``, a user line with a tool is ``tool_result``, any other line is
   its kind, and a line without a kind is ``other``.

Upstream classifies the whole serialised message of a Claude Code line, so a word
inside a tool's input (``retry``, ``again``) outranks the structural class; kei keeps
that, because the classes already stored upstream were made that way.

Example::

    >>> classify("assistant", "Read", None, False)
    'tool_use:Read'
    >>> classify("user", "Bash", "worktree add failed", True)
    'tool_error:Bash'
"""

from __future__ import annotations

import re
from typing import Final

from kei.domain.memory.guard import RUST_SPACE as _S

__all__ = ["classify"]


def _then(first: str, later: str) -> str:
    """``first.*(later)``, upstream's rule, in linear time.

    A line matches when its *first* ``first`` has a ``later`` after it, so an atomic
    group commits to that first one; the plain ``.*`` form would retry every
    occurrence and go quadratic on a long tool output that repeats the word.
    """
    return rf"^(?>[^\n]*?{first})[^\n]*?(?:{later})"


# Words every match of a rule holds (any of them; both for cargo_workspace), checked on
# the case-folded message first: a tool output of a few KB mentions none of them, and the
# patterns cost 100+ µs per message where a substring check costs one.
_NEEDLES: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    "permission_denied": (("denied",),),
    "user_correction": (
        ("again", "stop", "don", "you", "broken", "wrong", "опять", "ошибся", "не"),
    ),
    "worktree_error": (("worktree",),),
    "cargo_workspace": (("cargo",), ("workspace",)),
    "retry_loop": (("retry", "attempt", "try"),),
}
_MESSAGE_RULES: Final = tuple(
    (label, re.compile(pattern, re.IGNORECASE | re.MULTILINE))
    for label, pattern in (
        ("permission_denied", rf"permission{_S}+denied|access{_S}+denied"),
        (
            "user_correction",
            rf"\b(again|stop{_S}+doing|don'?t{_S}+(do|repeat)|you'?re{_S}+wrong|broken"
            rf"|wrong{_S}+(again|once{_S}+more))\b|опять|ошибся|не{_S}+делай",
        ),
        ("worktree_error", _then("worktree", "error|denied|fail")),
        ("cargo_workspace", f"{_then('cargo', 'workspace')}|{_then('workspace', 'cargo')}"),
        ("retry_loop", rf"retry|retrying|attempt{_S}+\d+|try{_S}+again"),
    )
)


def classify(kind: str | None, tool: str | None, message: str | None, is_error: bool) -> str:
    """The event class of one trace event (see the module docstring for the rules)."""
    if is_error:
        return f"tool_error:{tool}" if tool is not None else "tool_error"
    if message is not None:
        folded = message.casefold()
        for label, regex in _MESSAGE_RULES:
            if _possible(label, folded) and regex.search(message):
                return label
    return _structural(kind, tool)


def _possible(label: str, folded: str) -> bool:
    return all(any(n in folded for n in group) for group in _NEEDLES[label])


def _structural(kind: str | None, tool: str | None) -> str:
    if tool is not None and kind in ("assistant", "tool_use"):
        return f"tool_use:{tool}"
    if tool is not None and kind == "user":
        return "tool_result"
    return kind if kind is not None else "other"
