"""An event written by any earlier kei still reads: one example of every (type, schema
version) ever registered (``tests/fixtures/events/examples.json``) decodes into
today's payload, the fields later versions added at their defaults."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from kei.domain.events import REGISTRY, decode_payload
from kei.domain.events.history import ADDED, fields_after

EXAMPLES = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "events" / "examples.json").read_text()
)
EVERY = [(n, v) for n, t in REGISTRY.items() for v in range(1, t.schema_version + 1)]


def test_every_registered_type_and_version_has_an_example() -> None:
    missing = [f"{n}@{v}" for n, v in EVERY if f"{n}@{v}" not in EXAMPLES]
    assert not missing, (
        f"no example of {missing}: say what the new version added in "
        "kei.domain.events.history.ADDED, then run tests/fixtures/events/generate.py"
    )


def test_every_version_above_1_says_what_it_added() -> None:
    assert [k for k in EVERY if k[1] > 1 and k not in ADDED] == []
    assert [k for k in ADDED if k not in EVERY] == []


@pytest.mark.parametrize(("name", "version"), EVERY, ids=[f"{n}@{v}" for n, v in EVERY])
def test_each_example_decodes_with_later_fields_at_their_defaults(name: str, version: int) -> None:
    raw = bytes.fromhex(EXAMPLES[f"{name}@{version}"])
    payload = decode_payload(name, raw)
    default = {f.name: f.default for f in msgspec.structs.fields(REGISTRY[name].payload_type)}
    for field in fields_after(name, version, REGISTRY[name].schema_version):
        top, _, inner = field.partition(".")
        value = getattr(payload, top)
        if inner:
            value = getattr(value, inner)
            assert value is None, field
        else:
            assert value == default[top], field
