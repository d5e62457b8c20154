"""Tunnel tests: real tunnels between two network namespaces joined by a veth pair.

``netns_pair`` yields a ``netns.NetnsPair`` (tests/helpers/netns.py): namespaces ``a``
and ``b`` with unique names, each veth end's address inside its namespace
(``a_addr``/``b_addr`` on ``prefix``), ``token`` (8 hex digits, unique per test: use it
in interface names and socket paths, which namespaces do not separate) and
``run(ns, *argv)``. Nothing is configured outside the two namespaces; on teardown every
process left in them is killed by pid and both are deleted.

Skips say "tunnel test" (``netns.skip_tunnel``, ``netns.need_tools``); with
``KEI_REQUIRE_TUNNELS=1`` (``.ci/run`` sets it) such a skip fails the run, as
``KEI_REQUIRE_POSTGRES=1`` does for PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from netns import REQUIRE_ENV, SKIP_WORD, NetnsPair, netns_pair_made


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get(REQUIRE_ENV) == "1" and report.skipped and SKIP_WORD in str(report.longrepr):
        report.outcome = "failed"
        report.longrepr = f"{REQUIRE_ENV}=1 but a tunnel test was skipped: {report.longrepr}"


@pytest.fixture
def netns_pair() -> Iterator[NetnsPair]:
    """Two fresh namespaces joined by veth; see the module docstring."""
    with netns_pair_made() as pair:
        yield pair
