"""``kei events import`` and ``kei replay`` (``kei hibernate import``) check the budgets
after appending, as every cost write does: costs that arrive this way cross their
thresholds once, and a second run (nothing new) appends nothing.

The source log is made so that its costs crossed nothing: the costs are recorded
through the writer without the check (``record_at``), so only the import's check can
append the crossings in the target store.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from budgets_helpers import crossings, record_at
from cli_helpers import cli_env, in_process

NOW_US = time.time_ns() // 1_000


def _source(tmp_path: Path) -> tuple[Path, str]:
    """A home and a SQLite log holding a $10 total budget on everything and $9 of costs
    whose thresholds (50 %, 80 %) were never checked."""
    home, url = tmp_path / "home", f"sqlite:///{tmp_path / 'source.db'}"
    run = in_process(cli_env(home, url))
    run("init")
    run("agent", "fork", "root", "main")
    run("budget", "set", "all", "10")
    record_at(url, home, "root", 4_000_000_00, NOW_US)  # $4
    record_at(url, home, "root", 5_000_000_00, NOW_US)  # $5
    assert crossings(url) == []
    return home, url


def test_events_import_checks_the_budgets_once(tmp_path: Path) -> None:
    home, url = _source(tmp_path)
    dump = tmp_path / "events.jsonl"
    in_process(cli_env(home, url))("events", "export", "--out", str(dump))
    target = f"sqlite:///{tmp_path / 'target.db'}"
    run = in_process(cli_env(home, target))
    done = run("events", "import", str(dump), "--json")
    answer = json.loads(done.stdout)
    assert [c["threshold_percent"] for c in answer["budget_crossings"]] == [50, 80]
    assert "crossed 80%" in done.stderr
    assert [t for _, _, t in crossings(target)] == [50, 80]
    again = json.loads(run("events", "import", str(dump), "--json").stdout)
    assert (again["new"], again["budget_crossings"]) == (0, [])
    assert [t for _, _, t in crossings(target)] == [50, 80]


def test_a_dry_run_import_checks_nothing(tmp_path: Path) -> None:
    home, url = _source(tmp_path)
    dump = tmp_path / "events.jsonl"
    in_process(cli_env(home, url))("events", "export", "--out", str(dump))
    target = f"sqlite:///{tmp_path / 'target.db'}"
    done = in_process(cli_env(home, target))("events", "import", str(dump), "--dry-run", "--json")
    assert json.loads(done.stdout)["budget_crossings"] == []


@pytest.mark.parametrize("command", [("replay",), ("hibernate", "import")])
def test_replay_checks_the_budgets_once(tmp_path: Path, command: tuple[str, ...]) -> None:
    home, url = _source(tmp_path)
    bundle = tmp_path / "log.tar.zst"
    in_process(cli_env(home, url))("hibernate", "export", "--out", str(bundle))
    target = f"sqlite:///{tmp_path / 'replayed.db'}"
    run = in_process(cli_env(home, url))
    done = run(*command, str(bundle), "--db", target, "--json")
    answer = json.loads(done.stdout)
    assert [c["threshold_percent"] for c in answer["budget_crossings"]] == [50, 80]
    assert [t for _, _, t in crossings(target)] == [50, 80]
    assert crossings(url) == []  # the source store is not the one checked
    again = json.loads(run(*command, str(bundle), "--db", target, "--json").stdout)
    assert again["budget_crossings"] == []
    assert [t for _, _, t in crossings(target)] == [50, 80]
