"""What the proof commands read from their arguments: verifier keys and proofs.

``kei verify-proof --vkey``, ``kei witness cosign --vkey`` and ``kei verify-chain
--witness`` all take a C2SP verifier key either literally or as the name of a file
that holds it (what `kei keys export --vkey` or `kei witness vkey` printed); they
differ only in which kind of key they parse (:data:`LOG_KEYS` or :data:`WITNESS_KEYS`).
``kei verify-proof`` and ``kei witness cosign --proof`` read a proof from a file or
stdin with :func:`read_proof`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from msgspec import Struct

from kei.adapters.files.bounded_read import read_at_most
from kei.domain.log.checkpoint import parse_vkey
from kei.domain.log.cosignature import parse_witness_vkey
from kei.errors import InputError
from kei.limits import LIMITS


class KeyKind(Struct, frozen=True):
    """One kind of verifier key: how to parse it, its name in errors, where to get one."""

    parse: Callable[[str], tuple[str, bytes]]
    what: str
    hint: str


LOG_KEYS = KeyKind(parse_vkey, "verifier key", "print one with `kei keys export KEY_ID --vkey`")
WITNESS_KEYS = KeyKind(
    parse_witness_vkey, "witness key", "print one with `kei witness vkey` on the witness"
)


def read_vkeys(values: Sequence[str], kind: KeyKind) -> list[tuple[str, bytes]]:
    """Each value parsed as a key of ``kind``, else as a file holding one; InputError
    naming the first that is neither."""
    found = []
    for value in values:
        try:
            found.append(kind.parse(value))
            continue
        except ValueError as exc:
            problem = str(exc)
        path = Path(value)
        if path.is_file():
            try:
                with path.open("rb") as f:
                    found.append(
                        kind.parse(f.read(LIMITS.max_vkey_file_bytes).decode("utf-8", "replace"))
                    )
                continue
            except ValueError as exc:
                problem = str(exc)
            except OSError as exc:
                problem = exc.strerror or str(exc)
        raise InputError(f"bad {kind.what} {value[:60]!r}: {problem}", hint=kind.hint)
    return found


def read_proof(source: str) -> str:
    """The text of a proof file (``-``: stdin), read no further than ``LIMITS.max_proof_bytes``."""
    try:
        if source == "-":
            raw = sys.stdin.buffer.read(LIMITS.max_proof_bytes + 1)
        else:
            raw = read_at_most(Path(source), LIMITS.max_proof_bytes)
        return raw.decode("utf-8")
    except OSError as exc:
        raise InputError(f"cannot read proof {source}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"proof {source} is not UTF-8 text") from exc
