"""A real ``kei serve`` app on 127.0.0.1 for the HTTP tests: uvicorn in a thread, and a
dict-backed authenticator (the tokens the tests hand out, as ``kei tokens`` would)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from dashboard_fixture import serving
from kei.adapters.files.catalog import load_catalog
from kei.adapters.http.app import build_app
from kei.adapters.http.backend import Store
from kei.adapters.http.guard import RateLimit
from kei.domain.log.keys import SigningKey
from kei.domain.tokens.grant import Denied, Grant

READ, WRITE, ADMIN = "tok-read", "tok-write", "tok-admin"
REVOKED, EXPIRED = "tok-revoked", "tok-expired"


class DictTokens:
    """Bearer tokens from a dict: valid grants, and the revoked and expired ones."""

    def __init__(self, extra: dict[str, Grant] | None = None) -> None:
        def grant(name: str, scope: Any, expires_us: int | None = None) -> Grant:
            return Grant(token_id=name, name=name, scope=scope, key_id=None, expires_us=expires_us)

        self.grants: dict[str, Grant] = {
            READ: grant("reader", "read"), WRITE: grant("writer", "write"),
            ADMIN: grant("admin", "admin"), EXPIRED: grant("old", "admin", expires_us=1),
            **(extra or {}),
        }  # fmt: skip
        self.revoked = {REVOKED}

    def authenticate(self, bearer: str, now_us: int) -> Grant | Denied:
        if not bearer or not bearer.startswith("tok-"):
            return Denied(reason="malformed")
        if bearer in self.revoked:
            return Denied(reason="revoked")
        found = self.grants.get(bearer)
        if found is None:
            return Denied(reason="unknown")
        if found.expires_us is not None and found.expires_us <= now_us:
            return Denied(reason="expired")
        return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def running(
    url: str,
    key: SigningKey,
    home: Path,
    *,
    tokens: DictTokens | None = None,
    keys: dict[str, SigningKey] | None = None,
    reverify: float = 600.0,
    **options: Any,
) -> Iterator[str]:
    """Serve the ledger at ``url`` until the block ends; yields the base URL."""
    options.setdefault("rate", RateLimit(rate=0))
    store = Store(url=url, key=key, key_for=(keys or {}).__getitem__, seal_key=b"s" * 32,
                  catalog=load_catalog(home), synchronous="NORMAL", reverify=reverify)  # fmt: skip
    app = build_app(store, tokens or DictTokens(), **options)
    with serving(app, lifespan="on") as base:
        yield base


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def serve_forever(url: str, seed_hex: str, home: str, port: int) -> None:
    """Serve until killed, in this process (``python http_server.py URL SEED HOME PORT``):
    for the tests that SIGKILL a server under load."""
    key = SigningKey(bytes.fromhex(seed_hex), name="default")
    store = Store(url=url, key=key, seal_key=b"s" * 32, catalog=load_catalog(Path(home)))
    app = build_app(store, DictTokens(), rate=RateLimit(rate=0))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def wait_up(base: str, timeout: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no server at {base}")
        time.sleep(0.05)


if __name__ == "__main__":
    import sys

    serve_forever(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
