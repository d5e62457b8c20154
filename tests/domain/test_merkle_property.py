"""The Merkle tree against RFC 9162, written here from the RFC's text, not from kei's code.

``rfc_mth`` is the recursive definition of §2.1.1; ``rfc_verify_inclusion`` and
``rfc_verify_consistency`` are the step lists of §2.1.3.2 and §2.1.4.2 transcribed
literally (with the RFC's variable names). For random logs and sizes: kei's roots equal
MTH, every proof kei makes verifies here and in kei, and any changed byte in a proof,
a root or the entry makes both reject it.
"""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from kei.domain.log.merkle import (
    EMPTY_ROOT,
    CompactRange,
    LeafList,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)
from kei.domain.log.proofs import ConsistencyProof, InclusionProof, parse_proof


def H(data: bytes) -> bytes:  # noqa: N802 - the RFC's name
    return hashlib.sha256(data).digest()


def rfc_mth(d: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1: MTH({}) = HASH(); MTH({d0}) = HASH(0x00 || d0); else split at k."""
    n = len(d)
    if n == 0:
        return H(b"")
    if n == 1:
        return H(b"\x00" + d[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return H(b"\x01" + rfc_mth(d[:k]) + rfc_mth(d[k:]))


def rfc_verify_inclusion(
    leaf_index: int, tree_size: int, entry: bytes, inclusion_path: list[bytes], root_hash: bytes
) -> bool:
    """RFC 9162 §2.1.3.2, step by step."""
    if leaf_index >= tree_size:  # step 1
        return False
    fn, sn = leaf_index, tree_size - 1  # step 2
    r = H(b"\x00" + entry)  # step 3
    for p in inclusion_path:  # step 4
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = H(b"\x01" + p + r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = H(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash  # step 5


def rfc_verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, consistency_path: list[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2, step by step (defined for 0 < first < second)."""
    path = list(consistency_path)
    if not path:  # step 1
        return False
    if first & (first - 1) == 0:  # step 2: first is an exact power of 2
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1  # step 3
    while fn % 2 == 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr = H(b"\x01" + c + fr)
            sr = H(b"\x01" + c + sr)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = H(b"\x01" + sr + c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0  # step 7


def flip(data: bytes, at: int) -> bytes:
    raw = bytearray(data)
    raw[at % len(raw)] ^= 1 << (at % 8)
    return bytes(raw)


entries = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=80)


def tree_of(d: list[bytes]) -> LeafList:
    return LeafList([leaf_hash(e) for e in d])


@settings(max_examples=150, deadline=None)
@given(entries)
def test_roots_are_rfc_mth(d: list[bytes]) -> None:
    for n in range(len(d) + 1):
        assert root(tree_of(d), n) == rfc_mth(d[:n])
    compact = CompactRange()
    compact.extend(d)
    assert compact.root() == rfc_mth(d) and compact.size == len(d)


def test_the_empty_tree_is_the_hash_of_nothing() -> None:
    assert root(LeafList([]), 0) == EMPTY_ROOT == H(b"") == CompactRange().root()


@settings(max_examples=200, deadline=None)
@given(entries, st.data())
def test_every_inclusion_proof_verifies_and_any_flipped_byte_fails(
    d: list[bytes], data: st.DataObject
) -> None:
    n = data.draw(st.integers(1, len(d)), label="tree_size")
    m = data.draw(st.integers(0, n - 1), label="leaf_index")
    path = inclusion_proof(tree_of(d), m, n)
    mth = rfc_mth(d[:n])
    assert rfc_verify_inclusion(m, n, d[m], path, mth)
    assert verify_inclusion(m, n, leaf_hash(d[m]), path, mth)
    at = data.draw(st.integers(0, 10_000), label="byte")
    bad_root = flip(mth, at)
    assert not rfc_verify_inclusion(m, n, d[m], path, bad_root)
    assert not verify_inclusion(m, n, leaf_hash(d[m]), path, bad_root)
    assert not verify_inclusion(m, n, leaf_hash(flip(d[m], at)), path, mth)
    if path:
        i = data.draw(st.integers(0, len(path) - 1), label="hash")
        bad = [*path[:i], flip(path[i], at), *path[i + 1 :]]
        assert not rfc_verify_inclusion(m, n, d[m], bad, mth)
        assert not verify_inclusion(m, n, leaf_hash(d[m]), bad, mth)
        assert not verify_inclusion(m, n, leaf_hash(d[m]), path[:-1], mth)
    assert not verify_inclusion(m, n, leaf_hash(d[m]), [*path, mth], mth)


@settings(max_examples=200, deadline=None)
@given(entries, st.data())
def test_every_consistency_proof_verifies_and_any_flipped_byte_fails(
    d: list[bytes], data: st.DataObject
) -> None:
    n = data.draw(st.integers(1, len(d)), label="second")
    m = data.draw(st.integers(0, n), label="first")
    path = consistency_proof(tree_of(d), m, n)
    first, second = rfc_mth(d[:m]), rfc_mth(d[:n])
    assert verify_consistency(m, n, first, second, path)
    at = data.draw(st.integers(0, 10_000), label="byte")
    if 0 < m < n:
        assert rfc_verify_consistency(m, n, first, second, path)
        for bad_first, bad_second in ((flip(first, at), second), (first, flip(second, at))):
            assert not rfc_verify_consistency(m, n, bad_first, bad_second, path)
            assert not verify_consistency(m, n, bad_first, bad_second, path)
        i = data.draw(st.integers(0, len(path) - 1), label="hash")
        bad = [*path[:i], flip(path[i], at), *path[i + 1 :]]
        assert not rfc_verify_consistency(m, n, first, second, bad)
        assert not verify_consistency(m, n, first, second, bad)
    elif m == n:
        assert path == [] and not verify_consistency(m, n, first, flip(second, at), path)
    else:
        assert path == []


@settings(max_examples=50, deadline=None)
@given(entries, st.data())
def test_a_proof_from_another_tree_fails(d: list[bytes], data: st.DataObject) -> None:
    """A fork: same size, one entry different; neither proof verifies for the other."""
    n = len(d)
    j = data.draw(st.integers(0, n - 1), label="forked entry")
    other = [*d[:j], flip(d[j], 0), *d[j + 1 :]]
    m = data.draw(st.integers(0, n - 1), label="leaf")
    path = inclusion_proof(tree_of(other), m, n)
    assert not verify_inclusion(m, n, leaf_hash(other[m]), path, rfc_mth(d))
    if 0 < j < n - 1:
        cpath = consistency_proof(tree_of(other), j + 1, n)
        assert not verify_consistency(j + 1, n, rfc_mth(d[: j + 1]), rfc_mth(other), cpath)


@settings(max_examples=50, deadline=None)
@given(entries, st.data())
def test_proof_json_round_trips(d: list[bytes], data: st.DataObject) -> None:
    import json

    n = len(d)
    m = data.draw(st.integers(0, n - 1))
    inc = InclusionProof(
        "ledger", m + 1, m, n, rfc_mth(d), d[m], tuple(inclusion_proof(tree_of(d), m, n))
    )
    assert parse_proof(json.dumps(inc.to_dict())) == inc and inc.holds()
    old = data.draw(st.integers(0, n))
    con = ConsistencyProof(
        "ledger", old, rfc_mth(d[:old]), n, rfc_mth(d),
        tuple(consistency_proof(tree_of(d), old, n)),
    )  # fmt: skip
    assert parse_proof(json.dumps(con.to_dict())) == con and con.holds()
