"""Verifier keys given on the command line, as text or as a file holding one.

``kei verify-proof --vkey``, ``kei witness cosign --vkey`` and ``kei verify-chain
--witness`` all take a C2SP verifier key either literally or as the name of a file
that holds it (what `kei keys export --vkey` or `kei witness vkey` printed); they
differ only in which kind of key they parse.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from kei.errors import InputError
from kei.limits import LIMITS


def read_vkeys(
    values: Sequence[str],
    parse: Callable[[str], tuple[str, bytes]],
    *,
    what: str,
    hint: str,
) -> list[tuple[str, bytes]]:
    """Each value parsed as a key, else as a file holding one; InputError naming the
    first that is neither."""
    found = []
    for value in values:
        try:
            found.append(parse(value))
            continue
        except ValueError as exc:
            problem = str(exc)
        path = Path(value)
        if path.is_file():
            try:
                with path.open("rb") as f:
                    found.append(
                        parse(f.read(LIMITS.max_vkey_file_bytes).decode("utf-8", "replace"))
                    )
                continue
            except ValueError as exc:
                problem = str(exc)
            except OSError as exc:
                problem = exc.strerror or str(exc)
        raise InputError(f"bad {what} {value[:60]!r}: {problem}", hint=hint)
    return found
