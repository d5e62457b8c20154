"""Pure domain: envelope layout, payload codecs, layering."""

from __future__ import annotations

import ast
from pathlib import Path
from types import UnionType
from typing import Literal, Union, get_args, get_origin

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kei.domain
from kei.domain import events
from kei.domain.log import envelope
from kei.domain.log.keys import SigningKey, verify_signature
from kei.errors import InputError, MalformedEnvelopeError

KEY = SigningKey(bytes(range(32)), name="fixed")


@given(
    stream=st.text(min_size=1, max_size=40),
    version=st.integers(1, 2**63 - 1),
    type_=st.text(min_size=1, max_size=30),
    schema=st.integers(0, 65535),
    ts=st.integers(-(2**63), 2**63 - 1),
    payload=st.binary(max_size=200),
)
def test_seal_then_open_gives_back_every_field(
    stream: str, version: int, type_: str, schema: int, ts: int, payload: bytes
) -> None:
    state = envelope.seal(
        stream=stream, version=version, type_=type_, schema_version=schema,
        timestamp_us=ts, payload=payload, signer=KEY,
    )  # fmt: skip
    opened = envelope.open_state(state)
    assert (opened.key_id, opened.schema_version, opened.timestamp_us, opened.payload) == (
        KEY.key_id, schema, ts, payload,
    )  # fmt: skip
    message = envelope.signed_message(stream, version, type_, state)
    assert verify_signature(KEY.public_key, message, opened.signature)
    assert not verify_signature(KEY.public_key, message + b"x", opened.signature)


def test_signature_binds_stream_version_and_type() -> None:
    state = envelope.seal(
        stream="a", version=1, type_="t", schema_version=1, timestamp_us=0, payload=b"", signer=KEY
    )
    sig = envelope.open_state(state).signature
    for stream, version, type_ in [("b", 1, "t"), ("a", 2, "t"), ("a", 1, "u")]:
        moved = envelope.signed_message(stream, version, type_, state)
        assert not verify_signature(KEY.public_key, moved, sig)


def test_length_prefixes_keep_fields_apart() -> None:
    assert envelope.identity_prefix("ab", 1, "c") != envelope.identity_prefix("a", 1, "bc")


@pytest.mark.parametrize("state", [b"", b"\x01" * 10, b"\x02" + bytes(100)])
def test_malformed_states_are_rejected(state: bytes) -> None:
    with pytest.raises(MalformedEnvelopeError):
        envelope.open_state(state)


def test_known_vector() -> None:
    """Pins the byte layout (docs/events.md): changing it breaks every stored signature."""
    state = envelope.seal(
        stream="s",
        version=1,
        type_="t",
        schema_version=1,
        timestamp_us=0,
        payload=b"\x80",
        signer=KEY,
    )
    assert KEY.key_id.hex() == "7a1e02de81bf0916"
    assert state.hex() == (
        "017a1e02de81bf0916"
        "65a5a400a9c845c27d33d2b917ad4fecbb0c9ad7c64056c1fdd7097d5c464cc3"
        "aef8bdc12daee9c70d1d1d380a49d636d12f2e67d26c2490001e382c087feb0d"
        "0001" "0000000000000000" "80"
    )  # fmt: skip
    digest = envelope.chain_hash(envelope.GENESIS_PREV, 0, 1, "s", 1, "t", state)
    assert digest.hex() == "ef2a8b43617547febc767ef574de3f4f22d89208ae40cb18fe373ccaa16f8ee5"


@pytest.mark.parametrize("name", sorted(events.REGISTRY))
def test_every_event_type_round_trips(name: str) -> None:
    etype = events.REGISTRY[name]
    payload = _example(etype.payload_type)
    raw = events.encode_payload(payload)
    assert events.decode_payload(name, raw) == payload
    assert events.encode_payload(events.decode_payload(name, raw)) == raw


def test_unknown_fields_are_rejected() -> None:
    raw = msgspec.msgpack.encode({"agent_id": "a", "extra": 1})
    with pytest.raises(InputError, match="does not decode"):
        events.decode_payload("agent.merged", raw)


def _example(cls: type[events.Payload]) -> events.Payload:
    values = {}
    for field in msgspec.structs.fields(cls):
        if field.required:
            values[field.name] = _sample(field.type)
    return cls(**values)


def _sample(type_: object) -> object:
    if get_origin(type_) is Literal:
        return get_args(type_)[0]
    if get_origin(type_) is tuple:
        return (_sample(get_args(type_)[0]),)
    if get_origin(type_) in (Union, UnionType):
        return _sample(next(a for a in get_args(type_) if a is not type(None)))
    if isinstance(type_, type) and issubclass(type_, msgspec.Struct):
        return type_(**{f.name: _sample(f.type) for f in msgspec.structs.fields(type_)})
    samples: dict[object, object] = {bool: True, int: 7, float: 0.25}
    return samples.get(type_, "x")


def test_domain_imports_no_adapters_and_no_io() -> None:
    forbidden = ("kei.adapters", "kei.app", "kei.projections", "sqlite3", "psycopg", "eventsourcing",
                 "typer", "rich", "httpx", "os", "pathlib", "socket", "subprocess")  # fmt: skip
    # Outside kei.domain, only the exception tree and the limits, both pure: checked too.
    allowed = ("kei.domain", "kei.errors", "kei.limits")
    modules = sorted(Path(kei.domain.__file__).parent.rglob("*.py"))
    assert len(modules) > 40  # every feature folder is walked, not just the top
    kei_root = Path(kei.domain.__file__).parent.parent
    for path in [*modules, kei_root / "errors.py", kei_root / "limits.py"]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                root = name if name.startswith("kei.") else name.split(".")[0]
                assert not root.startswith(forbidden), f"{path} imports {name}"
                inside = name == "kei" or name.startswith("kei.")
                assert not inside or name.startswith(allowed), f"{path} imports {name}"


def _kei_imports(folder: Path) -> list[tuple[Path, str]]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kei"):
                found.append((path, node.module))
            elif isinstance(node, ast.Import):
                found += [(path, a.name) for a in node.names if a.name.startswith("kei")]
    return found


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("projections", ("kei.app", "kei.adapters")),
        ("app", ("kei.adapters.cli",)),
        ("adapters/store", ("kei.app", "kei.adapters.cli")),
        ("adapters/readmodels", ("kei.app", "kei.adapters.cli")),
        ("adapters/files", ("kei.app", "kei.adapters.cli")),
        ("adapters/workers", ("kei.app", "kei.adapters.cli")),
        ("adapters/llm", ("kei.app", "kei.adapters.cli")),
        ("adapters/redis", ("kei.app", "kei.adapters.cli")),
        ("adapters/machine", ("kei.app", "kei.adapters.cli")),
    ],
)
def test_layers_import_inward_only(folder: str, forbidden: tuple[str, ...]) -> None:
    """domain ← projections ← driven adapters ← app ← cli: nothing imports a layer above it."""
    root = Path(kei.domain.__file__).parent.parent / folder
    assert root.is_dir()
    for path, name in _kei_imports(root):
        assert not name.startswith(forbidden), f"{path} imports {name}"


def test_only_subpackages_in_domain_and_adapters() -> None:
    kei_root = Path(kei.domain.__file__).parent.parent
    for layer in ("domain", "adapters"):
        loose = [p.name for p in (kei_root / layer).glob("*.py") if p.name != "__init__.py"]
        assert loose == [], f"loose modules in {layer}/: {loose}"


def test_no_module_over_400_lines() -> None:
    kei_root = Path(kei.domain.__file__).parent.parent
    sizes = {p: len(p.read_text().splitlines()) for p in kei_root.rglob("*.py")}
    assert {str(p.relative_to(kei_root)): n for p, n in sizes.items() if n > 400} == {}
