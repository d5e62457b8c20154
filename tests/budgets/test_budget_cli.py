"""``kei budget set|clear|status|check`` end to end on SQLite and PostgreSQL, and the check
every cost write runs: thresholds once each, several at one jump, a new limit as a new
budget, every kind of scope, UTC periods and their rollover, unpriced calls, and a check
that fails without failing the cost."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from budgets_helpers import Kei, answer, crossings, events, record_at, stream
from claude_transcripts import CWD, assistant, write
from cli_helpers import run_sql
from kei.adapters.files.keyfile import load_key
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.events import ThresholdCrossed

pytest_plugins = ["budgets_fixtures"]  # kei_home, kei_env and kei

DAY1 = int(datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp()) * 1_000_000
LAST_US_OF_DAY1 = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp()) * 1_000_000 - 1
DAY2 = LAST_US_OF_DAY1 + 1


def cost(kei: Kei, agent: str, cents: int, *extra: str) -> dict[str, object]:
    return answer(kei("cost", "record", agent, "--provider", "p", "--model", "m",
                      "--cents", str(cents), "--json", *extra))  # fmt: skip


def test_set_status_clear(kei: Kei, store_url: str) -> None:
    done = answer(kei("budget", "set", "tree:root", "10", "--period", "month", "--json"))
    assert done["event"] == "budgets:1" and done["changed"] is True
    assert done["limit_micro_cents"] == 1_000_000_000 and done["limit_usd"] == "10.00"
    again = answer(kei("budget", "set", "tree:root", "10.00", "--period", "month", "--json"))
    assert again["event"] is None and again["budget"] == "budgets:1"
    assert [t for _, t, _ in stream(store_url, "budgets")] == ["budget.set"]
    status = answer(kei("budget", "status", "--json"))["budgets"]
    assert [(s["scope"], s["period"], s["spent_micro_cents"], s["crossed"]) for s in status] == [
        ("tree:root", "month", 0, [])
    ]
    kei("budget", "set", "all", "5")  # default period: total
    text = kei("budget", "status").stdout.splitlines()
    assert text[0] == "scope\tperiod\tkey\tspent\tlimit\tpercent\tremaining\tforecast\tcrossed"
    assert text[2] == "all\ttotal\ttotal\t$0.00\t$5.00\t0.0%\t$5.00\t-\t-"
    cleared = answer(kei("budget", "clear", "all", "--json"))
    assert cleared["events"] == ["budgets:3"]
    before = len(events(store_url))
    refused = kei("budget", "clear", "all", code=2)
    assert refused.stderr.splitlines()[0] == "kei: error: no budget on all"
    assert len(events(store_url)) == before
    kei("budget", "clear", "tree:root", "--period", "month")
    assert "no budgets set" in kei("budget", "status").stderr


def test_thresholds_cross_once_each_and_a_jump_crosses_all_in_order(
    kei: Kei, store_url: str
) -> None:
    kei("budget", "set", "all", "1", "--period", "day")
    assert cost(kei, "kid", 40)["budget_crossings"] == []
    jumped = cost(kei, "other", 80)["budget_crossings"]  # 40 % -> 120 %
    assert [c["threshold_percent"] for c in jumped] == [50, 80, 100]
    assert [c["spent_micro_cents"] for c in jumped] == [120_000_000] * 3
    key = jumped[0]["period_key"]
    assert [c["event"] for c in jumped] == [f"budget/1/{key}:{v}" for v in (1, 2, 3)]
    assert cost(kei, "kid", 500)["budget_crossings"] == []  # nothing left to cross
    checked = kei("budget", "check", "--json")
    assert answer(checked) == {"budgets": 1, "crossings": []}
    assert crossings(store_url) == [(f"budget/1/{key}", v, t) for v, t in
                                    ((1, 50), (2, 80), (3, 100))]  # fmt: skip
    line = kei("cost", "record", "kid", "--provider", "p", "--model", "m", "--cents", "1")
    assert "crossed" not in line.stderr


def test_a_new_limit_is_a_new_budget_with_its_own_crossings(kei: Kei, store_url: str) -> None:
    kei("budget", "set", "tree:root", "10")
    cost(kei, "kid", 600)  # 60 % of $10
    raised = answer(kei("budget", "set", "tree:root", "20", "--json"))
    assert raised["event"] == "budgets:2" and raised["crossings"] == []  # 30 % of $20
    assert [c["threshold_percent"] for c in cost(kei, "grandkid", 400)["budget_crossings"]] == [
        50
    ]  # $10 of $20: budget 2's own 50 %
    lowered = kei("budget", "set", "tree:root", "10", "--json")  # $10 of $10
    assert [c["threshold_percent"] for c in answer(lowered)["crossings"]] == [50, 80, 100]
    assert "crossed 100%: $10.00 of $10.00 in total (budget/3/total:3)" in lowered.stderr
    assert [(s, v, t) for s, v, t in crossings(store_url)] == [
        ("budget/1/total", 1, 50), ("budget/2/total", 1, 50),
        ("budget/3/total", 1, 50), ("budget/3/total", 2, 80), ("budget/3/total", 3, 100),
    ]  # fmt: skip
    status = answer(kei("budget", "status", "--json"))["budgets"][0]
    assert status["budget"] == "budgets:3" and status["crossed"] == [50, 80, 100]
    assert status["remaining_micro_cents"] == 0 and status["forecast_micro_cents"] is None


def test_each_scope_counts_its_own_costs(kei: Kei, store_url: str, kei_home: Path) -> None:
    for scope in ("tree:kid", "tree:other", "all", "session:s1", "project:/home/dev/p"):
        kei("budget", "set", scope, "1")
    record_at(store_url, kei_home, "root", 10_000_000, DAY1, session="s1", cwd="/home/dev/p")
    record_at(store_url, kei_home, "grandkid", 20_000_000, DAY1, session="s2", cwd="/home/dev/p")
    record_at(store_url, kei_home, "other", 40_000_000, DAY1)
    spent = {s["scope"]: s["spent_micro_cents"]
             for s in answer(kei("budget", "status", "--json"))["budgets"]}  # fmt: skip
    assert spent == {"tree:kid": 20_000_000, "tree:other": 40_000_000, "all": 70_000_000,
                     "session:s1": 10_000_000, "project:/home/dev/p": 30_000_000}  # fmt: skip
    kei("agent", "fork", "late", "feat/late", "--parent", "kid")  # below kid from now on
    record_at(store_url, kei_home, "late", 1_000_000, DAY1)
    after = answer(kei("budget", "status", "--json"))["budgets"][0]
    assert after["scope"] == "tree:kid" and after["spent_micro_cents"] == 21_000_000
    assert kei("budget", "set", "tree:ghost", "1", code=2).stderr.startswith(
        "kei: error: no agent with id ghost"
    )


def test_periods_are_utc_days_and_roll_over(kei: Kei, store_url: str, kei_home: Path) -> None:
    kei("budget", "set", "all", "1", "--period", "day")
    kei("budget", "set", "all", "2", "--period", "month")
    record_at(store_url, kei_home, "root", 60_000_000, LAST_US_OF_DAY1)
    record_at(store_url, kei_home, "root", 60_000_000, DAY2)
    day1 = answer(kei("budget", "status", "--at", "2026-03-01T12:00:00Z", "--json"))["budgets"]
    assert [(s["period_key"], s["spent_micro_cents"]) for s in day1] == [
        ("2026-03-01", 60_000_000), ("2026-03", 120_000_000)
    ]  # fmt: skip
    assert day1[0]["started_at"] == "2026-03-01T00:00:00.000000Z"
    assert day1[0]["ended_at"] == "2026-03-02T00:00:00.000000Z"
    assert day1[0]["unrecorded"] == [50] and day1[1]["unrecorded"] == [50]
    # the forecast at noon: what was spent by noon (nothing) scaled, but never below the day's
    assert day1[0]["forecast_micro_cents"] == 60_000_000
    first = answer(kei("budget", "check", "--at", "2026-03-01T12:00:00Z", "--json"))
    assert [(c["event"], c["threshold_percent"]) for c in first["crossings"]] == [
        ("budget/1/2026-03-01:1", 50), ("budget/2/2026-03:1", 50)
    ]  # fmt: skip
    second = answer(kei("budget", "check", "--at", "2026-03-02", "--json"))
    assert [c["event"] for c in second["crossings"]] == ["budget/1/2026-03-02:1"]
    assert answer(kei("budget", "check", "--at", "2026-03-02", "--json"))["crossings"] == []
    april = answer(kei("budget", "status", "--at", "2026-04-30T23:59:59Z", "--json"))["budgets"]
    assert [(s["period_key"], s["spent_micro_cents"]) for s in april] == [
        ("2026-04-30", 0), ("2026-04", 0)
    ]  # fmt: skip
    assert kei("budget", "status", "--at", "tomorrow", code=2).stderr.startswith(
        "kei: error: --at 'tomorrow' is not a date"
    )


def test_unpriced_calls_count_as_zero_and_are_named(
    kei: Kei, store_url: str, kei_home: Path
) -> None:
    kei("budget", "set", "all", "1", "--period", "month")
    kei("cost", "record", "kid", "--provider", "acme", "--model", "house-llm",
        "--tokens-in", "5", "--tokens-out", "5")  # fmt: skip
    status = kei("budget", "status", "--json")
    found = answer(status)["budgets"][0]
    assert found["spent_micro_cents"] == 0 and found["unpriced_events"] == 1
    assert found["events"] == 1
    assert "1 unpriced call(s) counted as $0.00" in kei("budget", "status").stderr


def test_no_budget_means_no_budget_event(kei: Kei, store_url: str) -> None:
    before = len(events(store_url))
    assert cost(kei, "kid", 10**6)["budget_crossings"] == []
    kei("budget", "check")
    after = events(store_url)
    assert len(after) == before + 1 and not [e for e in after if e.type.startswith("budget")]


def test_a_failed_check_never_fails_the_cost(kei: Kei, store_url: str) -> None:
    kei("budget", "set", "all", "1")
    _flip_a_byte_of(store_url, "budgets")  # the budget's row no longer matches its hash
    done = kei("cost", "record", "kid", "--provider", "p", "--model", "m", "--cents", "90")
    assert "budgets not checked" in done.stderr and "kei budget check" in done.stderr
    assert any(e.type == "cost.recorded" for e in events(store_url))
    refused = kei("budget", "check", code=1)
    assert "budgets" in refused.stderr.splitlines()[0]
    assert crossings(store_url) == []


def _flip_a_byte_of(url: str, name: str) -> None:
    (state,) = run_sql(url, "SELECT state FROM kei_events WHERE originator_id = ?", (name,))[0]
    state = bytes(state)
    changed = state[:-1] + bytes([state[-1] ^ 1])
    run_sql(url, "UPDATE kei_events SET state = ? WHERE originator_id = ?", (changed, name))


def test_an_import_checks_once_after_its_costs(kei: Kei, store_url: str, tmp_path: Path) -> None:
    """Ten billed messages of one session: the crossings come after every cost of the
    run, measured at its whole spend (one check per run, not one per line)."""
    lines = [assistant("sess-1", f"msg_{i}", f"req_{i}", f"2026-03-01T10:{i:02d}:00.000Z",
                       tokens_in=100_000, tokens_out=10_000) for i in range(10)]  # fmt: skip
    write(tmp_path / "projects" / "-home-dev-proj" / "sess-1.jsonl", lines)
    kei("budget", "set", f"project:{CWD}", "1")
    kei("budget", "set", "session:sess-1", "100")
    done = kei("import", "claude-code", str(tmp_path / "projects"))
    log = events(store_url)
    costs = [e.position for e in log if e.type == "cost.recorded"]
    crossed = [e for e in log if e.type == "budget.threshold.crossed"]
    assert len(costs) == 10 and [e.payload_data()["threshold_percent"] for e in crossed] == [
        50, 80, 100
    ]  # fmt: skip
    assert min(e.position for e in crossed) > max(costs)
    spent = {e.payload_data()["spent_micro_cents"] for e in crossed}
    assert spent == {answer(kei("budget", "status", "--json"))["budgets"][0]["spent_micro_cents"]}
    assert done.stderr.count("crossed") == 3
    again = kei("import", "claude-code", str(tmp_path / "projects"))  # appends nothing
    assert "crossed" not in again.stderr and len(events(store_url)) == len(log)


def test_a_write_that_adds_nothing_skips_the_check(
    kei: Kei, store_url: str, kei_home: Path
) -> None:
    kei("budget", "set", "all", "1")
    record_at(store_url, kei_home, "kid", 60_000_000, DAY1)  # no check ran: 50 % unrecorded
    assert cost(kei, "kid", 0)["budget_crossings"] == []
    assert crossings(store_url) == []
    assert [c["threshold_percent"] for c in cost(kei, "kid", 1)["budget_crossings"]] == [50]


def test_a_crossings_stream_kei_did_not_write_is_left_alone(
    kei: Kei, store_url: str, kei_home: Path
) -> None:
    """Another writer put 100 % at version 1: appending 80 and 100 after it would repeat
    one and skip another, so kei appends nothing there and says so."""
    kei("budget", "set", "all", "1")
    forged = ThresholdCrossed(scope="all", period="total", period_key="total",
                              threshold_percent=100, spent_micro_cents=1, limit_micro_cents=1,
                              budget_version=1)  # fmt: skip
    with Ledger.open(store_url, key=load_key(kei_home / "keys" / "default.key")) as ledger:
        ledger.append([NewEvent("budget/1/total", forged, 0)])
    done = kei("cost", "record", "kid", "--provider", "p", "--model", "m", "--cents", "90")
    assert "budgets not checked: budget/1/total holds [100], not the thresholds" in done.stderr
    refused = kei("budget", "check", code=2)
    assert refused.stderr.startswith("kei: error: budget/1/total holds [100]")
    assert crossings(store_url) == [("budget/1/total", 1, 100)]


def test_status_names_the_calls_priced_at_standard_rates_for_their_speed(kei: Kei) -> None:
    kei("budget", "set", "all", "100")
    for model in ("sonnet", "sonnet", "opus"):
        kei("cost", "record", "root", "--provider", "anthropic", "--model", model,
            "--tokens-in", "100", "--tokens-out", "1000", "--speed", "fast")  # fmt: skip
    status = kei("budget", "status", "--json")
    (budget,) = answer(status)["budgets"]
    assert budget["speed_unpriced_events"] == 2
    assert budget["speed_unpriced_models"] == {"claude-sonnet-4-6": 2}
    text = kei("budget", "status")
    assert "all in total: 2 call(s) priced at standard rates" in text.stderr
    assert "claude-sonnet-4-6 (2)" in text.stderr
