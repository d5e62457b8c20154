"""What a budget covers: an agent tree, a session, a project or everything.

A scope is text, stored as given in every budget event, and parsed strictly (nothing
is trimmed, case counts), so a scope names exactly the rows the costs read model holds:

- ``tree:<agent id>``: the agent and every agent forked below it (at the time spend
  is measured);
- ``session:<id>``: the costs billed in that Claude Code session (``kei cost report
  --by session``);
- ``project:<path>``: the costs of sessions run in that working directory, the path
  exactly as ``kei cost report --by project`` shows it;
- ``all``: every cost.

An id holds at most 256 characters (an identifier's limit, as agent ids and sessions
are stored), a path at most 4,088 (the scope then fits a path field's 4,096); none may
be blank or hold a control character.
"""

from __future__ import annotations

from typing import Final

from msgspec import Struct

from kei.domain.events.strings import CONTROL
from kei.errors import InputError
from kei.limits import LIMITS

ALL: Final = "all"
KINDS: Final = ("tree", "session", "project")
_USE: Final = "use tree:AGENT_ID, session:ID, project:PATH or all"


class Scope(Struct, frozen=True):
    """A parsed scope: its ``kind`` (``tree``, ``session``, ``project`` or ``all``) and
    what it names (``""`` for ``all``)."""

    kind: str
    value: str = ""

    def __str__(self) -> str:
        return ALL if self.kind == ALL else f"{self.kind}:{self.value}"


def parse_scope(text: str) -> Scope:
    """``text`` as a :class:`Scope`; a one-line ``InputError`` saying what is wrong."""
    if text == ALL:
        return Scope(ALL)
    kind, sep, value = text.partition(":")
    if not sep or kind not in KINDS:
        raise InputError(f"unknown budget scope {_shown(text)}; {_USE}")
    most = LIMITS.max_path_chars - len("project:") if kind == "project" else LIMITS.max_id_chars
    if not value.strip():
        raise InputError(f"budget scope {_shown(text)} names no {_what(kind)}; {_USE}")
    if CONTROL.search(value):
        raise InputError(f"budget scope {_shown(text)} holds a control character")
    if len(value) > most:
        raise InputError(
            f"budget scope {_shown(text)}: the {_what(kind)} is {len(value):,} characters; "
            f"at most {most:,}"
        )
    return Scope(kind, value)


def _what(kind: str) -> str:
    return {"tree": "agent id", "session": "session id", "project": "project path"}[kind]


def _shown(text: str) -> str:
    """``text`` quoted for one line: escaped, and cut when long."""
    shown = ascii(text)
    return shown if len(shown) <= 80 else f"{shown[:60]}...{shown[-12:]}"
