"""Two-core signing gives the same bytes as signing here, and survives a dead helper."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from kei import Ledger, NewEvent, SigningKey
from kei.adapters.workers.parallel_signer import MIN_PARALLEL, ParallelSigner
from kei.domain import events


def test_signatures_equal_local_ones(key: SigningKey) -> None:
    messages = [f"message {i}".encode() for i in range(MIN_PARALLEL * 2 + 1)]
    signer = ParallelSigner(key)
    try:
        assert signer.sign_many(messages) == key.sign_many(messages)
        assert signer._process is not None and signer._process.is_alive()
    finally:
        signer.close()
    assert signer._process is None


def test_small_batches_never_start_the_helper(key: SigningKey) -> None:
    signer = ParallelSigner(key)
    assert signer.sign_many([b"a", b"b"]) == key.sign_many([b"a", b"b"])
    assert signer._process is None


def test_a_killed_helper_falls_back_to_local_signing(key: SigningKey) -> None:
    messages = [bytes([i]) * 40 for i in range(MIN_PARALLEL)]
    signer = ParallelSigner(key)
    try:
        signer.sign_many(messages)
        assert signer._process is not None and signer._process.pid is not None
        os.kill(signer._process.pid, signal.SIGKILL)
        signer._process.join(5)
        assert signer.sign_many(messages) == key.sign_many(messages)
        assert signer._broken
    finally:
        signer.close()


def test_ledger_with_parallel_signing_verifies(
    store_url: str, make_ledger: Callable[[str], Ledger], key: SigningKey
) -> None:
    make_ledger(store_url)
    with Ledger.open(store_url, key=key, parallel_signing=True) as ledger:
        batch = [NewEvent(f"a{i % 7}", events.AgentMerged(agent_id=f"a{i}")) for i in range(100)]
        ledger.append(batch)
        ledger.append(batch[:3])
        assert ledger.verify().ok
        assert ledger.store.count() == 104


def test_batches_are_signed_here_until_the_helper_is_ready(key: SigningKey) -> None:
    messages = [f"m{i}".encode() for i in range(MIN_PARALLEL * 2)]
    signer = ParallelSigner(key)
    try:
        assert signer.sign_many(messages) == key.sign_many(messages)  # started, not awaited
        assert signer._process is not None and not signer._ready_yet
        for _ in range(600):  # the helper answers once it has started
            if signer._ready():
                break
            signer._process.join(0.05)
        assert signer._ready_yet and not signer._broken
        assert signer.sign_many(messages) == key.sign_many(messages)
    finally:
        signer.close()


@pytest.mark.parametrize(
    ("cores", "load", "spare"),
    [({0, 1}, 0.3, True), ({0, 1}, 1.5, True), ({0, 1}, 1.6, False), ({0}, 0.0, False)],
)
def test_a_spare_core_needs_two_cores_and_a_light_load(
    cores: set[int], load: float, spare: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kei.adapters.workers import processes

    monkeypatch.setattr(processes.os, "sched_getaffinity", lambda _pid: cores)
    monkeypatch.setattr(processes.os, "getloadavg", lambda: (load, load, load))
    assert processes.spare_core() is spare
