"""The budget tests' fixtures, a plugin each of their modules names (``pytest_plugins``):
not a ``conftest.py``, because another folder's tests import theirs by the module name
``conftest``. A real ledger made by ``kei init`` on each store (``store_url``), with agents
forked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import cli_env, in_process


@pytest.fixture
def kei_home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def kei_env(store_url: str, kei_home: Path) -> dict[str, str]:
    return cli_env(kei_home, store_url)


@pytest.fixture
def kei(kei_env: dict[str, str]) -> Callable[..., Any]:
    """``kei(*args, code=0)`` in this process; a ledger with agents root -> kid -> grandkid
    and a sibling ``other``."""
    run = in_process(kei_env)
    run("init")
    run("agent", "fork", "root", "main")
    run("agent", "fork", "kid", "feat/kid", "--parent", "root")
    run("agent", "fork", "grandkid", "feat/gk", "--parent", "kid")
    run("agent", "fork", "other", "feat/other")
    return run
