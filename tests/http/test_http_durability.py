"""Nothing acknowledged is lost: SIGKILL a server under 64 concurrent writers, restart
it, and every 201 is in the log exactly once, which verifies; two servers appending to
one PostgreSQL database at once keep one whole chain."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from http_server import WRITE, bearer, free_port, wait_up
from kei.app.ledger.ledger import Ledger
from kei.domain.log.keys import SigningKey

HELPER = Path(__file__).parent.parent / "helpers" / "http_server.py"
W = bearer(WRITE)


def _server(url: str, key: SigningKey, home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(HELPER), url, key.seed.hex(), str(home), str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_up(base)
    return proc, base


async def _hammer(base: str, clients: int, tag: str, acked: list[str], stop: asyncio.Event) -> None:
    """``clients`` writers forking agents one at a time until the server dies."""

    async def one(c: httpx.AsyncClient, n: int) -> None:
        i = 0
        while not stop.is_set():
            agent = f"{tag}-{n}-{i}"
            try:
                r = await c.post(f"/v1/agents/{agent}/fork", headers=W, json={"branch": "b"})
            except httpx.TransportError:
                return  # the server is gone: this request was never acknowledged
            if r.status_code == 201:
                acked.append(agent)
            i += 1

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as c:
        await asyncio.gather(*(one(c, n) for n in range(clients)))


def _forked(ledger: Ledger) -> Counter[str]:
    return Counter(
        e.stream.removeprefix("agent/") for e in ledger.read() if e.type == "agent.forked"
    )


@pytest.mark.slow
def test_sigkill_under_load_loses_no_acknowledged_event(tmp_path: Path, key: SigningKey) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger.open(url, key=key, create=True) as ledger:
        ledger.init("t")
    proc, base = _server(url, key, tmp_path)
    acked: list[str] = []

    async def load_then_kill() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(_hammer(base, 64, "k", acked, stop))
        while len(acked) < 200:
            await asyncio.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        await task

    asyncio.run(load_then_kill())
    proc.wait()
    proc, base = _server(url, key, tmp_path)  # restarts on what the kill left
    try:
        r = httpx.post(f"{base}/v1/agents/after/fork", headers=W, json={"branch": "b"})
        assert r.status_code == 201
    finally:
        proc.kill()
        proc.wait()
    with Ledger.open(url) as ledger:
        found = _forked(ledger)
        assert ledger.verify().ok
    assert all(found[a] == 1 for a in acked), [a for a in acked if found[a] != 1]
    assert max(found.values()) == 1 and found["after"] == 1


@pytest.mark.slow
def test_two_servers_on_one_postgres_keep_one_chain(
    pg_url: str, tmp_path: Path, key: SigningKey
) -> None:
    with Ledger.open(pg_url, key=key, create=True) as ledger:
        ledger.init("t")
    one, base1 = _server(pg_url, key, tmp_path)
    two, base2 = _server(pg_url, key, tmp_path)
    acked: list[str] = []

    async def both() -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_hammer(b, 16, t, acked, stop))
                 for b, t in ((base1, "one"), (base2, "two"))]  # fmt: skip
        while len(acked) < 300:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.gather(*tasks)

    try:
        asyncio.run(both())
    finally:
        for p in (one, two):
            p.kill()
            p.wait()
    with Ledger.open(pg_url) as ledger:
        found = _forked(ledger)
        report = ledger.verify()
    assert report.ok, report.to_dict()
    assert all(found[a] == 1 for a in acked)
    assert {a.split("-")[0] for a in found} == {"one", "two"}
