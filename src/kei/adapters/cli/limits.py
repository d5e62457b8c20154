"""The bounds every command applies to what it is given, in one place (docs/cli.md,
"Limits", lists them): integer options, arguments that are not UTF-8, path lengths.

Integers are bounded where they are parsed (``typer.Option(min=..., max=...)`` with the
constants below), so an out-of-range number is a usage error before anything runs;
the fuzz test (tests/cli/test_cli_hostile_fuzz.py) checks that no integer option is left
unbounded.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping, Sequence

from kei.errors import InputError
from kei.limits import LIMITS

# The widest integer SQLite and PostgreSQL store (a signed 64-bit BIGINT): positions,
# token counts, money in micro-cents, seeds.
INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
# Whole cents whose micro-cents (x 1,000,000) still fit that width.
CENTS_MAX = INT64_MAX // 1_000_000
# Processes ``verify-chain -j`` may start, and rows a listing may ask for (``-n``,
# ``--limit``, ``-k``, ``--depth``...): kept with every other bound in ``kei.limits``.
JOBS_MAX = LIMITS.max_jobs
COUNT_MAX = LIMITS.max_rows
# Linux's PATH_MAX and NAME_MAX: a longer path cannot be opened on any file system.
PATH_MAX_BYTES = 4096
NAME_MAX_BYTES = 255


def check_text(args: Sequence[str], env: Mapping[str, str]) -> None:
    """Refuse an argument, or a ``KEI_*`` variable, that is not valid UTF-8 (and an
    argument holding a NUL, which no path, name or URL may contain).

    Python hands such bytes over as lone surrogates ("surrogateescape"); they cannot
    be signed, stored or printed, so they are refused before any command runs."""
    for index, arg in enumerate(args, start=1):
        if not _is_utf8(arg):
            raise InputError(
                f"argument {index} is not valid UTF-8 ({_shown(arg)})",
                hint="pass text in UTF-8",
            )
        if "\x00" in arg:  # impossible in a real argv, possible from Python callers
            raise InputError(f"argument {index} contains a NUL character ({_shown(arg)})")
    for name, value in env.items():
        if name.startswith("KEI_") and not _is_utf8(value):
            raise InputError(
                f"environment variable {_shown(name)} is not valid UTF-8",
                hint="set it to UTF-8 text",
            )


def too_long(exc: OSError) -> InputError | None:
    """The one-line error for a path the system refused as too long, else None."""
    if exc.errno != errno.ENAMETOOLONG:
        return None
    name = exc.filename if isinstance(exc.filename, str) else ""
    return InputError(
        f"path too long: {_shown(name)}" if name else "a path is too long",
        hint=f"paths are limited to {PATH_MAX_BYTES} bytes, {NAME_MAX_BYTES} per name",
    )


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(text: str) -> str:
    """``text`` fit for one line of stderr: escaped, and cut when long."""
    shown = ascii(text)
    return shown if len(shown) <= 80 else f"{shown[:60]}...{shown[-12:]}"
