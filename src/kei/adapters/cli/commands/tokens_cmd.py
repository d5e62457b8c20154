"""``kei tokens create|revoke|list``: the bearer tokens ``kei serve`` accepts.

Thin: the rules are in ``kei.domain.tokens``, the work in ``kei.app.tokens``. ``create``
prints the token on stdout, once (it is stored nowhere: only its hash is signed into
the log), and says what it made on stderr; ``--json`` puts the token in the one JSON
object instead. ``list`` never shows a secret or a hash.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from kei.adapters.cli.context import answering, command_group, handled, open_ledger, stderr
from kei.adapters.cli.options import JsonLines, JsonObject, TokenScope, now_us, time_us
from kei.adapters.cli.output import json_line

if TYPE_CHECKING:
    from kei.domain.tokens.book import TokenEntry

tokens_app, register = command_group("tokens", "API tokens for kei serve: create, revoke, list.")


ScopeOpt = Annotated[
    TokenScope, typer.Option("--scope", help="read: read only; write: read and append; admin: all.")
]


@tokens_app.command("create")
def create_cmd(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="What the token is for (unique among live ones).")
    ],
    scope: ScopeOpt,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            metavar="KEY_ID",
            help="Sign this token's writes with this key (id or name; default: the "
            "server's key). Its file must be in the keys folder.",
        ),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            metavar="WHEN",
            help="Stop accepting it then: a duration ahead (30d, 12h), a date/time or "
            "unix seconds (default: never).",
        ),
    ] = None,
    as_json: JsonObject = False,
) -> None:
    """Create a bearer token and print it once; only its hash is stored, as an event."""
    from kei.app.tokens import TokenService

    with handled(ctx) as g:
        expires_us = None if expires is None else time_us(expires, "--expires", ahead=True)
        settings = g.settings()
        with open_ledger(settings, with_key=True) as ledger:
            service = TokenService(ledger, keys_dir=settings.keys_dir)
            text, grant = service.create(name, scope, key, expires_us, now_us=now_us())
        signer = grant.key_id or "the server's key"
        stderr().print(
            f"kei: token {grant.token_id} ({_safe(name)}, {scope}, signs with {signer}) "
            f"created; it is shown once, store it now",
            markup=False,
        )
        if as_json:
            json_line({"ok": True, "token": text, "token_id": grant.token_id, "name": name,
                       "scope": scope, "key_id": grant.key_id,
                       "expires_us": grant.expires_us})  # fmt: skip
        else:
            sys.stdout.write(text + "\n")


TokenArg = Annotated[
    str, typer.Argument(metavar="TOKEN_ID|NAME", help="The token's id, or its name.")
]
ReasonOpt = Annotated[
    str, typer.Option("--reason", metavar="TEXT", help="Why, recorded in the log.")
]


@tokens_app.command("revoke")
def revoke_cmd(
    ctx: typer.Context,
    token: TokenArg,
    reason: ReasonOpt = "revoked with kei tokens revoke",
    as_json: JsonObject = False,
) -> None:
    """Revoke a token: kei serve refuses it from its next request on."""
    from kei.app.tokens import TokenService

    with handled(ctx) as g, open_ledger(g.settings(), with_key=True) as ledger:
        done = TokenService(ledger).revoke(token, reason, now_us=now_us())
        t = done.token
        what = "revoked" if done.appended else "was revoked already; nothing appended"
        stderr().print(f"kei: token {t.token_id} ({_safe(t.name)}) {what}", markup=False)
        if as_json:
            json_line({"ok": True, "changed": done.appended, **_entry(t, now_us())})


@tokens_app.command("list")
def list_cmd(ctx: typer.Context, as_json: JsonLines = False) -> None:
    """Every token: id, status (active, expired, revoked), scope, name, key, expiry."""
    from kei.app.tokens import TokenService

    with answering(ctx) as g, open_ledger(g.settings()) as ledger:
        tokens = TokenService(ledger).list()
    now = now_us()
    if as_json:
        for t in tokens:
            json_line(_entry(t, now))
        return
    if not tokens:
        stderr().print("kei: no tokens; create one with `kei tokens create NAME`", markup=False)
    sys.stdout.write("".join(_line(t, now) + "\n" for t in tokens))


def _status(t: TokenEntry, now: int) -> str:
    if t.revoked_position is not None:
        return "revoked"
    return "expired" if t.is_expired(now) else "active"


def _entry(t: TokenEntry, now: int) -> dict[str, object]:
    """A token as JSON: everything but its secret's hash."""
    return {"token_id": t.token_id, "name": t.name, "status": _status(t, now), "scope": t.scope,
            "key_id": t.key_id, "expires_us": t.expires_us, "created_us": t.created_us,
            "created_position": t.created_position, "revoked_us": t.revoked_us,
            "revoked_position": t.revoked_position, "reason": t.revoked_reason}  # fmt: skip


def _line(t: TokenEntry, now: int) -> str:
    from kei.app.json_form import rfc3339

    expires = "never" if t.expires_us is None else rfc3339(t.expires_us) or "-"
    cells = [t.token_id, _status(t, now), t.scope, _safe(t.name), t.key_id or "-", expires]
    return "\t".join(cells)


def _safe(text: str) -> str:
    from kei.app.ledger.tail import printable

    return printable(text)
