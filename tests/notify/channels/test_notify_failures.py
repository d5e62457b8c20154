"""Reading a provider's wait and classifying its answer (kei.adapters.notify.failures)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kei.adapters.notify.failures import RETRY_AFTER_CAP_MS, classify_status, retry_after_ms

NOW = 1_796_601_600.0  # 2026-12-07T00:00:00Z


@pytest.mark.parametrize(
    ("raw", "ms"),
    [(1, 1000), (0.2, 200), ("1", 1000), (" 2.5 ", 2500), (0, 0), (-3, 0), ("0.0001", 1),
     (172800, RETRY_AFTER_CAP_MS), ("inf", RETRY_AFTER_CAP_MS), (10**400, RETRY_AFTER_CAP_MS),
     ("1e400", RETRY_AFTER_CAP_MS), (float("-inf"), 0), ("nan", None),
     ("Mon, 07 Dec 2026 00:00:30 GMT", 30_000), ("Sun, 06 Dec 2026 23:00:00 GMT", 0),
     ("Mon, 07 Dec 2026 00:00:30", None), ("soon", None), ("", None), (None, None),
     (True, None), ([1], None)],
)  # fmt: skip
def test_retry_after_is_seconds_or_a_date_capped(raw: object, ms: int | None) -> None:
    assert retry_after_ms(raw, now_s=NOW) == ms


@given(st.one_of(st.floats(allow_nan=True), st.integers(), st.text(max_size=40)))
def test_retry_after_is_never_negative_nor_over_the_cap(raw: object) -> None:
    ms = retry_after_ms(raw, now_s=NOW)
    assert ms is None or 0 <= ms <= RETRY_AFTER_CAP_MS
    if isinstance(raw, float) and math.isnan(raw):
        assert ms is None


@pytest.mark.parametrize(
    ("status", "expected"),
    [(429, ("rate_limited", True)), (401, ("auth", False)), (403, ("auth", False)),
     (408, ("timeout", True)), (500, ("rejected", True)), (503, ("rejected", True)),
     (400, ("rejected", False)), (404, ("rejected", False)), (302, ("rejected", False))],
)  # fmt: skip
def test_status_classes(status: int, expected: tuple[str, bool]) -> None:
    assert classify_status(status) == expected
