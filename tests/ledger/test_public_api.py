"""The names kei promises embedders (``kei.__all__``), kept in step with what they import.

Only these names are stable; every other module path may move between releases
(CHANGELOG). So the list must hold every event type, every name the README's
embed example uses, and exactly what ``kei/__init__.py`` can load.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import kei
from kei.domain.events import REGISTRY
from kei.domain.events.payload import Origin, Payload, TokenUsage
from kei.domain.log.keys import SigningKey

INIT = Path(kei.__file__)
README = Path(__file__).resolve().parents[2] / "README.md"


def _type_checking_names() -> set[str]:
    tree = ast.parse(INIT.read_text())
    block = next(
        n for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
    )
    return {
        a.asname or a.name
        for n in block.body
        if isinstance(n, ast.ImportFrom) and n.module != "typing"  # typing: for annotations
        for a in n.names
    }


def _readme_python() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_all_is_sorted_and_names_exactly_what_kei_can_load() -> None:
    assert kei.__all__ == sorted(kei.__all__)
    assert set(kei.__all__) == _type_checking_names()
    assert set(kei._HOME_OF) < set(kei.__all__)
    events = importlib.import_module(kei._EVENTS)
    for name in set(kei.__all__) - set(kei._HOME_OF):
        assert hasattr(events, name), f"{name} is neither in _HOMES nor an event type"
    for name in kei.__all__:
        assert getattr(kei, name) is not None


def test_every_event_type_and_shared_value_is_public() -> None:
    payloads = {t.payload_type.__name__ for t in REGISTRY.values()}
    shared = {Payload.__name__, TokenUsage.__name__, Origin.__name__}
    assert payloads | shared <= set(kei.__all__)


def test_every_name_the_readme_imports_from_kei_is_public() -> None:
    blocks = _readme_python()
    assert blocks, "the README has an embed example"
    imported = {
        a.name
        for block in blocks
        for node in ast.walk(ast.parse(block))
        if isinstance(node, ast.ImportFrom) and node.module == "kei"
        for a in node.names
    }
    assert imported
    assert imported <= set(kei.__all__)


def test_the_readme_embed_example_runs_and_records_agents_where_the_cli_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    key = SigningKey.generate()
    kei.write_key(tmp_path / ".kei/keys/default.key", key)
    with kei.Ledger.open(f"sqlite:///{tmp_path}/.kei/ledger.db", key=key, create=True) as new:
        new.init()  # what `kei init` does
    printed: list[object] = []
    for block in _readme_python():
        exec(compile(block, "README.md", "exec"), {"print": lambda *a: printed.append(a)})
    with kei.Ledger.open(f"sqlite:///{tmp_path}/.kei/ledger.db", key=key) as ledger:
        streams = {e.stream for e in ledger.read() if e.type.startswith(("agent.", "cost."))}
        assert ledger.verify().ok
    assert streams == {"agent/agent-7"}  # the stream `kei agent fork` writes, through the rules
