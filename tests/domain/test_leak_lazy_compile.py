"""The shipped leak rules compile on first use (``parse_rules(..., compiled=False)``):
they must be exactly the rules a full, eager load makes, and every one must pass the
checks a user's file gets at load (a valid pattern that cannot match the empty
string), since a late compile would otherwise surface a broken shipped rule only
when some write first needs it."""

from __future__ import annotations

import pytest

from kei.adapters.files.leaks import SHIPPED_FILE
from kei.adapters.files.toml import read_shipped_toml
from kei.domain.leaks.matrix import Matrix
from kei.domain.leaks.patterns import compile_pattern
from kei.errors import LeakMatrixError


def _shipped() -> dict[str, object]:
    return read_shipped_toml(SHIPPED_FILE, "rules", LeakMatrixError)


def test_lazy_shipped_rules_equal_the_eager_ones() -> None:
    lazy = Matrix.from_data(_shipped(), source="shipped", compiled=False)
    eager = Matrix.from_data(_shipped(), source="shipped")
    assert any(not r._compiled for r in lazy.rules)  # some are left to first use
    assert lazy.rules == eager.rules
    for a, b in zip(lazy.rules, eager.rules, strict=True):
        assert (a.regex, a.flags, a.min_len) == (b.regex, b.regex.flags, b.min_len)
    for scope in ("all-writes", "public-mirror", "github-push", "commit-msg"):
        x, y = lazy._active[scope], eager._active[scope]
        assert (x.shortest, x.needs) == (y.shortest, y.needs)


def test_every_shipped_pattern_passes_the_load_checks() -> None:
    rules = _shipped()["rule"]
    assert isinstance(rules, list)
    for entry in rules:
        compile_pattern(entry["pattern"], f"shipped rule {entry['id']!r}")


def test_a_late_compile_refuses_as_a_load_would() -> None:
    bad = {"id": "late", "pattern": "x(?<=a+)", "category": "secret", "severity": "block",
           "scope": ["all-writes"], "rationale": "r", "added": "2026-11-25"}  # fmt: skip
    with pytest.raises(LeakMatrixError, match="not a valid regex"):
        Matrix.from_data({"rule": [bad]}, source="t.toml")
    (rule,) = Matrix.from_data({"rule": [bad]}, source="t.toml", compiled=False).rules
    with pytest.raises(LeakMatrixError, match="not a valid regex"):
        rule.matches("xa")
