"""The import's memory on disk: the scratch index (deleted however the run ends) and the
dedupe rule it keeps, checked against the rule on plain Python sets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kei.adapters.files.scratch_index import CHUNK, ScratchIndex
from kei.app.importers.claude_seen import BEFORE, KEYS, SEEN, Seen
from kei.domain.claude_code.transcript import AnthropicUsage, Billed


def test_the_index_maps_and_tallies_strings_and_leaves_nothing_behind() -> None:
    with ScratchIndex(("keys", "closed"), ("met",)) as index:
        folder = index.folder
        many = [f"k{i}" for i in range(CHUNK * 2 + 3)]  # more than one lookup statement
        index.put_many("keys", ((k, 0) for k in many))
        index.put_many("keys", [("k1", 1), ("new", 1)])
        assert index.get_many("keys", ["k1", "k2", "new", "absent"]) == {"k1": 1, "k2": 0, "new": 1}
        assert index.get_many("keys", many) == {k: int(k == "k1") for k in many}
        assert index.get_many("closed", many) == {}
        assert index.count("keys") == len(many) + 1
        index.add_many("met", ["a", "b", "a"])
        index.add_many("met", ["a"])
        assert index.tally("met") == (4, 2)
        with pytest.raises(ValueError, match="no table"):
            index.get_many("other", ["k1"])
        with pytest.raises(ValueError, match="no table"):
            index.add_many("keys", ["k1"])  # a map is not a tally
        assert folder.exists()
    assert not folder.exists()
    with pytest.raises(RuntimeError), ScratchIndex(("keys",)) as index:
        folder = index.folder
        raise RuntimeError("the import failed")
    assert not folder.exists()
    with pytest.raises(ValueError, match="lower-case"):
        ScratchIndex(("keys; DROP",))
    with pytest.raises(ValueError, match="distinct"):
        ScratchIndex(("keys",), ("keys",))


def _billed(key: str) -> Billed:
    return Billed(key, 1, "s", "claude-sonnet-4-6", 0, AnthropicUsage(input_tokens=1))


keys = st.sampled_from([f"msg_{i}:req_{i}" for i in range(12)])


@given(st.sets(keys), st.lists(st.lists(keys, max_size=8), max_size=6))
def test_sorting_sessions_on_disk_matches_the_rule_on_sets(
    before: set[str], sessions: list[list[str]]
) -> None:
    seen_in_run: set[str] = set()
    repeated = already = counted = 0  # the rule the import kept in two sets
    with Seen(ScratchIndex(("keys", "closed"), ("met",))) as seen:
        seen._index.put_many(KEYS, ((k, BEFORE) for k in before))
        for session in sessions:
            got = seen.sort([_billed(k) for k in session])
            new = []
            for key in session:
                if key in seen_in_run:
                    repeated += 1
                    continue
                seen_in_run.add(key)
                if key in before:
                    already += 1
                else:
                    new.append(key)
            assert [b.key for b in got.new] == new  # what gets recorded, session by session
            counted += got.repeated
        later_already, later_repeated = seen.before_counts()
        assert (later_already, counted + later_repeated) == (already, repeated)
        met = seen._index.get_many(KEYS, seen_in_run - before)
        assert set(met) == seen_in_run - before and set(met.values()) <= {SEEN}
