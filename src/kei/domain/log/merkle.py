"""The RFC 9162 (RFC 6962) Merkle tree over the log, its proofs and their verifiers.

The leaf for chain entry ``i`` (the ``i``-th chain row in position order) is
``SHA-256(0x00 || h)`` of that entry's 32-byte hash ``h``; interior nodes are
``SHA-256(0x01 || left || right)``; the root of the empty tree is ``SHA-256("")``.
Trees of ``n`` leaves split at the largest power of two below ``n`` (RFC 9162 §2.1.1),
so every left part is a complete subtree whose first leaf is a multiple of its size:
proof generation asks a ``NodeSource`` only for such complete subtrees, which lets an
adapter answer them from stored hashes instead of from every leaf.

The verifiers are RFC 9162 §2.1.3.2 and §2.1.4.2 step by step; they need nothing but
the proof, the sizes and the roots, so anyone can run them without the database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Protocol

from kei.domain.log.envelope import HASH_LEN

LEAF_PREFIX: Final = b"\x00"
NODE_PREFIX: Final = b"\x01"
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
TILE_HEIGHT: Final = 8
"""Stored subtree hashes sit at levels that are multiples of this (C2SP tlog-tiles)."""

_sha256 = hashlib.sha256


def leaf_hash(entry_hash: bytes) -> bytes:
    return _sha256(LEAF_PREFIX + entry_hash).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(NODE_PREFIX + left + right).digest()


class NodeSource(Protocol):
    """Hashes of complete subtrees: ``complete(level, index)`` covers the leaves
    ``[index << level, (index + 1) << level)``; level 0 is a leaf hash."""

    def complete(self, level: int, index: int) -> bytes: ...


class LeafList:
    """A ``NodeSource`` over leaf hashes in memory (tests, small trees)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = leaves

    def complete(self, level: int, index: int) -> bytes:
        lo = index << level
        return subtree_of_leaves(self.leaves[lo : lo + (1 << level)])


def leaf_hashes(entry_hashes: Iterable[bytes]) -> list[bytes]:
    """``leaf_hash`` of each entry hash, in one loop (a call per leaf costs as much again)."""
    sha, prefix = _sha256, LEAF_PREFIX
    return [sha(prefix + h).digest() for h in entry_hashes]


def subtree_of_leaves(leaves: Sequence[bytes]) -> bytes:
    """The hash of a complete subtree (a power-of-two count of leaf hashes), level by level."""
    sha, prefix = _sha256, NODE_PREFIX
    level = list(leaves)
    while len(level) > 1:
        pairs = iter(level)  # a power of two: the pairs come out even
        level = [sha(prefix + a + b).digest() for a, b in zip(pairs, pairs, strict=False)]
    return level[0]


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(src: NodeSource, lo: int, hi: int) -> bytes:
    """MTH of leaves ``[lo, hi)``, where ``lo`` is where the RFC's recursion puts it."""
    n = hi - lo
    if n <= 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and lo % n == 0:
        level = n.bit_length() - 1
        return src.complete(level, lo >> level)
    k = _split(n)
    return node_hash(subtree_root(src, lo, lo + k), subtree_root(src, lo + k, hi))


def root(src: NodeSource, size: int) -> bytes:
    """MTH of the first ``size`` leaves."""
    return subtree_root(src, 0, size)


def inclusion_proof(src: NodeSource, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 §2.1.3.1, leaf-side hash first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(subtree_root(src, lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree_root(src, lo, lo + k))
            lo += k
    return path[::-1]


def consistency_proof(src: NodeSource, old: int, new: int) -> list[bytes]:
    """PROOF(old, D[new]) of RFC 9162 §2.1.4.1 (empty when ``old`` is 0 or ``new``)."""
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from size {old} to size {new}")
    if old in (0, new):
        return []
    path: list[bytes] = []
    lo, hi, m, whole = 0, new, old, True
    while True:
        n = hi - lo
        if m == n:
            if not whole:
                path.append(subtree_root(src, lo, hi))
            return path[::-1]
        k = _split(n)
        if m <= k:
            path.append(subtree_root(src, lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree_root(src, lo, lo + k))
            lo, m, whole = lo + k, m - k, False


def _shift_until_set(fn: int, sn: int) -> tuple[int, int]:
    while fn & 1 == 0 and fn != 0:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def verify_inclusion(
    index: int, size: int, leaf: bytes, path: Sequence[bytes], root_hash: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``path`` prove ``leaf`` (a leaf hash) at ``index``?"""
    if not 0 <= index < size or any(len(p) != HASH_LEN for p in path):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _shift_until_set(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root_hash


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree of ``new_root`` an extension of ``old_root``?

    Sizes the RFC leaves out: from 0 anything follows (the proof must be empty); from
    a size to itself the roots must be equal (and the proof empty).
    """
    if not 0 <= old <= new or any(len(p) != HASH_LEN for p in path):
        return False
    if old in (0, new):
        return not path and (old == 0 or old_root == new_root)
    if not path:
        return False
    proof = list(path)
    if old & (old - 1) == 0:
        proof.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            fn, sn = _shift_until_set(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


NodeSink = Callable[[int, int, bytes], None]


class CompactRange:
    """The roots of the complete subtrees covering leaves ``[0, size)``: O(log n) memory.

    ``extend`` takes entry hashes in leaf order; ``on_tile`` (if given) hears every
    completed subtree at a level that is a positive multiple of ``TILE_HEIGHT``, as
    (level, index, hash), so a verifier can compare them with stored ones.
    """

    def __init__(self, on_tile: NodeSink | None = None) -> None:
        self.size = 0
        self._stack: list[bytes] = []
        self._on_tile = on_tile

    @classmethod
    def resume(
        cls, size: int, hashes: Sequence[bytes], on_tile: NodeSink | None = None
    ) -> CompactRange:
        """The range of ``size`` leaves saved as ``hashes`` (see ``hashes``), so a later
        run extends it without reading the leaves again; ValueError when they cannot
        be such a range (one hash per set bit of ``size``, each 32 bytes)."""
        if size < 0 or len(hashes) != size.bit_count():
            raise ValueError(f"a range of {size} leaves has {max(size, 0).bit_count()} hashes")
        if any(type(h) is not bytes or len(h) != HASH_LEN for h in hashes):
            raise ValueError(f"a subtree hash has {HASH_LEN} bytes")
        tree = cls(on_tile)
        tree.size, tree._stack = size, list(hashes)
        return tree

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The complete subtrees' roots, leftmost (largest) first: with ``size``, all
        that ``resume`` needs."""
        return tuple(self._stack)

    def _push(self, level: int, node: bytes) -> None:
        """Add a complete subtree of ``2**level`` leaves at the current end."""
        end = self.size + (1 << level)
        n = self.size >> level
        while n & 1:
            node = node_hash(self._stack.pop(), node)
            n >>= 1
            level += 1
            if self._on_tile is not None and level % TILE_HEIGHT == 0:
                self._on_tile(level, (end >> level) - 1, node)
        self._stack.append(node)
        self.size = end

    def add_subtree(self, level: int, node: bytes) -> None:
        """Append a complete subtree of ``2**level`` leaves hashed elsewhere (level 0: a
        leaf hash); ValueError unless the range's size is a multiple of its width."""
        if self.size & ((1 << level) - 1):
            raise ValueError(f"a subtree of 2**{level} leaves cannot start at leaf {self.size}")
        if level and level % TILE_HEIGHT == 0 and self._on_tile is not None:
            self._on_tile(level, self.size >> level, node)
        self._push(level, node)

    def add_pieces(self, pieces: Iterable[tuple[int, bytes]]) -> None:
        """``add_subtree`` of each (level, hash) of ``subtree_pieces``, in order."""
        push = self._push
        for level, node in pieces:
            if level:
                self.add_subtree(level, node)
            else:  # a leaf fits anywhere
                push(0, node)

    def extend(self, entry_hashes: Iterable[bytes]) -> None:
        """Append leaves; aligned runs of 256 are hashed a level at a time (faster)."""
        self.add_pieces(subtree_pieces(self.size, list(entry_hashes)))

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        r = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            r = node_hash(left, r)
        return r


def subtree_pieces(
    start: int, entry_hashes: Sequence[bytes], cut: int | None = None
) -> list[tuple[int, bytes]]:
    """Leaves ``[start, start + len(entry_hashes))`` as complete subtrees, in order:
    (``TILE_HEIGHT``, tile hash) for every aligned tile of ``2**TILE_HEIGHT`` leaves the
    run holds whole, (0, leaf hash) for the leaves around them.

    ``CompactRange.add_pieces`` appends them as ``extend`` would the entry hashes, so
    the tiles can be hashed where the leaves were read (a verification worker) and
    only ~1/256 of the hashes cross to the process that keeps the range. No piece
    straddles leaf ``cut`` (the caller wants the root of exactly ``cut`` leaves).
    """
    width = 1 << TILE_HEIGHT
    n = len(entry_hashes)
    lead = min(n, -start % width)
    pieces = [(0, leaf) for leaf in leaf_hashes(entry_hashes[:lead])]
    i = lead
    while i + width <= n:
        leaves = leaf_hashes(entry_hashes[i : i + width])
        if cut is not None and start + i < cut < start + i + width:
            pieces += [(0, leaf) for leaf in leaves]
        else:
            pieces.append((TILE_HEIGHT, subtree_of_leaves(leaves)))
        i += width
    pieces += [(0, leaf) for leaf in leaf_hashes(entry_hashes[i:])]
    return pieces
