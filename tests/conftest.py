"""Shared fixtures: real SQLite files, a real throwaway PostgreSQL database per run.

``KEI_TEST_POSTGRES_URL`` names a server (any database on it); the session creates a
fresh database there and each test gets its own schema-free database copy by name.
Without the variable, PostgreSQL tests skip with a reason; with
``KEI_REQUIRE_POSTGRES=1`` such a skip fails the run instead. Likewise the ccusage parity
tests (``tests/claude_code/test_ccusage_*.py``) skip without ``KEI_TEST_CCUSAGE`` and
fail for it with ``KEI_REQUIRE_CCUSAGE=1``, and the dashboard's browser tests
(``tests/http/test_dashboard_chromium.py``) skip without Debian's chromium and fail for
it with ``KEI_REQUIRE_CHROMIUM=1`` (all set by ``.ci/run``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from kei.app.ledger.ledger import Ledger
from kei.domain.log.keys import SigningKey

PG_ENV = "KEI_TEST_POSTGRES_URL"


def _pg_admin_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _with_db(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, "", ""))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    del config
    for item in items:
        if "pg_url" in getattr(item, "fixturenames", ()) or "store_url" in getattr(
            item, "fixturenames", ()
        ):
            item.add_marker(pytest.mark.postgres_capable)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres_capable: may use the PostgreSQL server")
    config.addinivalue_line("markers", "slow: takes seconds (processes, large logs)")


# Skips a CI run must not allow: (the variable that forbids them, a word of their reason).
REQUIRED_SKIPS = (
    ("KEI_REQUIRE_POSTGRES", "PostgreSQL"),
    ("KEI_REQUIRE_CCUSAGE", "ccusage"),
    ("KEI_REQUIRE_CHROMIUM", "Chromium"),
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    for variable, word in REQUIRED_SKIPS:
        if os.environ.get(variable) == "1" and report.skipped and word in str(report.longrepr):
            report.outcome = "failed"
            report.longrepr = f"{variable}=1 but a {word} test was skipped: {report.longrepr}"
            return


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The admin URL of the test server; skips when none is configured."""
    url = _pg_admin_url()
    if url is None:
        pytest.skip(
            f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/postgres)"
        )
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=5).close()
    except Exception as exc:  # the reason is reported, whatever it is
        pytest.skip(f"PostgreSQL at {url} is unreachable: {exc}")
    yield url


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"kei_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_db(pg_server, name)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs the test once on a SQLite file and once on a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate(name="default")


@pytest.fixture
def make_ledger(key: SigningKey) -> Iterator[Callable[[str], Ledger]]:
    """Open (creating) an initialised ledger at a URL; closed after the test."""
    opened: list[Ledger] = []

    def make(url: str, *, signing_key: SigningKey | None = None) -> Ledger:
        ledger = Ledger.open(url, key=signing_key or key, create=True)
        if not ledger.is_initialised():
            ledger.init("test")
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()


@pytest.fixture
def ledger(store_url: str, make_ledger: Callable[[str], Ledger]) -> Ledger:
    return make_ledger(store_url)


@pytest.fixture(scope="session", autouse=True)
def _out_of_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run every test from a scratch folder: a command given a relative path (a hostile
    ``--db -1``, an ``--out x.tar.zst``) must not leave files in the checkout."""
    before = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        yield
    finally:
        os.chdir(before)
