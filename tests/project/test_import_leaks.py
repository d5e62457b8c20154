"""Imported docs go through the leak matrix like every memory write, and the MCP
``skill://`` resource finds them by upstream's skill name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kei.app.importers.project.importing import import_project
from kei.app.ledger.ledger import Ledger
from kei.app.memory import MemoryService
from project_fixtures import write

AWS_KEY = "AKIA" + "QWERTYUIOPASDFGH"  # split: the repository's own leak scan
README = f"""\
## Database

Connect with postgresql://app:s3cr3tPass99@db.example:5432/shop and go.

## Keys

The deploy key is {AWS_KEY} for now.

## Plain

Nothing secret here.
"""


def test_doc_secrets_are_redacted_or_kept_out(
    tmp_path: Path, make_ledger: Callable[[str], Ledger]
) -> None:
    ledger = make_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    repo = write(tmp_path / "leaky", {"README.md": README, "go.mod": "module x.org/leaky\n"})
    run = import_project(ledger, str(repo))
    assert [key for key, _ in run.blocked_skills] == ["readme::keys"]
    assert "aws-access-key-id" in run.blocked_skills[0][1]
    with MemoryService(ledger) as memory:
        database = memory.get("skills/leaky", "readme::database")
        assert database is not None and "s3cr3tPass99" not in database["value"]
        assert memory.get("skills/leaky", "readme::keys") is None
        assert memory.get("skills/leaky", "readme::plain") is not None
    assert not any(AWS_KEY in str(e.payload()) for e in ledger.read())
    assert import_project(ledger, str(repo)).events_appended == 0  # the refusal is recorded


def test_mcp_skill_resource_finds_an_imported_section(
    tmp_path: Path, make_ledger: Callable[[str], Ledger]
) -> None:
    import json

    import pytest

    pytest.importorskip("mcp")
    from kei.adapters.files.catalog import load_catalog
    from kei.adapters.mcp.views import _skills
    from kei.app.services import Services
    from kei.errors import InputError

    ledger = make_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    repo = write(tmp_path / "docs", {"README.md": README, "go.mod": "module x.org/docs\n"})
    import_project(ledger, str(repo))
    with Services(ledger, load_catalog(tmp_path), seal_key=None) as services:
        found = json.loads(_skills(services, "docs::readme::plain"))
        assert found["skills"] == [] and "Nothing secret here." in found["imported"]["value"]
        with pytest.raises(InputError):
            _skills(services, "docs::readme::missing")
