"""``kei serve``: the HTTP API (``kei.adapters.http``, the ``kei[serve]`` extra).

Thin: checks the ledger and the TLS files, loads the server's key (``--key`` /
``KEI_KEY``) and every key under ``KEI_HOME/keys`` (a token bound to one of them signs
its writes with it), the read models' seal key and the model catalog, and runs the app
under uvicorn until interrupted: ``/v1``, ``/openapi.json``, the dashboard at ``/`` and,
with the MCP SDK installed, ``/mcp``. Tokens are checked against the log's token
events (``kei.app.tokens.LedgerAuthenticator``). Starlette and uvicorn are imported
only here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kei.adapters.cli.context import handled, load_signing_key, seal_key, stderr
from kei.adapters.cli.options import number
from kei.errors import InputError

if TYPE_CHECKING:
    from kei.adapters.cli.config import Settings
    from kei.domain.log.keys import SigningKey

Runner = Callable[[str, int, Path | None, Path | None], None]
Host = Annotated[
    str,
    typer.Option("--host", metavar="ADDRESS", help="Address to listen on (loopback by default)."),
]
Port = Annotated[int, number("--port", help="TCP port to listen on.", least=1, most=65535)]
Db = Annotated[
    str | None, typer.Option("--db", metavar="URL", help="The store (as the global --db).")
]
TlsCert = Annotated[
    Path | None, typer.Option("--tls-cert", metavar="FILE", help="TLS certificate (PEM).")
]
TlsKey = Annotated[
    Path | None, typer.Option("--tls-key", metavar="FILE", help="TLS private key (PEM).")
]
MaxBody = Annotated[int, number("--max-body", help="Largest request body, in bytes.")]
Rate = Annotated[
    float,
    typer.Option(
        "--rate",
        metavar="PER_SECOND",
        help="Requests per second per token, on average (0: no limit).",
    ),
]
Reverify = Annotated[
    float,
    typer.Option(
        "--reverify",
        metavar="SECONDS",
        help="Re-verify the whole log this often, in the background (0: never).",
    ),
]
Burst = Annotated[int, number("--burst", help="Requests per token at once, above the rate.")]


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        ctx: typer.Context,
        host: Host = "127.0.0.1",
        port: Port = 8741,
        db: Db = None,
        *,
        tls_cert: TlsCert = None,
        tls_key: TlsKey = None,
        max_body: MaxBody = 1 << 20,
        rate: Rate = 200.0,
        burst: Burst = 400,
        reverify: Reverify = 600.0,
    ) -> None:
        """Serve kei's HTTP API (/v1, /openapi.json) until interrupted."""  # fmt: skip
        with handled(ctx) as g:
            if (tls_cert is None) != (tls_key is None):
                raise InputError(
                    "TLS needs both --tls-cert and --tls-key", hint="pass both, or neither"
                )
            for path in (tls_cert, tls_key):
                if path is not None and not path.is_file():
                    raise InputError(f"no such file: {path}", hint="pass a PEM file")
            if not (0 <= rate < math.inf and 0 <= reverify < math.inf):  # nan fails too
                raise InputError("--rate and --reverify must be 0 or more, and finite")
            _resolvable(host)
            settings = g.settings()
            if db is not None:
                import msgspec

                settings = msgspec.structs.replace(settings, db_url=db)
            run = _prepare(settings, max_body=max_body, rate=rate, burst=burst, reverify=reverify)
            stderr().print(
                f"kei: serving on http{'s' if tls_cert else ''}://{host}:{port}/v1", markup=False
            )
            run(host, port, tls_cert, tls_key)


def _resolvable(host: str) -> None:
    """A --host that names no address is one line here, not a server that says it
    serves and then fails."""
    import socket

    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError) as exc:
        raise InputError(f"--host {host!r} is not an address this machine can listen on: {exc}",
                         hint="use 127.0.0.1, 0.0.0.0 or one of this machine's addresses") from None  # fmt: skip


def _prepare(
    settings: Settings, *, max_body: int, rate: float, burst: int, reverify: float
) -> Runner:
    """Everything that can fail with a one-line error, before the server starts."""
    try:
        import uvicorn

        from kei.adapters.http.app import build_app
    except ImportError as exc:
        raise InputError(
            f"kei serve needs Starlette and uvicorn, which are not installed ({exc.name or exc})",
            hint="pip install 'kei[serve]'",
        ) from None
    from kei.adapters.files.catalog import load_catalog
    from kei.adapters.http import dashboard
    from kei.adapters.http.backend import Store
    from kei.adapters.http.guard import RateLimit
    from kei.app.ledger.ledger import Ledger
    from kei.app.tokens import LedgerAuthenticator

    key = load_signing_key(settings)
    keys = _keys(settings)
    with Ledger.open(settings.db_url) as ledger:
        ledger.ledger_id  # noqa: B018 - refuses a store without a genesis, in one line
    store = Store(
        url=settings.db_url, key=key, key_for=lambda key_id: _key_for(keys, key_id),
        seal_key=seal_key(settings), catalog=load_catalog(settings.home),
        synchronous=settings.synchronous, retry=settings.retry,
        checkpoint_state=settings.checkpoint_state, reverify=reverify,
    )  # fmt: skip
    auth_ledger = Ledger.open(settings.db_url)
    app = build_app(store, LedgerAuthenticator(auth_ledger), max_body=max_body,
                    rate=RateLimit(rate=rate, burst=burst), mcp=_has_mcp(),
                    extra_routes=dashboard.routes())  # fmt: skip

    def run(host: str, port: int, cert: Path | None, tls_key: Path | None) -> None:
        try:
            uvicorn.run(app, host=host, port=port, log_level="warning",
                        ssl_certfile=cert, ssl_keyfile=tls_key,
                        timeout_graceful_shutdown=5)  # fmt: skip
        finally:
            auth_ledger.close()

    return run


def _keys(settings: Settings) -> dict[str, SigningKey]:
    """Every readable key under ``KEI_HOME/keys``, by key id and by name."""
    from kei.adapters.files.keyfile import KEY_SUFFIX, load_key
    from kei.errors import KeyFileError

    found: dict[str, SigningKey] = {}
    if not settings.keys_dir.is_dir():
        return found
    for path in sorted(settings.keys_dir.glob(f"*{KEY_SUFFIX}")):
        try:
            key = load_key(path)
        except KeyFileError:
            continue
        found[key.key_id_hex] = found[key.name] = key
    return found


def _key_for(keys: dict[str, SigningKey], key_id: str) -> SigningKey:
    key = keys.get(key_id)
    if key is None:
        raise InputError(
            f"this token signs with key {key_id}, whose file is not under KEI_HOME/keys",
            hint="put the key file there and restart kei serve, or use another token",
        )
    return key


def _has_mcp() -> bool:
    """Whether the MCP SDK is installed (``kei[mcp]``): then ``/mcp`` is served too."""
    import importlib.util

    return importlib.util.find_spec("mcp") is not None
