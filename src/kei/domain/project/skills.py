"""Doc sections as skills: the README's and ``docs/``'s ``## `` sections.

Upstream's rules: a section starts at a line beginning ``## `` and runs to the next;
a heading shorter than 3 bytes or an empty body is dropped; the key is
``<stem>::<section-slug>`` (kei's stem is the file's path, so ``docs/a/x.md`` and
``docs/b/x.md`` do not collide); the description is at most three sentences and 200
characters of the body without markdown. Fixed: a ``## `` line inside a fenced code
block (```` ``` ```` or ``~~~``, CommonMark's rule: closed by a fence of the same
character at least as long) is text, not a heading.
"""

from __future__ import annotations

import re
from typing import Final

from msgspec import Struct

MIN_HEADING_BYTES: Final = 3
MAX_DESCRIPTION_CHARS: Final = 200
MAX_SLUG_CHARS: Final = 80
_FENCE: Final = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_MARKUP: Final = re.compile(r"[`*#>\[\]]|\(https?://[^)]*\)")
_SENTENCE_END: Final = re.compile(r"(?<=[.!?])\s+")


class Skill(Struct, frozen=True):
    """A section as a memory item: its key, the file and the text written."""

    key: str
    source_path: str
    heading: str
    description: str
    body: str

    def value(self) -> str:
        """The memory value: upstream's fragment file, with the frontmatter quoted."""
        return (
            f"---\nname: {_quoted(self.key)}\ndescription: {_quoted(self.description)}\n"
            f"---\n\n{self.body}\n"
        )


def sections(text: str) -> list[tuple[str, str]]:
    """The ``## `` sections of a markdown ``text`` as (heading, body), fenced code left
    alone."""
    found: list[tuple[str, str]] = []
    heading: str | None = None
    body: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        opened = _FENCE.match(line)
        if fence is None and opened:
            fence = opened.group(1)
        elif fence is not None and opened and opened.group(1)[0] == fence[0]:
            if len(opened.group(1)) >= len(fence) and not line.strip()[len(opened.group(1)) :]:
                fence = None
        elif fence is None and line.startswith("## "):
            if heading is not None:
                found.append((heading, "\n".join(body).strip()))
            heading, body = line[3:].strip(), []
            continue
        if heading is not None:
            body.append(line)
    if heading is not None:
        found.append((heading, "\n".join(body).strip()))
    return [(h, b) for h, b in found if len(h.encode()) >= MIN_HEADING_BYTES and b]


def skills_of(source_path: str, text: str) -> list[Skill]:
    """The skills of one document; a heading used twice keeps its first section."""
    stem = slug(source_path.rsplit(".", 1)[0]) or "doc"  # docs/cli.md -> docs-cli
    out: dict[str, Skill] = {}
    for heading, body in sections(text):
        key = f"{stem}::{slug(heading) or 'section'}"
        out.setdefault(key, Skill(key, source_path, heading, description(body), body))
    return list(out.values())


def slug(text: str) -> str:
    """Lowercase letters, digits and single dashes: a key segment."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return "-".join(words)[:MAX_SLUG_CHARS].strip("-")


def description(body: str) -> str:
    """At most three sentences and 200 characters of ``body`` without markdown or
    fenced code."""
    prose: list[str] = []
    fence: str | None = None
    for line in body.splitlines():
        opened = _FENCE.match(line)
        if opened and (fence is None or opened.group(1)[0] == fence[0]):
            fence = opened.group(1) if fence is None else None
        elif fence is None:
            prose.append(line)
    plain = " ".join(_MARKUP.sub("", "\n".join(prose)).split())
    text = " ".join(_SENTENCE_END.split(plain)[:3])
    if len(text) > MAX_DESCRIPTION_CHARS:
        text = text[: MAX_DESCRIPTION_CHARS - 1].rstrip() + "…"
    return text


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar (upstream wrote it bare: ``a: b`` broke the file)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
