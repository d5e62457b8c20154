"""``kei serve`` throughput and latency: single-event POSTs under 1, 16 and 64 clients.

The server runs in its own process (uvicorn, one worker) on a fresh SQLite ledger
(synchronous=FULL, as the CLI); this process drives it with N concurrent keep-alive
httpx clients, each sending one request at a time for ``--seconds``:

- appends: ``POST /v1/agents/{id}/fork`` (one event each, a new agent per request;
  group-committed by the server), requests/s and p50/p99 latency;
- the trivial authenticated GET, ``GET /v1/token`` (the token check, no ledger), at 64
  clients: the rate the appends are held against (target: appends >= 0.5 x it);
- ``Ledger.append`` in batches of 100 events, in process: the store's own rate;
- SSE delivery: one client follows ``/v1/events/stream`` while another appends an event
  every 20 ms; latency = arrival on the stream - the POST's acknowledgement (p99
  target <= 100 ms).

The clients share the machine's cores with the server: on 2 vCPUs the figures are the
server's under a load generator, not its ceiling.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from common import Figure, kei_ledger, new_events, parse_args, report, scratch_dir, timed
from kei.domain.log.keys import SigningKey

TOKEN = "bench-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
SEED = b"\x0b" * 32

SERVER = r"""
import sys
from pathlib import Path
import uvicorn
from kei.adapters.files.catalog import load_catalog
from kei.adapters.http.app import build_app
from kei.adapters.http.backend import Store
from kei.adapters.http.guard import RateLimit
from kei.domain.log.keys import SigningKey
from kei.domain.tokens.grant import Denied, Grant

url, seed, home, port = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3], int(sys.argv[4])
GRANT = Grant(token_id="b", name="bench", scope="admin", key_id=None, expires_us=None)

class One:
    def authenticate(self, bearer, now_us):
        return GRANT if bearer == "bench-token" else Denied(reason="unknown")

key = SigningKey(seed, name="bench")
store = Store(url=url, key=key, seal_key=b"s" * 32, catalog=load_catalog(Path(home)))
app = build_app(store, One(), rate=RateLimit(rate=0))
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start(url: str, home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, url, SEED.hex(), str(home), str(port)])
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the bench server did not start")


class _Conn:
    """One keep-alive HTTP/1.1 connection, requests one at a time: a load generator
    much lighter than httpx, so the clients leave the cores to the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, base: str) -> _Conn:
        host, port = base.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def request(self, method: str, path: str, body: bytes = b"") -> int:
        head = (f"{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])

    def close(self) -> None:
        self.writer.close()


async def _load(base: str, clients: int, seconds: float, post: bool, tag: str) -> list[float]:
    """Each client sends one request at a time until ``seconds`` pass; the latencies."""
    latencies: list[float] = []
    conns = [await _Conn.open(base) for _ in range(clients)]
    end = time.perf_counter() + seconds

    async def one(c: _Conn, n: int) -> None:
        i = 0
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            if post:
                status = await c.request(
                    "POST", f"/v1/agents/{tag}-{n}-{i}/fork", b'{"branch":"b"}'
                )
            else:
                status = await c.request("GET", "/v1/token")
            if status not in (200, 201):
                raise RuntimeError(f"status {status}")
            latencies.append(time.perf_counter() - t0)
            i += 1

    try:
        await asyncio.gather(*(one(c, n) for n, c in enumerate(conns)))
    finally:
        for c in conns:
            c.close()
    return latencies


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _sse(base: str, count: int) -> list[float]:
    """Latency from each POST's acknowledgement to its event on the live stream."""
    acked: dict[int, float] = {}
    arrived: dict[int, float] = {}
    async with httpx.AsyncClient(base_url=base, headers=HEADERS, timeout=60) as c:
        start = (await c.post("/v1/agents/sse-start/fork", json={"branch": "b"})).json()["at"]

    async def follow() -> None:
        async with (
            httpx.AsyncClient(base_url=base, headers=HEADERS, timeout=60) as c,
            c.stream("GET", "/v1/events/stream", headers={"Last-Event-ID": str(start)}) as r,
        ):
            async for line in r.aiter_lines():
                if line.startswith("id: "):
                    arrived[int(line[4:])] = time.perf_counter()
                    if len(arrived) >= count:
                        return

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.5)
    async with httpx.AsyncClient(base_url=base, headers=HEADERS, timeout=60) as c:
        for i in range(count):
            r = await c.post(f"/v1/agents/sse-{i}/fork", json={"branch": "b"})
            acked[r.json()["at"]] = time.perf_counter()
            await asyncio.sleep(0.02)
    await asyncio.wait_for(follower, 30)
    return [max(0.0, arrived[p] - t) for p, t in acked.items() if p in arrived]


def _batch_rate(path: Path, events: int) -> float:
    ledger = kei_ledger(f"sqlite:///{path / 'batch.db'}", SigningKey(SEED))
    evs = new_events(events)
    try:
        return timed(
            lambda: sum(len(ledger.append(evs[i : i + 100])) for i in range(0, events, 100))
        )
    finally:
        ledger.close()


def main() -> None:
    args = parse_args(__doc__ or "", 20_000, seconds={"type": float, "default": 5.0})
    figures: list[Figure] = []
    with scratch_dir("serve") as home:
        url = f"sqlite:///{home / 'ledger.db'}"
        kei_ledger(url, SigningKey(SEED, name="bench")).close()
        proc, base = _start(url, home)
        try:
            get = asyncio.run(_load(base, 64, args.seconds, False, "get"))
            get_rate = len(get) / args.seconds
            figures.append(Figure("serve", "GET /v1/token, 64 clients", get_rate, unit="req/s"))
            post_rates: dict[int, float] = {}
            for clients in (1, 16, 64):
                lat = asyncio.run(_load(base, clients, args.seconds, True, f"c{clients}"))
                post_rates[clients] = len(lat) / args.seconds
                raw = get_rate if clients == 64 else None
                figures.append(Figure("serve", f"POST fork, {clients} clients", post_rates[clients],
                                      raw=raw, target=0.5 if raw else None, unit="req/s"))  # fmt: skip
                p99 = _pct(lat, 0.99) * 1000
                target = 50.0 if clients == 16 else None
                figures.append(Figure("serve", f"POST fork p99, {clients} clients", p99,
                                      target=target, unit="ms", higher=False,
                                      note=f"p50 {_pct(lat, 0.5) * 1000:.1f} ms"))  # fmt: skip
            sse = asyncio.run(_sse(base, 200))
            figures.append(Figure("serve", "SSE delivery p99", _pct(sse, 0.99) * 1000,
                                  target=100.0, unit="ms", higher=False,
                                  note=f"p50 {statistics.median(sse) * 1000:.1f} ms, {len(sse)} events"))  # fmt: skip
        finally:
            proc.terminate()
            proc.wait()
        figures.append(
            Figure("serve", "Ledger.append, batches of 100", _batch_rate(home, args.events))
        )
    report(figures, args.json)


if __name__ == "__main__":
    main()
