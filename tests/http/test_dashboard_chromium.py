"""The dashboard in real headless Chromium (Debian's ``chromium``, driven by Playwright
with ``executable_path``; never a downloaded browser) against the canned ``/v1`` of
tests/helpers/dashboard_fixture.py.

Without Chromium or Playwright these tests skip with a reason naming Chromium; with
``KEI_REQUIRE_CHROMIUM=1`` (``.ci/run`` sets it) such a skip fails the run
(tests/conftest.py's REQUIRED_SKIPS). ``KEI_DASHBOARD_SCREENSHOT=path`` saves a
screenshot of the loaded page there (the one in docs/dashboard.png was taken so);
``KEI_CHROMIUM=path`` names the browser when it is not Debian's ``chromium`` on PATH.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard_fixture import AGENTS, FINDING, SERIES, TOKEN, CannedApi, serving

# KEI_CHROMIUM names another build of Chromium (a distribution's, never a download)
CHROMIUM = os.environ.get("KEI_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT_ENV = "KEI_DASHBOARD_SCREENSHOT"


def _need_chromium() -> Any:
    """The sync Playwright module, or a skip whose reason names Chromium."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(
            "Chromium tests need Debian's chromium (apt-get install chromium; .ci/run does)"
        )
    try:
        from playwright import sync_api
    except ImportError:
        pytest.skip("Chromium tests need playwright (pip install -e '.[test]')")
    return sync_api


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = _need_chromium()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


@pytest.fixture
def api() -> CannedApi:
    return CannedApi()


@pytest.fixture
def base_url(api: CannedApi) -> Iterator[str]:
    with serving(api.app()) as url:
        yield url
        api.closing = True


class Page:
    """A fresh tab (its own sessionStorage) with the console errors it logged."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(base_url + "/")

    def sign_in(self, token: str = TOKEN) -> None:
        self.page.get_by_label("Token", exact=True).fill(token)
        self.page.get_by_label("Token", exact=True).press("Enter")


@pytest.fixture
def tab(browser: Any, base_url: str) -> Iterator[Page]:
    t = Page(browser, base_url)
    yield t
    t.context.close()


@pytest.fixture
def board(tab: Page) -> Page:
    """A tab signed in, with the board drawn and the stream live."""
    from playwright.sync_api import expect

    tab.sign_in()
    expect(tab.page.locator("#verify")).to_have_class("verify ok")
    expect(tab.page.locator("#stream-state")).to_have_text("Live: following the log.")
    expect(tab.page.locator("#events-body tr")).to_have_count(42)
    return tab


def test_page_and_assets_are_served_with_a_strict_policy(base_url: str) -> None:
    page = httpx.get(base_url + "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    for name in ("app.js", "sse.js", "chart.js", "style.css"):
        asset = httpx.get(f"{base_url}/assets/{name}")
        assert asset.status_code == 200, name
    assert "javascript" in httpx.get(base_url + "/assets/app.js").headers["content-type"]


def test_asks_for_a_token_once_and_sends_it_only_in_a_header(
    browser: Any, tab: Page, api: CannedApi, base_url: str
) -> None:
    from playwright.sync_api import expect

    expect(tab.page.locator("#login")).to_be_visible()
    expect(tab.page.locator("#board")).to_be_hidden()
    tab.sign_in()
    expect(tab.page.locator("#verify")).to_contain_text("Log verified up to position 42 at")
    expect(tab.page.locator("#verify time")).to_have_text("2026-12-08 09:00:00 UTC")
    tab.page.reload()  # kept for the tab: no second prompt
    expect(tab.page.locator("#board")).to_be_visible()
    expect(tab.page.locator("#login")).to_be_hidden()
    api_calls = [s for s in api.seen if s.path.startswith("/v1/")]
    assert {s.path for s in api_calls} >= {
        "/v1/verify", "/v1/agents", "/v1/costs/series", "/v1/budgets", "/v1/posteriors",
        "/v1/events/stream",
    }  # fmt: skip
    assert all(s.authorization == f"Bearer {TOKEN}" for s in api_calls)
    assert not any(TOKEN in s.query for s in api.seen)
    assert tab.page.evaluate("localStorage.length") == 0
    assert tab.errors == []


def test_a_refused_token_brings_the_prompt_back(tab: Page) -> None:
    from playwright.sync_api import expect

    tab.sign_in("kei_read_wrong")
    expect(tab.page.locator("#login-msg")).to_contain_text("The server refused the token")
    expect(tab.page.locator("#login-msg")).to_contain_text("kei tokens create")
    expect(tab.page.locator("#board")).to_be_hidden()
    assert tab.page.evaluate("sessionStorage.length") == 0


def test_the_token_is_forgotten_from_the_keyboard(board: Page) -> None:
    from playwright.sync_api import expect

    expect(board.page.locator("main")).to_be_focused()  # not the field that was hidden
    board.page.keyboard.press("Tab")  # the first node of the tree
    expect(board.page.locator('#tree li[data-agent="lead"] > details > summary')).to_be_focused()
    board.page.get_by_role("button", name="Forget token").focus()
    board.page.keyboard.press("Enter")
    expect(board.page.locator("#login")).to_be_visible()
    expect(board.page.get_by_label("Token", exact=True)).to_be_focused()
    assert board.page.evaluate("sessionStorage.length") == 0
    assert board.errors == []


def _node(board: Page, agent_id: str) -> Any:
    return board.page.locator(f'#tree li[data-agent="{agent_id}"]')


def test_the_tree_shows_each_agent_under_its_parent_with_status_and_cost(board: Page) -> None:
    from playwright.sync_api import expect

    tree = board.page.locator("#tree")
    expect(tree.locator("li[data-agent]")).to_have_count(len(AGENTS))
    expected = {  # agent: (status, own cost, with its descendants or None)
        "lead": ("running", "$1.25", "$1.6759 with 2 below"),
        "fix-auth": ("done", "$0.4178", "$0.4238 with 1 below"),
        "write-tests": ("failed", "$0.0021", None),
        "lint": ("merged", "$0.006", None),
        "solo": ("done", "$0.00", None),
    }
    for agent_id, (status, own, subtree) in expected.items():
        line = _node(board, agent_id).locator(":scope > details > summary, :scope > .leaf")
        expect(line.locator(".status")).to_have_text(status)
        expect(line.locator(".status")).to_have_class(f"status status-{status}")
        expect(line.locator(".cost").first).to_have_text(own)
        if subtree:
            expect(line.locator(".cost.subtree")).to_have_text(subtree)
    assert tree.locator(':scope > ul > li').evaluate_all(
        "lis => lis.map(li => li.dataset.agent)") == ["lead", "solo"]  # fmt: skip
    expect(_node(board, "fix-auth").locator("li[data-agent=lint]")).to_have_count(1)
    colours = {
        s: board.page.locator(f"#tree .status-{s}").first.evaluate("e => getComputedStyle(e).color")
        for s in ("running", "done", "failed", "merged")
    }  # fmt: skip
    assert len(set(colours.values())) == 4


def test_a_node_folds_from_the_keyboard(board: Page) -> None:
    from playwright.sync_api import expect

    lint = _node(board, "lint")
    expect(lint).to_be_visible()
    summary = _node(board, "fix-auth").locator(":scope > details > summary")
    summary.focus()
    board.page.keyboard.press("Enter")
    expect(lint).to_be_hidden()
    board.page.keyboard.press("Enter")
    expect(lint).to_be_visible()


def test_the_chart_has_one_segment_per_day_and_model_with_its_amount(board: Page) -> None:
    from playwright.sync_api import expect

    segments = board.page.locator("#chart svg rect.seg")
    pairs = sum(len(values) for _, values in SERIES)
    expect(segments).to_have_count(pairs)
    titles = segments.evaluate_all("rs => rs.map(r => r.querySelector('title').textContent)")
    assert sorted(titles) == sorted([
        "2026-12-06 · claude-sonnet-4-6: $0.90", "2026-12-06 · gpt-5: $0.125",
        "2026-12-07 · claude-sonnet-4-6: $1.30", "2026-12-07 · claude-haiku-4-5: $0.006",
        "2026-12-07 · gpt-5: $0.40", "2026-12-08 · claude-haiku-4-5: $0.02178",
        "2026-12-08 · claude-sonnet-4-6: $0.55",
    ])  # fmt: skip
    day_totals = board.page.locator("#chart svg text.day title").all_text_contents()
    assert day_totals == ["2026-12-06: $1.025 in all", "2026-12-07: $1.706 in all",
                          "2026-12-08: $0.57178 in all"]  # fmt: skip
    # stacks: each day's segments touch, and the taller day is the taller bar
    heights = board.page.locator("#chart svg g.bar").evaluate_all(
        "gs => gs.map(g => [...g.querySelectorAll('rect')]"
        ".reduce((s, r) => s + r.height.baseVal.value, 0))"
    )
    assert heights[1] > heights[0] > heights[2] > 0
    budgets = board.page.locator("#chart svg g.budget title").all_text_contents()
    assert budgets == [
        "budget daily (all): $2.50/day",
        "budget december (all): $60.00/month ÷ 31 days ≈ $1.94/day",
        "budget app-daily (project:/srv/app): $250.00/day",
    ]
    # a line far above the bars is marked at the top instead of flattening them
    expect(board.page.locator("#chart svg g.budget.off")).to_have_count(1)
    expect(board.page.locator("#chart svg g.budget.off text")).to_contain_text("above the scale")
    expect(board.page.locator("#chart svg g.budget:not(.off) line")).to_have_count(2)
    legend = board.page.locator("#legend li").all_text_contents()
    assert legend[:3] == ["claude-sonnet-4-6", "gpt-5", "claude-haiku-4-5"]
    table = board.page.locator("#cost-table table")
    expect(table.locator("tbody tr")).to_have_count(len(SERIES))
    expect(table.locator("tbody tr").first).to_contain_text("$1.025")


def test_the_chart_stacks_by_agent_on_request(board: Page, api: CannedApi) -> None:
    from playwright.sync_api import expect

    board.page.get_by_label("Stacked by").select_option("agent")
    expect(board.page.locator("#legend li").first).to_have_text("lead")
    expect(board.page.locator("#chart svg rect.seg[data-key=lint]")).to_have_count(2)
    assert any(s.query.endswith("split=agent") for s in api.seen)


def test_budgets_and_posteriors_are_tables_of_the_answers(board: Page) -> None:
    from playwright.sync_api import expect

    rows = board.page.locator("#budget-table tbody tr")
    expect(rows).to_have_count(4)
    cells = [r.locator("td, th").all_text_contents() for r in rows.all()]
    assert cells[0][:6] == ["daily", "all", "2026-12-08", "$0.57178", "$2.50", "$1.71534"]
    assert cells[1][:6] == ["december", "all", "2026-12", "$3.30278", "$60.00", "$20.46"]
    assert cells[2][4] == "$250.00"
    assert cells[1][6] == "5.5%"
    assert cells[3][:6] == ["lead-tree", "tree:lead", "total", "$1.6759", "$5.00", "–"]
    expect(rows.first.locator(".bar")).to_have_attribute(
        "aria-label", "spent 22.87% of the limit, forecast $1.71534"
    )
    groups = board.page.locator("#posterior-table tbody")
    expect(groups).to_have_count(2)
    code_fix = board.page.locator(
        '#posterior-table tbody[data-task-class="code-fix"] tr[data-model]'
    )
    assert code_fix.evaluate_all("rs => rs.map(r => r.dataset.model)") == [
        "claude-sonnet-4-6", "claude-haiku-4-5"]  # fmt: skip
    expect(code_fix.first.locator("td").nth(2)).to_have_text("20")


def test_an_event_pushed_appears_in_the_live_list_within_a_second(
    board: Page, api: CannedApi
) -> None:
    from playwright.sync_api import expect

    pushed = api.push("agent.forked")
    row = board.page.locator(f'#events-body tr[data-position="{pushed["position"]}"]')
    expect(row).to_be_visible(timeout=1000)
    expect(row).to_contain_text("agent.forked")
    expect(board.page.locator("#events-body tr").first).to_have_attribute("data-position", "43")
    expect(board.page.locator("#events-body tr.unlinked")).to_have_count(0)
    assert board.errors == []


def test_the_stream_resumes_after_a_drop_with_last_event_id(board: Page, api: CannedApi) -> None:
    from playwright.sync_api import expect

    api.push()
    expect(board.page.locator('#events-body tr[data-position="43"]')).to_be_visible()
    api.drop_streams()
    expect(board.page.locator("#stream-state")).to_have_text("Connection lost: reconnecting…")
    api.push()
    expect(board.page.locator('#events-body tr[data-position="44"]')).to_be_visible(timeout=10_000)
    expect(board.page.locator("#stream-state")).to_have_text("Live: following the log.")
    streams = [s for s in api.seen if s.path == "/v1/events/stream"]
    assert streams[0].last_event_id is None
    assert streams[-1].last_event_id == "43"
    expect(board.page.locator("#events-body tr")).to_have_count(44)  # none twice
    assert board.errors == []


def test_the_header_turns_into_the_finding_after_verify_changes(
    board: Page, api: CannedApi
) -> None:
    from playwright.sync_api import expect

    api.find(FINDING)
    header = board.page.locator("#verify")
    expect(header).to_have_class("verify finding", timeout=15_000)
    expect(header).to_contain_text("Verification found 1 problem (verified up to position 42)")
    expect(header.locator(".finding")).to_have_text(
        "content-changed at position 17: the stored payload differs from the one that was signed"
    )
    ok = header.evaluate("e => getComputedStyle(e).color")
    assert ok != board.page.locator("#posteriors h2").evaluate("e => getComputedStyle(e).color")
    assert board.errors == []


def test_a_new_log_shows_each_panel_empty(browser: Any) -> None:
    from playwright.sync_api import expect

    api = CannedApi(empty=True)
    with serving(api.app()) as url:
        tab = Page(browser, url)
        tab.sign_in()
        page = tab.page
        expect(page.locator("#verify")).to_contain_text("Log verified up to position 1 at")
        expect(page.locator("#tree")).to_have_text("No agent has been forked yet.")
        expect(page.locator("#chart")).to_have_text("No cost is recorded in this period.")
        expect(page.locator("#budget-table")).to_contain_text("No budget is set")
        expect(page.locator("#posterior-table")).to_contain_text("No routed outcome")
        expect(page.locator("#events-body tr")).to_have_count(1)
        expect(page.locator("#events-body tr")).to_contain_text("ledger.genesis")
        assert tab.errors == []
        tab.context.close()
        api.closing = True


def test_money_and_stream_parsing_are_exact_in_the_browser(board: Page) -> None:
    out = board.page.evaluate("""async () => {
        const m = await import('/assets/money.js');
        const s = await import('/assets/sse.js');
        const got = [];
        const p = new s.SseParser(e => got.push(e));
        for (const c of ['id: 7\\r', '\\nevent: kei.event\\r\\ndata: {"a":', '1}\\r\\n', ': hi\\n',
                         '\\r\\n', 'data: x\\ndata: y\\n\\n']) p.push(c);
        return {
            sum: m.dollars(m.sum(['0.1', '0.2', '1234.5'])),
            negative: m.dollars('-1.50'), tiny: m.dollars('0.00000001'), events: got,
        };
    }""")
    assert out["sum"] == "$1,234.80"
    assert out["negative"] == "−$1.50"
    assert out["tiny"] == "$0.00000001"
    assert out["events"] == [
        {"id": "7", "type": "kei.event", "data": '{"a":1}'},
        {"id": "7", "type": "message", "data": "x\ny"},
    ]


def test_it_follows_the_color_scheme(browser: Any, base_url: str) -> None:
    colours = []
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme)
        page = context.new_page()
        page.goto(base_url + "/")
        colours.append(page.evaluate("getComputedStyle(document.body).backgroundColor"))
        context.close()
    assert colours[0] != colours[1]


def test_screenshot(board: Page, api: CannedApi, tmp_path: Path) -> None:
    """A screenshot of the whole page, into ``$KEI_DASHBOARD_SCREENSHOT`` when that is set
    (docs/dashboard.png was taken so), else into the test's scratch folder."""
    from playwright.sync_api import expect

    target = os.environ.get(SCREENSHOT_ENV) or str(tmp_path / "dashboard.png")
    for type_ in ("agent.forked", "cost.recorded", "agent.completed"):
        api.push(type_)
    expect(board.page.locator("#events-body tr")).to_have_count(45)
    board.page.locator("#chart svg rect.seg").first.wait_for()
    board.page.evaluate("document.activeElement.blur()")
    board.page.wait_for_timeout(1500)  # the arrival highlight fades
    board.page.screenshot(path=str(Path(target).resolve()), full_page=True)
    assert Path(target).stat().st_size > 10_000
