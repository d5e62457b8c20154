"""Fixtures: an initialised SQLite ledger served on a free port of 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from http_server import DictTokens, running
from kei.app.ledger.ledger import Ledger
from kei.domain.log.keys import SigningKey


@pytest.fixture
def ledger_url(tmp_path: Path, make_ledger: Callable[[str], Ledger]) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    make_ledger(url)
    return url


@pytest.fixture
def tokens() -> DictTokens:
    return DictTokens()


@pytest.fixture
def base(ledger_url: str, key: SigningKey, tmp_path: Path, tokens: DictTokens) -> Iterator[str]:
    with running(ledger_url, key, tmp_path, tokens=tokens) as url:
        yield url


@pytest.fixture
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=30) as c:
        yield c
