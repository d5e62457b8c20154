"""The Merkle tree of a store: stored subtree hashes, kept lazily, over the chain rows.

Computing a root or a proof from the leaves alone reads every chain row (seconds at a
million events). So the hashes of the complete subtrees of 2**8, 2**16, 2**24, ...
leaves (the C2SP tlog-tiles heights) are stored in ``kei_merkle_nodes`` with the
position of their last leaf. They are written lazily, outside the append
transaction, the first time a root or proof needs them, so appends cost nothing.

The table is a cache anyone with write access can edit, never a source of truth:
``kei verify-chain`` recomputes every stored hash from the chain and reports one that
differs (``stored-tree-hash``), and ``kei prove`` checks each proof it prints against
the root it claims (and the checkpoint's), so an edited row yields an error, never a
proof that verifies for a wrong tree.
"""

from __future__ import annotations

from typing import Any, Final

from kei.adapters.store import EventStore
from kei.adapters.store.base import CHAIN_TABLE, TREE_TABLE
from kei.domain.log.merkle import TILE_HEIGHT, leaf_hash, root, subtree_of_leaves
from kei.errors import LedgerStateError

TILE: Final = 1 << TILE_HEIGHT
BEFORE_ALL: Final = -(2**63)
_PAGE_TILES: Final = 64


def damaged(detail: str) -> LedgerStateError:
    return LedgerStateError(
        f"the log's chain or stored tree is damaged: {detail}",
        hint="run `kei verify-chain` to see where",
    )


def _blob(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise damaged(f"a stored hash is {type(value).__name__}, not bytes")


def head_size(store: EventStore) -> int:
    """The tree size of the log as it is now: one more than the last entry's sequence."""
    rows = store.select(f"SELECT seq FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1")
    if not rows:
        return 0
    if type(rows[0][0]) is not int:
        raise damaged("the last chain entry has no integer sequence")
    return int(rows[0][0]) + 1


def chain_page(store: EventStore, after: int, limit: int) -> list[tuple[int, bytes]]:
    """(position, entry hash) of the chain rows after position ``after``, in order."""
    rows = store.select(
        f"SELECT position, hash FROM {CHAIN_TABLE} WHERE position > ? ORDER BY position LIMIT ?",
        (after, limit),
    )
    return [(int(r[0]), _blob(r[1])) for r in rows]


class StoredTree:
    """A ``NodeSource`` over a store for trees up to ``prepare``'s size."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.size = 0
        self._nodes: dict[tuple[int, int], tuple[bytes, int]] = {}
        self._chunks: dict[int, list[bytes]] = {}

    # -- lazy maintenance ---------------------------------------------------------------

    def prepare(self, size: int) -> None:
        """Make sure every complete stored subtree inside the first ``size`` leaves exists."""
        held: dict[int, tuple[int, int]] = {}
        if size >> TILE_HEIGHT and self.store.has_tree_table():
            rows = self.store.select(
                f"SELECT level, COUNT(*), MAX(idx) FROM {TREE_TABLE} GROUP BY level"
            )
            held = {int(lv): (int(count), int(top)) for lv, count, top in rows}
        level = TILE_HEIGHT
        while size >> level:
            count, top = held.get(level, (0, -1))
            self._extend(level, 0 if count != top + 1 else count, size >> level)
            level += TILE_HEIGHT
        self.size = size

    def _extend(self, level: int, start: int, want: int) -> None:
        """Add the rows ``[start, want)`` of ``level`` (from 0 when the stored ones have gaps)."""
        if start >= want:
            return
        if level == TILE_HEIGHT:
            rows = self._tiles_from_leaves(start, want)
        else:
            rows = self._tiles_from_level(level, start, want)
        self.store.put_tree_nodes(rows)

    def _tiles_from_leaves(self, start: int, want: int) -> list[tuple[int, int, bytes, int]]:
        after = self._last_position(start)
        rows: list[tuple[int, int, bytes, int]] = []
        index = start
        while index < want:
            n = min(_PAGE_TILES, want - index)
            page = chain_page(self.store, after, n * TILE)
            if len(page) < n * TILE:
                raise damaged(f"the chain holds fewer than {want * TILE} entries")
            for t in range(n):
                part = page[t * TILE : (t + 1) * TILE]
                top = subtree_of_leaves([leaf_hash(h) for _, h in part])
                rows.append((TILE_HEIGHT, index + t, top, part[-1][0]))
            index += n
            after = page[-1][0]
        return rows

    def _tiles_from_level(
        self, level: int, start: int, want: int
    ) -> list[tuple[int, int, bytes, int]]:
        below = level - TILE_HEIGHT
        rows: list[tuple[int, int, bytes, int]] = []
        for index in range(start, want):
            children = self._stored_range(below, index * TILE, (index + 1) * TILE)
            top = subtree_of_leaves([h for h, _ in children])
            rows.append((level, index, top, children[-1][1]))
        return rows

    def _last_position(self, tile: int) -> int:
        """The position of the last leaf before leaf-tile ``tile``."""
        return BEFORE_ALL if tile == 0 else self._stored_range(TILE_HEIGHT, tile - 1, tile)[0][1]

    # -- reads --------------------------------------------------------------------------

    def _stored_range(self, level: int, lo: int, hi: int) -> list[tuple[bytes, int]]:
        """Stored rows ``[lo, hi)`` of ``level``; fetched by whole aligned blocks of 256,
        so a proof or root costs a handful of queries (round trips, on PostgreSQL)."""
        if any((level, i) not in self._nodes for i in range(lo, hi)):
            block_lo, block_hi = lo - lo % TILE, -(-hi // TILE) * TILE
            found = self.store.select(
                f"SELECT idx, hash, last_position FROM {TREE_TABLE} "
                "WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx",
                (level, block_lo, block_hi),
            )
            for idx, h, last in found:
                self._nodes[(level, int(idx))] = (_blob(h), int(last))
        try:
            return [self._nodes[(level, i)] for i in range(lo, hi)]
        except KeyError as exc:
            raise damaged(f"stored subtree hash {exc.args[0]} is missing") from exc

    def _chunk(self, chunk: int) -> list[bytes]:
        """The leaf hashes of leaf-tile ``chunk`` (the last one may be partial)."""
        if chunk not in self._chunks:
            n = min(TILE, self.size - chunk * TILE)
            page = chain_page(self.store, self._last_position(chunk), n)
            if len(page) < n:
                raise damaged(f"the chain holds fewer than {self.size} entries")
            self._chunks[chunk] = [leaf_hash(h) for _, h in page]
        return self._chunks[chunk]

    def complete(self, level: int, index: int) -> bytes:
        """The hash of a complete subtree, from stored hashes and at most one leaf tile."""
        if level and level % TILE_HEIGHT == 0:
            return self._stored_range(level, index, index + 1)[0][0]
        base = level - level % TILE_HEIGHT
        lo, hi = index << (level - base), (index + 1) << (level - base)
        if base == 0:
            chunk = lo >> TILE_HEIGHT
            first = chunk * TILE
            return subtree_of_leaves(self._chunk(chunk)[lo - first : hi - first])
        return subtree_of_leaves([h for h, _ in self._stored_range(base, lo, hi)])

    def leaf(self, index: int) -> bytes:
        return self.complete(0, index)

    def root(self) -> bytes:
        return root(self, self.size)


def open_tree(store: EventStore, size: int | None = None) -> StoredTree:
    """A prepared tree of ``size`` leaves (default: the whole log)."""
    tree = StoredTree(store)
    tree.prepare(head_size(store) if size is None else size)
    return tree
