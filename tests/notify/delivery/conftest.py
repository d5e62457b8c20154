"""Fixtures of the delivery tests: a real fake provider, a channel posting to it, a
ledger (SQLite file or PostgreSQL database) and the notify service over them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from delivery_fakes import FakeProvider, PostChannel

from kei.app.ledger.ledger import Ledger
from kei.app.notify.config import NotifyConfig, parse_config
from kei.app.notify.service import NotifyService

FAIL_RULE = {
    "id": "agent-failed",
    "on": "agent.failed",
    "channel": "chat",
    "severity": "error",
    "template": {"subject": "Agent {agent_id} failed", "body": "{reason}"},
}


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as p:
        yield p


@pytest.fixture
def chat(provider: FakeProvider) -> Iterator[PostChannel]:
    channel = PostChannel("chat", provider.url, timeout_s=1.0)
    yield channel
    channel.close()


@pytest.fixture
def ledger(store_url: str, make_ledger: Callable[[str], Ledger]) -> Ledger:
    return make_ledger(store_url)


Make = Callable[..., NotifyService]


@pytest.fixture
def make_service(ledger: Ledger, chat: PostChannel) -> Iterator[Make]:
    """``make(config=..., channels=..., clock=...)``: a service, closed afterwards."""
    made: list[NotifyService] = []

    def make(
        config: dict[str, Any] | None = None,
        channels: dict[str, Any] | None = None,
        target: Ledger | None = None,
        **options: Any,
    ) -> NotifyService:
        found = channels if channels is not None else {"chat": chat}
        parsed = parse_config(config or {}, "notify.toml", found)
        service = NotifyService(target or ledger, found, parsed, **options)
        made.append(service)
        return service

    yield make
    for s in made:
        s.close()


def config_with(*rules: dict[str, Any], **tables: Any) -> dict[str, Any]:
    return {"rules": list(rules), **tables}


def no_config() -> NotifyConfig:
    return NotifyConfig(source="notify.toml")
