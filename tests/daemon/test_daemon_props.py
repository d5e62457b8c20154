"""Properties of the daemon's pieces: any request survives the wire unchanged, no bytes
decode to anything but a request or a ValueError, a changed file is always noticed, and
hostile argv gets the same answer warm as cold."""

from __future__ import annotations

import os
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_helpers import cli_env, kei
from kei.adapters.daemon import wire
from kei.adapters.daemon.warm import changed, snapshot

NO_NUL = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)))
KEYS = st.text(string.ascii_letters + "_", min_size=1, max_size=12)


@given(
    kind=st.sampled_from(["run", "ping", "stop"]),
    paths=st.tuples(NO_NUL, NO_NUL, NO_NUL),
    umask=st.integers(0, 0o777),
    argv=st.lists(NO_NUL, max_size=8),
    environ=st.dictionaries(KEYS, NO_NUL, max_size=8),
)
def test_a_request_survives_the_wire(kind: str, paths: tuple[str, str, str], umask: int,
                                     argv: list[str], environ: dict[str, str]) -> None:  # fmt: skip
    prefix, package, cwd = paths
    sent = wire.Request(kind, prefix, package, cwd, umask, argv, environ)
    framed = wire.encode(sent)
    assert int.from_bytes(framed[:4], "big") == len(framed) - 4
    got = wire.decode(framed[4:])
    assert [got.kind, got.prefix, got.package, got.cwd, got.umask, got.argv, got.environ] == [
        kind, prefix, package, cwd, umask, argv, environ]  # fmt: skip


@given(st.binary(max_size=300))
def test_any_bytes_are_a_request_or_a_value_error(data: bytes) -> None:
    try:
        request = wire.decode(data)
    except ValueError:
        return
    assert request.kind in ("run", "ping", "stop") and 0 <= request.umask <= 0o777


@given(st.sampled_from(["touch", "grow", "remove"]))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=6)
def test_a_changed_package_file_is_noticed(tmp_path: Path, how: str) -> None:
    package = tmp_path / f"pkg-{how}"
    (package / "sub").mkdir(parents=True, exist_ok=True)
    for name in ("a.py", "sub/b.toml"):
        (package / name).write_text("x = 1\n")
    files = snapshot(str(package))
    assert changed(files) is None and len(files) == 2
    target = package / "sub" / "b.toml"
    if how == "touch":
        os.utime(target, ns=(0, 1))
    elif how == "grow":
        target.write_text("x = 12\n")
    else:
        target.unlink()
    assert changed(files) == str(target)


@pytest.fixture(scope="module")
def homes(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """Two initialised ledgers, one served by a daemon, one run cold."""
    root = tmp_path_factory.mktemp("props")
    warm = cli_env(root / "warm", KEI_DAEMON_DIR=str(root / "d"))
    cold = cli_env(root / "cold", KEI_DAEMON="off")
    for env in (warm, cold):
        assert kei(["init"], env).returncode == 0
    assert kei(["daemon", "start", "--idle", "600"], warm).returncode == 0
    yield warm, cold
    kei(["daemon", "stop"], warm)


WORDS = st.sampled_from(["agent", "fork", "done", "cost", "record", "--db", "--key", "--json",
                         "memory", "write", "events", "tail", "-n", "skill", "--success",
                         "route", "outcome", "--", "-", "", "\t", "--since", "1e999", "-1"])  # fmt: skip
HOSTILE = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
                  max_size=20)  # fmt: skip


@given(argv=st.lists(st.one_of(WORDS, HOSTILE), min_size=1, max_size=6))
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_hostile_argv_gets_the_same_answer_warm_and_cold(
    homes: tuple[dict[str, str], dict[str, str]], argv: list[str]
) -> None:
    warm_env, cold_env = homes
    warm, cold = kei(argv, warm_env), kei(argv, cold_env)
    assert warm.returncode == cold.returncode, (argv, warm.stderr, cold.stderr)
    if warm.returncode != 0:
        assert warm.stderr == cold.stderr
    assert "Traceback" not in warm.stderr
