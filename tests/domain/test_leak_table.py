"""The shipped leak rules load from a derived table (``kei/data/leaks.derived.json``):
it must be exactly what a full parse of ``leaks.toml`` makes, and a table that no
longer matches the TOML (or cannot be read) must never be trusted."""

from __future__ import annotations

import logging
import subprocess
import sys

import msgspec
import pytest

from kei.adapters.files import leaks
from kei.adapters.files.leaks import DERIVED_FILE, REGENERATE, SHIPPED_FILE, shipped_rules
from kei.adapters.files.toml import read_shipped_toml
from kei.domain.leaks.matrix import Matrix
from kei.domain.leaks.rules import parse_rules
from kei.domain.leaks.table import DerivedTable
from kei.errors import LeakMatrixError


def _table(raw: bytes) -> DerivedTable:
    return msgspec.json.decode(raw, type=DerivedTable)


def _parsed() -> Matrix:
    data = read_shipped_toml(SHIPPED_FILE, "rules", LeakMatrixError)
    return Matrix(parse_rules(data, leaks.SHIPPED_NAME))


def test_the_shipped_table_is_derived_from_the_shipped_toml() -> None:
    shipped = _table(leaks._shipped_bytes(DERIVED_FILE))
    assert shipped == _table(leaks.derive_table()), (
        f"kei/data/{DERIVED_FILE} is stale: run `{REGENERATE}` after editing {SHIPPED_FILE}"
    )


def test_table_rules_equal_parsed_rules_and_compile_on_first_use() -> None:
    fast, full = Matrix(shipped_rules()), _parsed()
    assert fast.rules == full.rules
    assert all(not r._compiled for r in fast.rules)
    for a, b in zip(fast.rules, full.rules, strict=True):
        assert (a.where, a.regex, a.flags, a.required, a.clauses) == (
            b.where,
            b.regex,
            b.regex.flags,
            b.required,
            b.clauses,
        )
    for scope in ("all-writes", "public-mirror", "github-push", "commit-msg"):
        x, y = fast._active[scope], full._active[scope]
        assert (x.shortest, x.needs) == (y.shortest, y.needs)


def _tampered(raw: bytes) -> bytes:
    """The shipped table with its first rule turned off: trusted, it would let secrets by."""
    table = _table(raw)
    first = msgspec.structs.replace(table.rules[0], severity="exclude")
    return msgspec.json.encode(msgspec.structs.replace(table, rules=(first, *table.rules[1:])))


@pytest.mark.parametrize("how", ["stale digest", "missing", "not JSON", "wrong shape"])
def test_a_table_that_does_not_match_is_never_trusted(
    how: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = leaks._shipped_bytes

    def read(name: str) -> bytes:
        raw = real(name)
        if name == SHIPPED_FILE:
            return raw + b"\n# edited\n" if how == "stale digest" else raw
        if how == "missing":
            raise LeakMatrixError("cannot read")
        if how == "stale digest":
            return _tampered(raw)
        return b"{not json" if how == "not JSON" else b'{"toml_sha256": 1, "rules": []}'

    monkeypatch.setattr(leaks, "_shipped_bytes", read)
    with caplog.at_level(logging.WARNING, logger=leaks.__name__):
        rules = shipped_rules()
    assert rules == _parsed().rules
    assert REGENERATE in caplog.text


def test_the_shipped_path_needs_no_toml_parser() -> None:
    """The write path's load: the table, no ``tomllib``, no TOML parse."""
    code = ("import sys; from kei.adapters.files.leaks import shipped_matrix; "
            "assert shipped_matrix().all_clean(['main', 'agent/f1']); "
            "print(sorted(m for m in ('tomllib', 'importlib.resources') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
