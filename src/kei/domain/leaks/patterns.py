"""Upstream's leak patterns are Rust regexes: kei reads them with Python's ``re``.

A Rust named group ``(?<name>`` becomes ``(?P<name>``, a replacement's ``$1`` /
``$name`` / ``${name}`` / ``$$`` becomes an ``re`` template, and a pattern ``re``
would read differently (a warning) or that matches the empty string is refused.
"""

from __future__ import annotations

import re
import warnings

from kei.domain.leaks.prefilter import parse_tree
from kei.errors import LeakMatrixError
from kei.limits import LIMITS

_RUST_REF = r"\$(?:\$|\{([^}]*)\}|([A-Za-z0-9_]+))"
_RUST_NAMED_GROUP = r"(?<!\\)((?:\\\\)*)\(\?<(?=[A-Za-z_])"


def python_pattern(pattern: object, where: str) -> str:
    """The pattern in Python's syntax: a Rust ``(?<name>`` group becomes ``(?P<name>``."""
    if not isinstance(pattern, str) or not pattern or len(pattern) > LIMITS.max_leak_pattern_chars:
        raise LeakMatrixError(
            f"{where}: expected a non-empty regex of at most {LIMITS.max_leak_pattern_chars} chars"
        )
    return re.sub(_RUST_NAMED_GROUP, r"\1(?P<", pattern)


def pattern_flags(python: str, where: str) -> int:
    """The pattern parsed as ``re.compile`` parses it (with the same refusals): the
    flags the compiled pattern will have."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return int(parse_tree(python, re.MULTILINE).state.flags) | re.MULTILINE
    except (re.error, FutureWarning, DeprecationWarning) as exc:
        raise not_valid(exc, where) from None


def not_valid(exc: Exception, where: str) -> LeakMatrixError:
    detail = exc.msg if isinstance(exc, re.error) else "ambiguous syntax"
    pos = f" at offset {exc.pos}" if isinstance(exc, re.error) and exc.pos is not None else ""
    return LeakMatrixError(
        f"{where}: not a valid regex ({detail}{pos})",
        hint="kei compiles patterns with Python's re; Rust-only syntax such as \\p{..} "
        "or [[:alpha:]] is not supported",
    )


def compile_pattern(pattern: object, where: str) -> re.Pattern[str]:
    """Compile once; a Rust ``(?<name>`` group becomes Python's ``(?P<name>``."""
    python = python_pattern(pattern, where)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            regex = re.compile(python, re.MULTILINE)
    except (re.error, FutureWarning, DeprecationWarning) as exc:
        raise not_valid(exc, where) from None
    if regex.search("") is not None:
        raise LeakMatrixError(f"{where}: matches the empty string, so it would fire on every text")
    return regex


def translate_replacement(rust: str, regex: re.Pattern[str], where: str) -> str:
    """Rust's ``$1`` / ``$name`` / ``${name}`` / ``$$`` as a Python ``re`` template.

    Like Rust, ``$name`` takes the longest run of ``[A-Za-z0-9_]`` (so ``$1a`` names the
    group ``1a``; write ``${1}a``), and a ``$`` that starts no reference is a literal.
    Unlike Rust, which substitutes "" for a group that does not exist, kei refuses it.
    """
    out: list[str] = []
    last = 0
    for m in re.finditer(_RUST_REF, rust):
        out.append(rust[last : m.start()].replace("\\", "\\\\"))
        last = m.end()
        name = m.group(1) if m.group(1) is not None else m.group(2)
        if name is None:
            out.append("$")
        elif not name:
            out.append("${}")
        else:
            out.append(f"\\g<{_group(name, regex, where)}>")
    out.append(rust[last:].replace("\\", "\\\\"))
    return "".join(out)


def _group(name: str, regex: re.Pattern[str], where: str) -> str:
    if name.isdigit():
        if int(name) > regex.groups:
            raise LeakMatrixError(f"{where}: group ${name} does not exist in the pattern")
        return str(int(name))
    if name not in regex.groupindex:
        raise LeakMatrixError(f"{where}: group {name!r} does not exist in the pattern")
    return name
