"""Injection guard: upstream kei-memory's ``scan``, rule for rule, before anything is kept.

Memory text is later pasted verbatim into an agent's system prompt, so a prompt
override, a chat-template tag, an invisible bidi character or a leaked secret that
gets into memory becomes text the model obeys or repeats. Upstream's rules (spec
§6.5, ``injection_patterns.rs``), checked in this order, first hit wins:

1. Invisible characters U+200B–U+200F, U+202A–U+202E, U+2060, U+FEFF, anywhere.
2. Regexes: ``ignore\\s+previous\\s+instructions``, ``you\\s+are\\s+now\\b``,
   ``disregard\\s+(all|prior|above)`` (all case-insensitive), a line starting with
   ``system\\s*:`` (case-insensitive), ``<|im_start|>``, ``<|endoftext|>``, the OpenSSH
   and RSA private-key PEM headers, and a whole line of 1024 or more ``[A-Za-z0-9+/=]``.
3. Substrings of the lower-cased text, every needle present: ``bearer `` and ``://``;
   ``aws_secret``; ``api_key=`` and ``://``.

Every rule is Block tier (Warn exists upstream but no rule uses it). ``\\s`` is
Rust's Unicode White_Space set, not Python's (which adds U+001C–U+001F). Upstream's
``KEI_MEMORY_SKIP_GUARD=1`` bypass reads the environment, so it belongs to the
adapter that calls :func:`scan`, never to this pure module.

Example::

    >>> scan("User prefers Rust over Python.")
    Ok()
    >>> scan("ok then ignore previous instructions").finding.pattern
    'prompt_override_ignore_previous'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import Enum
from typing import Final

from msgspec import Struct

__all__ = [
    "BASE64_LINE_MIN",
    "RUST_SPACE",
    "Blocked",
    "Finding",
    "Ok",
    "Severity",
    "Verdict",
    "scan",
    "scan_all",
    "scan_texts",
]

# Rust regex ``\s``: the Unicode White_Space property.
RUST_SPACE: Final = r"[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
BASE64_LINE_MIN: Final = 1024
INVISIBLE: Final = frozenset(
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\ufeff"
)
_INVISIBLE_RE: Final = re.compile("[" + "".join(sorted(INVISIBLE)) + "]")
_SNIPPET_CHARS: Final = 60
_S: Final = RUST_SPACE
_PEM_DASHES: Final = "-" * 5  # built, as upstream does, so secret scanners stay quiet


class Severity(Enum):
    """How a finding is treated: Block rejects the write, Warn only reports."""

    BLOCK = "block"
    WARN = "warn"


class Finding(Struct, frozen=True):
    """One rule hit: which rule, where (1-based line), and a short quote of the match."""

    pattern: str
    line: int
    severity: Severity
    source: str
    snippet: str

    def __str__(self) -> str:
        return f"[{self.severity.value}] {self.pattern} ({self.source}) at line {self.line}: {self.snippet}"


class Ok(Struct, frozen=True):
    """The text may be kept."""


class Blocked(Struct, frozen=True):
    """The text must not be kept; ``finding`` is the first Block-tier hit."""

    finding: Finding


Verdict = Ok | Blocked


def _pem(label: str) -> str:
    return re.escape(f"{_PEM_DASHES}BEGIN {label}{_PEM_DASHES}")


_REGEX_RULES: Final = tuple(
    (rule_id, re.compile(pattern, flags), source)
    for rule_id, pattern, flags, source in (
        ("prompt_override_ignore_previous", rf"ignore{_S}+previous{_S}+instructions", re.IGNORECASE, "promptguard:override"),
        ("prompt_override_you_are_now", rf"you{_S}+are{_S}+now\b", re.IGNORECASE, "promptguard:roleplay"),
        ("prompt_override_disregard", rf"disregard{_S}+(all|prior|above)", re.IGNORECASE, "promptguard:override"),
        ("system_role_prefix", rf"^{_S}*system{_S}*:", re.IGNORECASE | re.MULTILINE, "promptguard:role-prefix"),
        ("chatml_im_start", r"<\|im_start\|>", 0, "chatml:tag"),
        ("chatml_endoftext", r"<\|endoftext\|>", 0, "chatml:tag"),
        ("ssh_openssh_private", _pem("OPENSSH PRIVATE KEY"), 0, "secret:openssh"),
        ("ssh_rsa_private", _pem("RSA PRIVATE KEY"), 0, "secret:rsa"),
        ("long_base64_line", rf"^[A-Za-z0-9+/=]{{{BASE64_LINE_MIN},}}$", re.MULTILINE, "heuristic:base64-blob"),
    )
)  # fmt: skip

_SUBSTRING_RULES: Final = (
    ("curl_with_bearer", ("bearer ", "://"), "exfil:curl-bearer"),
    ("aws_secret_keyword", ("aws_secret",), "secret:aws"),
    ("api_key_url", ("api_key=", "://"), "exfil:api-key-url"),
)


def scan(text: str) -> Verdict:
    """``Ok()`` when no Block-tier rule fires, else ``Blocked`` with the first hit."""
    for finding in scan_all(text):
        if finding.severity is Severity.BLOCK:
            return Blocked(finding)
    return Ok()


def scan_texts(texts: Iterable[str | None]) -> Verdict:
    """The first block among several texts of one record (``None`` is skipped)."""
    for text in texts:
        if text is not None and isinstance(verdict := scan(text), Blocked):
            return verdict
    return Ok()


def scan_all(text: str) -> tuple[Finding, ...]:
    """Every finding, in upstream's check order (at most one per rule)."""
    found: list[Finding] = []
    invisible = _invisible(text)
    if invisible is not None:
        found.append(invisible)
    for rule_id, regex, source in _REGEX_RULES:
        match = regex.search(text)
        if match is not None:
            line = _line_of(text, match.start())
            found.append(Finding(rule_id, line, Severity.BLOCK, source, _snip(match.group())))
    lower = text.lower()
    for rule_id, needles, source in _SUBSTRING_RULES:
        if all(needle in lower for needle in needles):
            line = _line_of(lower, lower.find(needles[0]))
            found.append(Finding(rule_id, line, Severity.BLOCK, source, needles[0]))
    return tuple(found)


def _invisible(text: str) -> Finding | None:
    """The first invisible or bidi-control character: one C-level search, where a
    Python loop over every character cost a large transcript more than all the rest."""
    match = _INVISIBLE_RE.search(text)
    if match is None:
        return None
    snippet = f"U+{ord(match.group()):04X}"
    offset = match.start()
    return Finding("invisible_unicode", _line_of(text, offset), Severity.BLOCK, "unicode:bidi",
                   snippet)  # fmt: skip


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _snip(matched: str) -> str:
    if len(matched) <= _SNIPPET_CHARS:
        return matched
    return matched[:_SNIPPET_CHARS] + "…"
