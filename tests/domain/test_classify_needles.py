"""The classifier's substring pre-checks never change a class: with or without them,
every message gets the class upstream's patterns give it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kei.domain.retro import classify as c

WORDS = ["permission denied", "Access  Denied", "again", "stop doing", "don't repeat",
         "you're wrong", "BROKEN", "wrong once more", "опять", "не делай", "worktree",
         "error", "cargo", "workspace", "retry", "Retrying", "attempt 3", "try again",
         "\n", " ", "x", "ſtop", "WORKTREE fail"]  # fmt: skip


def by_patterns_alone(message: str) -> str | None:
    return next((label for label, regex in c._MESSAGE_RULES if regex.search(message)), None)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(WORDS) | st.text(max_size=8), max_size=10))
def test_pre_checks_agree_with_the_patterns(parts: list[str]) -> None:
    message = " ".join(parts)
    expected = by_patterns_alone(message)
    got = c.classify("user", None, message, False)
    assert got == (expected if expected is not None else "user")
