"""Agent DNA: upstream's identity string, parsed strictly and kept byte for byte.

An agent's DNA is ``<role>::<caps>::<scope8>::<body8>-<nonce8>`` (KeiSeiKit
``kei-shared::dna``). kei trusts nothing about a DNA until :func:`parse_dna` has
accepted it; a :class:`Dna` value is always a parsed one. Rules
(``docs/events.md`` §9):

- The text splits on ``::`` into exactly 4 segments; the last one splits at its
  first ``-`` into body and nonce.
- Role and caps are non-empty and otherwise free text (upstream checks nothing
  more); caps are tags joined with ``-``, and ``?`` is a valid placeholder.
- Scope, body and nonce are exactly 8 ASCII hex characters, either case.
- Checks run in upstream's order (segment count, ``-``, role, caps, scope, body,
  nonce), so a text with several faults names the same segment upstream would.
- Nothing is normalised: ``str(parse_dna(t)) == t`` for every accepted ``t``.
- The task class drops ``-<nonce8>``; the agent class also drops ``::<body8>``.

Example::

    >>> d = parse_dna("edit-local::NG-FW::5435F821::AC73A6A3-b3d36aa6")
    >>> d.task_class, d.agent_class
    ('edit-local::NG-FW::5435F821::AC73A6A3', 'edit-local::NG-FW::5435F821')
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from msgspec import Struct

from kei.errors import InputError

__all__ = ["Dna", "build_dna", "parse_dna", "task_class_of"]

WIRE_FORMAT = "<role>::<caps>::<scope8>::<body8>-<nonce8>"
_HEX = frozenset("0123456789abcdefABCDEF")
_HEX_WIDTH = 8
_NONCE_SUFFIX = 1 + _HEX_WIDTH  # "-" + 8 hex
_SHOWN = 80  # longest piece of untrusted text quoted in an error message


class Dna(Struct, frozen=True):
    """A parsed DNA. Construct it with :func:`parse_dna` or :func:`build_dna`.

    Direct construction is checked too: the fields must compose into a text that
    parses back into the same fields, so no ``Dna`` value is ever malformed.
    """

    role: str
    caps: str
    scope: str
    body: str
    nonce: str

    def __post_init__(self) -> None:
        fields = (self.role, self.caps, self.scope, self.body, self.nonce)
        if _split(str(self)) != fields:
            raise InputError(f"DNA {_quote(str(self))}: fields do not survive a round trip")

    def __str__(self) -> str:
        return f"{self.role}::{self.caps}::{self.scope}::{self.body}-{self.nonce}"

    @property
    def task_class(self) -> str:
        """The DNA without ``-<nonce8>``: re-runs of the same prompt share it."""
        return f"{self.role}::{self.caps}::{self.scope}::{self.body}"

    @property
    def agent_class(self) -> str:
        """The task class without ``::<body8>``: same agent and scope, any prompt."""
        return f"{self.role}::{self.caps}::{self.scope}"

    @property
    def tags(self) -> frozenset[str]:
        """The caps as a set of tags, empty tags dropped (the router kernel's view)."""
        return frozenset(t for t in self.caps.split("-") if t)


def parse_dna(text: str) -> Dna:
    """Parse upstream's wire format; raise :class:`InputError` naming the bad segment."""
    if not isinstance(text, str):
        raise TypeError(f"DNA must be a str, not {type(text).__name__}")
    return Dna(*_split(text))


def build_dna(
    role: str, tags: Sequence[str], scope_text: str | bytes, body_text: str | bytes, nonce: bytes
) -> Dna:
    """Build a DNA the way upstream's ``DnaBuilder`` does, minus the randomness.

    Scope and body are the first 4 bytes of SHA-256 of their input (text as
    UTF-8) in UPPERCASE hex; the nonce is the caller's 4 random bytes in
    lowercase hex. Randomness is the caller's job so the domain stays pure.
    """
    if isinstance(tags, str | bytes):
        raise TypeError("tags must be a sequence of str, not one string")
    if not isinstance(nonce, bytes) or len(nonce) != _HEX_WIDTH // 2:
        raise ValueError(f"nonce must be exactly {_HEX_WIDTH // 2} bytes")
    text = f"{role}::{'-'.join(tags)}::{_sha8(scope_text)}::{_sha8(body_text)}-{nonce.hex()}"
    return parse_dna(text)


def task_class_of(text: str | None) -> str | None:
    """Task class of a raw stored DNA string, exactly as upstream's SQL column.

    Mirrors the v9 generated column ``task_class_dna``: ``None`` for ``None`` or
    ``""``; when the text is longer than 9 characters and the 9th character from
    the end is ``-``, the text minus its last 9 characters; otherwise the text
    unchanged. Lengths count characters, as SQLite's ``length()`` does. Rust's
    ``task_class_dna`` differs at the edges (it strips at exactly 9 and counts
    bytes); kei follows SQL, see ``docs/events.md`` §9.
    """
    if not text:
        return None
    if len(text) > _NONCE_SUFFIX and text[-_NONCE_SUFFIX] == "-":
        return text[:-_NONCE_SUFFIX]
    return text


def _split(text: str) -> tuple[str, str, str, str, str]:
    """The five fields of ``text``, or an InputError in upstream's check order."""
    if not text:
        raise InputError(f"DNA '': empty; expected {WIRE_FORMAT}")
    parts = text.split("::")
    if len(parts) != 4:
        raise InputError(
            f"DNA {_quote(text)}: expected 4 '::'-separated segments "
            f"({WIRE_FORMAT}), found {len(parts)} segments"
        )
    role, caps, scope, tail = parts
    body, dash, nonce = tail.partition("-")
    if not dash:
        raise InputError(
            f"DNA {_quote(text)}: last segment {_quote(tail)} must be <body8>-<nonce8>, "
            "found no '-'"
        )
    if not role:
        raise InputError(f"DNA {_quote(text)}: role segment is empty; expected a role name")
    if not caps:
        raise InputError(
            f"DNA {_quote(text)}: caps segment is empty; expected tags joined with '-' or '?'"
        )
    for name, value in (("scope", scope), ("body", body), ("nonce", nonce)):
        _check_hex8(text, name, value)
    return role, caps, scope, body, nonce


def _check_hex8(text: str, name: str, value: str) -> None:
    if len(value) != _HEX_WIDTH:
        raise InputError(
            f"DNA {_quote(text)}: {name} segment {_quote(value)} must be "
            f"{_HEX_WIDTH} hex characters, found {len(value)} characters"
        )
    for index, char in enumerate(value):
        if char not in _HEX:
            raise InputError(
                f"DNA {_quote(text)}: {name} segment {_quote(value)} must be "
                f"{_HEX_WIDTH} hex characters, found {char!r} at offset {index}"
            )


def _sha8(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).digest()[: _HEX_WIDTH // 2].hex().upper()


def _quote(value: str) -> str:
    """Quote untrusted text on one line (escapes included) and bounded in length."""
    shown = value if len(value) <= _SHOWN else value[: _SHOWN - 1] + "…"
    return repr(shown)
