"""Reading kei's TOML files (the model catalog, leak rules): the ones shipped inside kei
and the ones users hand it, bounded in size, decoded strictly, and every failure one
line of the caller's error type."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from kei.adapters.files.bounded_read import read_at_most
from kei.errors import InputError


def read_bounded(path: Path, max_bytes: int, error: type[InputError]) -> bytes:
    """The file's bytes, refused before parsing when over ``max_bytes``."""
    try:
        raw = read_at_most(path, max_bytes)
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


def read_toml(path: Path, max_bytes: int, error: type[InputError]) -> dict[str, object]:
    """A user's TOML file, refused when over ``max_bytes``; its path names it in errors."""
    return parse_toml(read_bounded(path, max_bytes, error), str(path), error)


def read_shipped_toml(name: str, what: str, error: type[InputError]) -> dict[str, object]:
    """The TOML file ``kei/data/<name>`` shipped inside kei, read as package data
    (``importlib.resources``, so it works from a wheel or a zip); ``what`` names it
    when it cannot be read."""
    source = f"kei/data/{name}"
    try:
        raw = resources.files("kei").joinpath("data", name).read_bytes()
    except OSError as exc:
        raise error(f"{source}: cannot read the shipped {what} ({exc})") from exc
    return parse_toml(raw, source, error)
