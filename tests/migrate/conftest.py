"""Targets for ``kei migrate`` tests: a real SQLite file, a fresh PostgreSQL database and
a fresh MariaDB/MySQL database per test, each dropped afterwards.

``KEI_TEST_MYSQL_URL`` names the MariaDB/MySQL server (e.g.
``mysql+pymysql://root@127.0.0.1:3306/test``; any database on it); without it those
tests skip with that reason, and with ``KEI_REQUIRE_MYSQL=1`` (``.ci/run`` sets it) such
a skip fails the run, as ``KEI_REQUIRE_POSTGRES=1`` does for PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cli_helpers import cli_env, kei
from kei.app.ledger.ledger import Ledger

MYSQL_ENV = "KEI_TEST_MYSQL_URL"
BACKENDS = ["sqlite", "postgres", "mysql"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if (
        os.environ.get("KEI_REQUIRE_MYSQL") == "1"
        and report.skipped
        and "MariaDB" in str(report.longrepr)
    ):
        report.outcome = "failed"
        report.longrepr = f"KEI_REQUIRE_MYSQL=1 but a MariaDB test was skipped: {report.longrepr}"


@pytest.fixture(scope="session")
def mysql_server() -> str:
    """The MariaDB/MySQL server's URL; skips when none is configured or reachable."""
    url = os.environ.get(MYSQL_ENV)
    if not url:
        pytest.skip(
            f"MariaDB/MySQL tests need {MYSQL_ENV} (e.g. mysql+pymysql://root@127.0.0.1:3306/test)"
        )
    try:
        _admin(url).close()
    except Exception as exc:  # the reason is reported, whatever it is
        pytest.skip(f"MariaDB/MySQL at {url} is unreachable: {exc}")
    return url


def _admin(url: str) -> object:
    import pymysql

    from kei.adapters.migrate.urls import parse_target

    args = parse_target(url).connect_args()
    args.pop("database", None)
    return pymysql.connect(**args, autocommit=True, connect_timeout=5)


@pytest.fixture
def mysql_url(mysql_server: str) -> Iterator[str]:
    """A fresh, empty MariaDB/MySQL database for one test, dropped afterwards."""
    name = f"kei_test_{uuid.uuid4().hex[:12]}"
    conn = _admin(mysql_server)
    with conn.cursor() as cur:  # type: ignore[attr-defined]
        cur.execute(f"CREATE DATABASE `{name}`")
    conn.close()  # type: ignore[attr-defined]
    base, _, _ = mysql_server.rpartition("/")
    yield f"{base}/{name}"
    conn = _admin(mysql_server)
    with conn.cursor() as cur:  # type: ignore[attr-defined]
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()  # type: ignore[attr-defined]


@pytest.fixture(params=BACKENDS)
def target_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs the test on a SQLite file, a PostgreSQL database and a MariaDB database, each
    existing and empty."""
    if request.param == "sqlite":
        (tmp_path / "app.db").touch()
        return f"sqlite:///{tmp_path / 'app.db'}"
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(request.getfixturevalue("mysql_url"))


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    return tmp_path / "migrations"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A KEI_HOME with an initialised SQLite ledger and its signing key."""
    home = tmp_path / "home"
    done = kei(["init"], cli_env(home))
    assert done.returncode == 0, done.stderr
    return home


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return cli_env(home)


@pytest.fixture
def open_home(home: Path) -> Iterator[Callable[[], Ledger]]:
    """Opens the home's ledger (read-only use in assertions); closed after the test."""
    opened: list[Ledger] = []

    def make() -> Ledger:
        ledger = Ledger.open(f"sqlite:///{home / 'ledger.db'}")
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()
