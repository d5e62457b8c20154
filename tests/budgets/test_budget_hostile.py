"""Hostile arguments to ``kei budget``: bad scopes, amounts (negative, zero, huge, NaN,
exponents, separators, too many decimals) and periods. Each is one error line (and at
most a hint), exit 2, no traceback, and the log is unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budgets_helpers import Kei, events
from cli_helpers import cli_env, in_process
from cli_helpers import kei as kei_process
from kei.domain.budgets.rules import parse_amount
from kei.domain.budgets.scopes import parse_scope
from kei.domain.events.budgets import PERIODS
from kei.errors import InputError

pytest_plugins = ["budgets_fixtures"]  # kei_home, kei_env and kei

BAD_AMOUNTS = ["0", "0.00", "-5", "-0.01", "1e3", "nan", "NaN", "inf", "Infinity", "1,000",
               "10000000.01", "99999999999999999999999", "1.123456789", "$", "", " 5", "five",
               "0x1F", "1/2", "5%"]  # fmt: skip
BAD_SCOPES = ["", "ALL", "team:x", "tree:", "tree: ", "session:", "project:", "tree:a\x1b[2J",
              "session:a\nb", "tree:" + "x" * 300, "project:/" + "p" * 5000, "tree:ghost",
              "tree:root\u2028"]  # fmt: skip


class World:
    """One initialised SQLite ledger for every generated example; ``run`` in this process,
    ``real`` the CLI in a child process (a usage error is formatted by kei's entry point,
    which typer's in-process runner skips)."""

    def __init__(self, root: Path) -> None:
        self.url = f"sqlite:///{root / 'ledger.db'}"
        self.env = cli_env(root / "home", self.url)
        self.run = in_process(self.env)
        self.run("init")
        self.run("agent", "fork", "root", "main")
        self.run("budget", "set", "all", "3")

    def real(self, *args: str, code: int | None = None) -> Any:
        done = kei_process(list(args), self.env)
        return SimpleNamespace(exit_code=done.returncode, stdout=done.stdout, stderr=done.stderr)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield World(tmp_path_factory.mktemp("budget-hostile"))


def refused(run: Kei, url: str, *args: str) -> None:
    before = [(e.position, e.hash) for e in events(url)]
    result: Any = run(*args, code=None)
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, (args, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, args
    assert lines and lines[0].startswith("kei: error: "), (args, lines)
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("kei: hint: ")), lines
    assert result.stdout == "", (args, result.stdout)
    assert [(e.position, e.hash) for e in events(url)] == before, args


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_bad_amounts_are_refused(kei: Kei, store_url: str, amount: str) -> None:
    refused(kei, store_url, "budget", "set", "all", "--", amount)


@pytest.mark.parametrize("scope", BAD_SCOPES)
def test_bad_scopes_are_refused(kei: Kei, store_url: str, scope: str) -> None:
    refused(kei, store_url, "budget", "set", "--", scope, "5")
    refused(kei, store_url, "budget", "clear", "--", scope)


def test_negative_amounts_without_a_separator_are_refused(world: World) -> None:
    for amount in ("-5", "-1.50", "-inf"):
        refused(world.real, world.url, "budget", "set", "all", amount)


@pytest.mark.parametrize("args", [("all", "-5"), ("all", "-5", "--period", "day"),
                                  ("--period", "month", "all", "$-1.50")])  # fmt: skip
def test_a_negative_amount_is_named_as_such(world: World, args: tuple[str, ...]) -> None:
    """``-5`` is the AMOUNT, not an unknown option: the one line says it is negative."""
    refused(world.real, world.url, "budget", "set", *args)
    result = world.real("budget", "set", *args)
    assert "is negative; the amount must be positive" in result.stderr, result.stderr
    assert "No such option" not in result.stderr


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.text(max_size=40),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(max_value=0).map(str),
        st.integers(min_value=10**7 + 1).map(str),
        st.decimals(allow_nan=True, allow_infinity=True).map(str),
    )
)
def test_any_amount_is_set_exactly_or_refused(world: World, amount: str) -> None:
    try:
        parse_amount(amount)
    except InputError:
        refused(world.run, world.url, "budget", "set", "all", "--", amount)
        return
    if "\x00" not in amount:  # a valid amount: set (or already set), exit 0
        world.run("budget", "set", "all", "--", amount)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60))
def test_any_scope_is_parsed_or_refused(world: World, scope: str) -> None:
    try:
        parse_scope(scope)
        return  # a valid scope (kept as given) is not what this test is about
    except InputError:
        pass
    refused(world.run, world.url, "budget", "set", "--", scope, "5")


@settings(max_examples=8, deadline=None)
@given(
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20).filter(
        lambda p: p not in PERIODS
    )
)
def test_any_other_period_is_refused(world: World, period: str) -> None:
    refused(world.real, world.url, "budget", "set", "all", "5", "--period", period)


@pytest.mark.parametrize(
    "args",
    [("budget", "status", "--at", "yesterday"), ("budget", "status", "--at", "99999-01-01"),
     ("budget", "check", "--at", "-5"), ("budget", "check", "--at", "1e99"),
     ("budget", "clear", "all", "--period", "week"), ("budget", "set", "all"),
     ("route", "select", "--dna", "", "--budget", "team:x"),
     ("route", "select", "--dna", "", "--budget", "tree:root"),  # no budget on that scope
     ("route", "select", "--dna", "", "--budget-micro", "-1"),
     ("route", "select", "--dna", "", "--budget", "all", "--budget-micro", "5")],
)  # fmt: skip
def test_other_bad_arguments_are_refused(world: World, args: tuple[str, ...]) -> None:
    refused(world.real, world.url, *args)
