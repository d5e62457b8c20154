"""``kei keys new|import|list|export|revoke``: key files on disk, the key registry in the log."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from kei.adapters.cli.context import (
    command_group,
    handled,
    is_tty,
    load_signing_key,
    open_ledger,
    stderr,
)
from kei.adapters.cli.options import JsonLines, JsonObject
from kei.adapters.cli.output import json_line
from kei.app.ledger.tail import printable as safe
from kei.errors import InputError

if TYPE_CHECKING:
    from kei.adapters.cli.config import Settings
    from kei.app.ledger.ledger import Ledger
    from kei.domain.log.keys import SigningKey

keys_app, register = command_group("keys", "Create, list, export and revoke signing keys.")


_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)


@keys_app.command("new")
def new(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Name of the new key file.")
    ] = "default",
    as_json: JsonObject = False,
) -> None:
    """Create a key file (mode 0600) and register the key in the ledger, signed by --key."""
    from kei.domain.log.keys import SigningKey

    with handled(ctx) as g:
        settings = g.settings()
        if not _KEY_NAME.fullmatch(name):
            raise InputError(
                f"bad key name {name!r}",
                hint="use at most 64 letters, digits, '.', '-' or '_', starting with a letter or digit",
            )
        path = settings.key_path(name)
        if path.exists():
            raise InputError(f"key file {path} already exists", hint="pick another name")
        key = SigningKey.generate(name=name)
        with _signed_ledger(settings) as ledger:
            position = _add_key(ledger, key, path, write=True)
        _registered(f"created key {key.key_id_hex} at {path}", key, path, position, as_json)


@keys_app.command("import")
def import_key(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A key file (kei-ledger-sign's JSON format).")
    ],
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            metavar="NAME",
            help="Name of the copy in the keys folder (default: the file's).",
        ),
    ] = None,
    as_json: JsonObject = False,
) -> None:
    """Register an existing key file in the ledger, signed by --key, and copy it (0600)
    into the keys folder."""
    from kei.adapters.files.keyfile import load_key
    from kei.domain.log.keys import SigningKey

    with handled(ctx) as g:
        settings = g.settings()
        loaded = load_key(file)  # the file's own rules: no symlink, yours, 0600, well-formed
        key_name = name if name is not None else loaded.name
        _check_name(key_name)
        key = SigningKey(loaded.seed, name=key_name)
        path = settings.key_path(key_name)
        with _signed_ledger(settings) as ledger:
            known = ledger.keyring(refresh=True).keys.get(key.key_id)
            if known is not None:
                raise InputError(
                    f"key {key.key_id_hex} is already registered in this ledger "
                    f"(as {safe(known.name)!r}, position {known.added_at})",
                    hint="nothing to import; see `kei keys list`",
                )
            in_place = _same_file(file, path)  # already in the keys folder: no copy
            if not in_place and (path.exists() or path.is_symlink()):
                raise InputError(
                    f"key file {path} already exists", hint="pick another name with --name"
                )
            position = _add_key(ledger, key, path, write=not in_place)
        _registered(f"imported key {key.key_id_hex} as {path}", key, path, position, as_json)


@contextmanager
def _signed_ledger(settings: Settings) -> Iterator[Ledger]:
    """The ledger opened with --key, which must already be registered there: it signs
    the new key's registration."""
    from kei.app.ledger.ledger import Ledger

    signer = load_signing_key(settings)
    with Ledger.open(
        settings.db_url, key=signer, synchronous=settings.synchronous, retry=settings.retry
    ) as ledger:
        ledger.check_signer(signer)
        yield ledger


def _add_key(ledger: Ledger, key: SigningKey, path: Path, *, write: bool) -> int:
    """Register ``key`` (its position); with ``write``, its file at ``path`` first,
    removed again if registering fails: never leave a key the ledger does not know."""
    from kei.adapters.files.keyfile import write_key

    if write:
        write_key(path, key)
    try:
        return ledger.add_key(key).position
    except BaseException:
        if write:
            path.unlink(missing_ok=True)
        raise


def _registered(what: str, key: SigningKey, path: Path, position: int, as_json: bool) -> None:
    """Say that ``new`` or ``import`` registered ``key``, its file at ``path``."""
    if as_json:
        json_line({"ok": True, "key_id": key.key_id_hex, "file": str(path), "position": position})
    stderr().print(f"{what} (registered at position {position})", markup=False)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_name(name: str) -> None:
    if not _KEY_NAME.fullmatch(name):
        raise InputError(
            f"bad key name {safe(name)!r}",
            hint="use at most 64 letters, digits, '.', '-' or '_', starting with a letter or digit"
            " (--name)",
        )


@keys_app.command("list")
def list_keys(
    ctx: typer.Context,
    as_json: JsonLines = False,
) -> None:
    """List the keys registered in the ledger, with their status and local key files."""
    from kei.domain.log.checkpoint import vkey

    with handled(ctx) as g:
        settings = g.settings()
        with open_ledger(settings) as ledger:
            ring = ledger.keyring(refresh=True)
            origin = ledger.ledger_id
        local = (
            {p.stem: p for p in settings.keys_dir.glob("*.key")}
            if settings.keys_dir.is_dir()
            else {}
        )
        rows = [
            {
                "key_id": e.key_id.hex(),
                "name": e.name,
                "status": "revoked" if e.revoked_at is not None else "active",
                "added_position": e.added_at,
                "revoked_position": e.revoked_at,
                "reason": e.reason or None,
                "local_file": str(local[e.name]) if e.name in local else None,
                "public_key": e.public_key.hex(),
                "vkey": vkey(origin, e.public_key),
            }
            for e in ring.keys.values()
        ]
        if as_json or not is_tty():
            if as_json:
                for row in rows:
                    json_line(row)
                return
            for row in rows:
                name = safe(str(row["name"]))
                typer.echo(f"{row['key_id']}\t{row['status']}\t{name}\t{row['added_position']}")
            return
        table = Table("key id", "name", "status", "added at", "revoked at", "reason")
        for row in rows:
            table.add_row(
                safe(str(row["key_id"])), safe(str(row["name"])), str(row["status"]),
                str(row["added_position"]), str(row["revoked_position"] or ""), safe(str(row["reason"] or "")),
            )  # fmt: skip
        from rich.console import Console

        Console().print(table)


@keys_app.command("export")
def export(
    ctx: typer.Context,
    key_id: Annotated[
        str, typer.Argument(metavar="KEY_ID", help="The 16-hex-digit key id (see `kei keys list`).")
    ],
    as_vkey: Annotated[
        bool,
        typer.Option("--vkey", help="Print the C2SP verifier key (the only format so far)."),
    ] = False,
) -> None:
    """Print a key's C2SP verifier key, which checks checkpoints and proofs without the log."""
    from kei.domain.log.checkpoint import vkey

    with handled(ctx) as g:
        if not as_vkey:
            raise InputError("say which form to export", hint="pass --vkey")
        settings = g.settings()
        with open_ledger(settings) as ledger:
            ring = ledger.keyring(refresh=True)
            origin = ledger.ledger_id
        wanted = key_id.lower()
        entry = next((e for e in ring.keys.values() if e.key_id.hex() == wanted), None)
        if entry is None:
            raise InputError(
                f"no key {key_id!r} in this ledger", hint="see `kei keys list` for the key ids"
            )
        typer.echo(vkey(origin, entry.public_key))


@keys_app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: Annotated[
        str, typer.Argument(metavar="KEY_ID", help="The 16-hex-digit key id (see `kei keys list`).")
    ],
    reason: Annotated[
        str, typer.Option("--reason", metavar="TEXT", help="Why the key is revoked.")
    ] = "",
    as_json: JsonObject = False,
) -> None:
    """Revoke a key: every event it signs after this one fails verification."""
    with handled(ctx) as g:
        settings = g.settings()
        with open_ledger(settings, with_key=True) as ledger:
            event = ledger.revoke_key(key_id.lower(), reason)
        if as_json:
            json_line({"ok": True, "key_id": key_id.lower(), "position": event.position})
        stderr().print(f"revoked key {key_id} at position {event.position}", markup=False)
