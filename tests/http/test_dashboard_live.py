"""The dashboard on the real server (not the canned API): in Debian's Chromium, the page
reads the real answers, an event appended through the API shows in the live list
within a second, and the header turns to a finding once the store is tampered with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_dashboard_chromium import Page, _need_chromium

from cli_helpers import run_sql
from http_server import READ, WRITE, bearer, running
from kei.adapters.http.dashboard import routes
from kei.domain.log.keys import SigningKey


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = _need_chromium()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=__import__("test_dashboard_chromium").CHROMIUM)
        yield b
        b.close()


@pytest.fixture
def live(ledger_url: str, key: SigningKey, tmp_path: Path) -> Iterator[str]:
    with running(ledger_url, key, tmp_path, extra_routes=routes(), reverify=0.5) as url:
        yield url


def test_the_page_follows_the_real_server(browser: Any, live: str, ledger_url: str) -> None:
    from playwright.sync_api import expect

    with httpx.Client(base_url=live, headers=bearer(WRITE)) as c:
        assert c.post("/v1/agents/lead/fork", json={"branch": "main"}).status_code == 201
        body = {"agent_id": "lead", "provider": "anthropic", "model": "claude-sonnet-4-6",
                "micro_cents": 2_178_000}  # fmt: skip
        assert c.post("/v1/costs", json=body).status_code == 201
    tab = Page(browser, live)
    tab.sign_in(READ)
    page = tab.page
    expect(page.locator("#verify")).to_have_class("verify ok")
    expect(page.locator("#verify")).to_contain_text("Log verified up to position 3")
    expect(page.locator("#stream-state")).to_have_text("Live: following the log.")
    expect(page.locator("#tree")).to_contain_text("lead")
    expect(page.locator("#events-body tr")).to_have_count(3)
    with httpx.Client(base_url=live, headers=bearer(WRITE)) as c:
        ack = c.post("/v1/agents/kid/fork", json={"branch": "b", "parent": "lead"}).json()
    row = page.locator(f'#events-body tr[data-position="{ack["at"]}"]')
    expect(row).to_be_visible(timeout=1000)
    expect(page.locator("#events-body tr.unlinked")).to_have_count(0)
    (state,) = run_sql(ledger_url, "SELECT state FROM kei_events WHERE rowid = 2")[0]
    flipped = bytes(state)[:-2] + bytes([bytes(state)[-2] ^ 1]) + bytes(state)[-1:]
    run_sql(ledger_url, "UPDATE kei_events SET state = ? WHERE rowid = 2", (flipped,))
    header = page.locator("#verify")  # a verified row changed: the next whole pass sees it
    expect(header).to_have_class("verify finding", timeout=15_000)
    expect(header.locator(".finding").first).to_contain_text("content-changed at position 2")
    assert tab.errors == []
    tab.context.close()
