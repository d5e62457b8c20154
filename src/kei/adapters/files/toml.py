"""Reading the TOML files users hand kei (the model catalog, leak rules): bounded in
size, decoded strictly, and every failure one line of the caller's error type."""

from __future__ import annotations

import tomllib
from pathlib import Path

from kei.errors import InputError


def read_bounded(path: Path, max_bytes: int, error: type[InputError]) -> bytes:
    """The file's bytes, refused before parsing when over ``max_bytes``."""
    try:
        with path.open("rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if len(raw) > max_bytes:
        raise error(f"{path}: larger than {max_bytes} bytes")
    return raw


def parse_toml(raw: bytes, source: str, error: type[InputError]) -> dict[str, object]:
    """``raw`` as TOML data; ``source`` names it in the error."""
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"{source}: not UTF-8 (byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{source}: bad TOML: {exc}") from exc
