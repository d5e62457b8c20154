"""Signing a batch on two cores: half in a helper process, half here, at the same time.

ed25519 signing is about three quarters of an append's CPU time, and PyNaCl holds
the GIL while it signs, so threads cannot share the work; a second process can. The
helper is started (``spawn``) on the first batch big enough to be worth it, without
waiting for it: batches are signed here until it is ready (a long run such as
``kei import claude-code`` never stalls on a start that costs it a tenth of a
second or more). It holds the
32-byte seed it was handed over a pipe, signs what it is sent and nothing else, and
is stopped by ``close()``; it never outlives its parent, however the parent ends,
and never runs the caller's script (``workers.py``). If it dies,
signing carries on here, and says so once in the log.

It is opt-in (``Ledger.open(..., parallel_signing=True)``): a library that starts
processes behind its caller's back surprises people, and on a machine with one free
core it buys nothing.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Final

import nacl.bindings

from kei.adapters.workers import processes as workers
from kei.domain.log.keys import SigningKey

log = logging.getLogger(__name__)
MIN_PARALLEL: Final = 32
START_TIMEOUT_S: Final = 30.0


def _serve(conn: Connection, seed: bytes) -> None:
    """The helper's whole life: sign each list of messages it receives."""
    secret = nacl.bindings.crypto_sign_seed_keypair(seed)[1]
    sign = nacl.bindings.crypto_sign
    conn.send(b"ready")
    while True:
        try:
            messages = conn.recv()
        except EOFError:
            return
        if messages is None:
            return
        conn.send([sign(m, secret)[:64] for m in messages])


class ParallelSigner:
    """Signs like ``key``; batches of ``MIN_PARALLEL`` or more are split with a helper."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key
        self._conn: Connection | None = None
        self._process: BaseProcess | None = None
        self._broken = False
        self._ready_yet = False
        self._started_at = 0.0

    @property
    def key_id(self) -> bytes:
        return self.key.key_id

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)

    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]:
        if len(messages) < MIN_PARALLEL or not self._ready():
            return self.key.sign_many(messages)
        conn = self._conn
        assert conn is not None
        half = len(messages) // 2
        try:
            conn.send(list(messages[:half]))
            mine = self.key.sign_many(messages[half:])
            theirs: list[bytes] = conn.recv()
        except (OSError, EOFError) as exc:
            self._give_up(exc)
            return self.key.sign_many(messages)
        return theirs + mine

    def _ready(self) -> bool:
        """Is the helper there to share this batch? Started on the first big batch
        and never waited for: until it says it is ready, batches are signed here."""
        if self._ready_yet:
            return True
        if self._broken:
            return False
        if self._conn is None:
            self._start()
            return False
        try:
            if self._conn.poll(0):
                if self._conn.recv() != b"ready":
                    raise OSError("the signing helper did not start")
                self._ready_yet = True
            elif time.monotonic() - self._started_at > START_TIMEOUT_S:
                raise OSError("the signing helper did not start")
        except (OSError, EOFError) as exc:
            self._give_up(exc)
        return self._ready_yet

    def _start(self) -> None:
        ctx = workers.context()
        parent, child = ctx.Pipe()
        process = ctx.Process(
            target=_serve, args=(child, self.key.seed), daemon=True, name="kei-signer"
        )
        try:
            process.start()
        except (OSError, RuntimeError) as exc:
            if process.pid is not None:
                process.kill()
            self._give_up(exc)
            return
        finally:
            child.close()
        self._conn, self._process = parent, process
        self._started_at = time.monotonic()

    def _give_up(self, exc: BaseException) -> None:
        log.warning("parallel signing unavailable (%s); signing in this process", exc)
        self._broken = True
        self.close()

    def close(self) -> None:
        conn, process = self._conn, self._process
        self._conn = self._process = None
        self._ready_yet = False
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send(None)
            conn.close()
        if process is not None:
            process.join(timeout=2)
            if process.is_alive():
                process.kill()
