"""``kei init``: create the store, a key if none exists, and the genesis event, and
pin the ledger id and genesis key in ``KEI_HOME`` (``kei.adapters.files.pins``)."""

from __future__ import annotations

from typing import Annotated

import typer

from kei.adapters.cli.context import handled, stderr
from kei.adapters.cli.options import JsonObject
from kei.adapters.cli.output import json_line
from kei.errors import InputError

LedgerName = Annotated[
    str, typer.Option("--name", metavar="NAME", help="A human name for this ledger.")
]


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(ctx: typer.Context, name: LedgerName = "kei", as_json: JsonObject = False) -> None:
        """Create the ledger: store, signing key (if missing) and genesis event."""
        from kei.adapters.cli.config import prepare_home
        from kei.adapters.files.keyfile import key_exists, load_key, write_key
        from kei.adapters.files.pins import write_pin
        from kei.adapters.store.urls import redact_url
        from kei.app.ledger.ledger import Ledger
        from kei.domain.events import LedgerGenesis
        from kei.domain.events.limits import check_payload
        from kei.domain.log.keys import SigningKey

        with handled(ctx) as g:
            # The name is checked first, even where a ledger exists: a bad value is an
            # error, never "nothing changed".
            if not name.strip():
                raise InputError("--name is blank", hint="name the ledger, or leave --name out")
            check_payload(LedgerGenesis(ledger_id="-", name=name, key_id="-", public_key="-"))
            settings = g.settings()
            prepare_home(settings.home)
            path = settings.key_path()
            created_key = not key_exists(path)
            key = SigningKey.generate(name=path.stem) if created_key else load_key(path)
            with Ledger.open(
                settings.db_url, key=key, create=True, synchronous=settings.synchronous
            ) as ledger:
                if ledger.is_initialised():
                    if as_json:
                        json_line({"ok": True, "created": False, "ledger_id": ledger.ledger_id,
                                   "store": redact_url(settings.db_url)})  # fmt: skip
                    stderr().print(
                        f"kei: ledger {ledger.ledger_id} already exists in {ledger.store.url}; "
                        "nothing changed",
                        markup=False,
                    )
                    return
                if created_key:
                    write_key(path, key)
                try:
                    genesis = ledger.init(name)
                except BaseException:
                    if created_key:  # never leave a key the ledger does not know
                        path.unlink(missing_ok=True)
                    raise
                ledger_id = ledger.ledger_id
            try:
                pinned = str(write_pin(settings.home, settings.db_url, ledger_id, key.public_key))
            except OSError as exc:  # the ledger exists: `kei verify-chain` pins it later
                pinned = f"nowhere ({exc.strerror or exc}; `kei verify-chain` pins it)"
            if as_json:
                json_line({"ok": True, "created": True, "ledger_id": ledger_id,
                           "store": redact_url(settings.db_url), "key_id": key.key_id_hex,
                           "key_created": created_key, "position": genesis.position})  # fmt: skip
            out = stderr()
            if created_key:
                out.print(f"created key {key.key_id_hex} at {path}", markup=False)
            out.print(
                f"initialised ledger {ledger_id} in {redact_url(settings.db_url)} "
                f"(genesis at position {genesis.position}); pinned in {pinned}",
                markup=False,
            )
