"""Fuzzy model matching (spec §7 ``pick_match``): upstream's pinned cases, exact first,
list order, the dropped words, and kei's fix for names that reduce to nothing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kei.domain.catalog.match import DROPPED, Match, normalise_base, pick_match

NAMES = st.lists(st.text(min_size=1, max_size=20), max_size=8)


def test_catalog_id_fuzzy_matches_ollama_tag() -> None:
    assert pick_match("llama-3-70b-local", ["mistral:7b", "llama3:70b"]) == Match(
        "llama3:70b", exact=False
    )


def test_first_fuzzy_match_in_list_order_wins() -> None:
    assert pick_match("llama-3", ["llama3:8b", "llama3:70b"]) == Match("llama3:8b", exact=False)
    assert pick_match("llama-3", ["llama3:70b", "llama3:8b"]) == Match("llama3:70b", exact=False)


def test_exact_wins_wherever_it_is() -> None:
    assert pick_match("llama3:70b", ["llama3:70b-q8", "llama3:70b"]) == Match(
        "llama3:70b", exact=True
    )


def test_exact_is_case_sensitive_fuzzy_is_not() -> None:
    assert pick_match("Llama3:8B", ["llama3:8b"]) == Match("llama3:8b", exact=False)


def test_either_side_may_contain_the_other() -> None:
    # the backend name is shorter than the request: "llama3" is inside "llama38b"
    assert pick_match("llama3:8b-instruct-q4", ["llama3"]) == Match("llama3", exact=False)


def test_no_match_is_none() -> None:
    assert pick_match("gpt-4o", ["llama3:8b", "mistral:7b"]) is None
    assert pick_match("gpt-4o", []) is None


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("llama-3-70b-local", "llama370b"),
        ("llama3:70b", "llama370b"),
        ("Meta-Llama-3-8B-Instruct-Q4_K_M", "metallama38bkm"),
        ("mlx-community/Mistral-7B-Instruct-v0.3-4bit", "communitymistral7bv03"),
        ("qwen2.5-coder:7b-chat-f16", "qwen25coder7b"),
        ("BF16-Q8-8BIT", ""),
    ],
)  # fmt: skip
def test_normalise_base(name: str, base: str) -> None:
    assert normalise_base(name) == base


@pytest.mark.parametrize("word", sorted(DROPPED))
def test_every_dropped_word_is_dropped(word: str) -> None:
    assert normalise_base(f"model-{word.upper()}-x") == "modelx"


def test_a_request_that_reduces_to_nothing_never_fuzzy_matches() -> None:
    # upstream: "" is contained in every name, so "chat" matched the first model listed
    assert pick_match("chat", ["llama3:8b"]) is None
    assert pick_match("q4-local", ["llama3:8b"]) is None
    assert pick_match("chat", ["llama3:8b", "chat"]) == Match("chat", exact=True)


def test_a_name_that_reduces_to_nothing_is_skipped() -> None:
    assert pick_match("llama3", ["instruct", "llama3:8b"]) == Match("llama3:8b", exact=False)


@given(st.text(max_size=30))
def test_normalised_text_is_lowercase_alphanumeric(name: str) -> None:
    base = normalise_base(name)
    assert base == base.lower()
    assert all(ch.isalnum() for ch in base)


@given(st.text(min_size=1, max_size=20), NAMES)
def test_a_match_is_one_of_the_names_and_exact_means_equal(model: str, names: list[str]) -> None:
    found = pick_match(model, names)
    if model in names:
        assert found == Match(model, exact=True)
    elif found is not None:
        assert found.name in names
        assert not found.exact
        a, b = normalise_base(model), normalise_base(found.name)
        assert a and b and (a in b or b in a)
        # and no earlier name matched
        earlier = names[: names.index(found.name)]
        assert all(pick_match(model, [n]) is None for n in earlier)


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_fuzzy_matching_is_symmetric(a: str, b: str) -> None:
    assert (pick_match(a, [b]) is None) == (pick_match(b, [a]) is None)
