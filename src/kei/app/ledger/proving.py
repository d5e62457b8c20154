"""Inclusion and consistency proofs from a store, each checked before it is handed out.

The tree comes from ``app/ledger/merkle_tree.py`` (stored subtree hashes plus at most a
few hundred chain rows). Stored hashes are a cache, so every proof is verified here
against the root it names, and that root against the checkpoint given: an edited or
stale cache row makes ``kei prove`` fail with a hint to run ``kei verify-chain``, it
never produces a proof for a tree the log does not hold.
"""

from __future__ import annotations

from kei.adapters.store import EventStore
from kei.adapters.store.base import CHAIN_TABLE
from kei.app.ledger.merkle_tree import StoredTree, damaged, head_size
from kei.domain.log.checkpoint import Checkpoint
from kei.domain.log.merkle import consistency_proof, inclusion_proof, leaf_hash, root
from kei.domain.log.proofs import ConsistencyProof, InclusionProof
from kei.errors import InputError, VerificationError


def _usable(cp: Checkpoint, ledger_id: str, what: str = "checkpoint") -> None:
    if cp.origin != ledger_id:
        raise InputError(
            f"the {what} is for ledger {cp.origin}, not {ledger_id}",
            hint="pass a checkpoint written by `kei checkpoint` on this ledger",
        )
    if not cp.is_tree:
        raise InputError(
            f"the {what} predates Merkle roots (its root line is a chain head)",
            hint="write a new one with `kei checkpoint`",
        )


def _holds(tree: StoredTree, size: int, cp: Checkpoint, what: str) -> bytes:
    found = root(tree, size)
    if found != cp.root_hash:
        raise VerificationError(
            f"the first {size} entries of the log no longer have the {what}'s root; "
            f"run `kei verify-chain --checkpoint` with it",
            kind="forked",
        )
    return found


def prove_inclusion(
    store: EventStore, ledger_id: str, position: int, cp: Checkpoint | None = None
) -> InclusionProof:
    """The audit path of the event at ``position`` in the tree of ``cp`` (default: now)."""
    if cp is not None:
        _usable(cp, ledger_id)
    size = head_size(store) if cp is None else cp.size
    rows = store.select(f"SELECT seq, hash FROM {CHAIN_TABLE} WHERE position = ?", (position,))
    if not rows:
        raise InputError(
            f"no event at position {position}", hint="see `kei events tail` for positions"
        )
    seq, entry_hash = rows[0]
    if type(seq) is not int or not isinstance(entry_hash, bytes):
        raise damaged(f"the chain entry at position {position} is mangled")
    if seq >= size:
        raise InputError(
            f"the event at position {position} (leaf {seq}) is not in a tree of {size} entries",
            hint="write a newer checkpoint with `kei checkpoint`",
        )
    tree = StoredTree(store)
    tree.prepare(size)
    if tree.leaf(seq) != leaf_hash(entry_hash):
        raise damaged(f"leaf {seq} of the tree is not the entry at position {position}")
    tree_root = tree.root() if cp is None else _holds(tree, size, cp, "checkpoint")
    proof = InclusionProof(
        ledger_id, position, seq, size, tree_root, entry_hash,
        tuple(inclusion_proof(tree, seq, size)),
    )  # fmt: skip
    if not proof.holds():
        raise damaged(f"the inclusion proof of leaf {seq} does not verify")
    return proof


def prove_consistency(
    store: EventStore, ledger_id: str, old: Checkpoint, new: Checkpoint | None = None
) -> ConsistencyProof:
    """The proof that the tree of ``new`` (default: the log now) extends that of ``old``."""
    _usable(old, ledger_id, "old checkpoint")
    if new is not None:
        _usable(new, ledger_id, "new checkpoint")
    size = head_size(store) if new is None else new.size
    if old.size > size:
        raise InputError(
            f"the old checkpoint covers {old.size} entries, more than the new one's {size}",
            hint="swap --from and --to",
        )
    tree = StoredTree(store)
    tree.prepare(size)
    old_root = _holds(tree, old.size, old, "old checkpoint")
    new_root = tree.root() if new is None else _holds(tree, size, new, "new checkpoint")
    return _consistency(tree, ledger_id, (old.size, old_root), (size, new_root))


def prove_growth(store: EventStore, ledger_id: str, first: int) -> ConsistencyProof:
    """The proof that the log now extends its own first ``first`` entries, for a client
    that holds a checkpoint of that size and checks its root against the proof's."""
    size = head_size(store)
    if not 0 < first <= size:
        raise InputError(
            f"first must be between 1 and the log's {size} entries, got {first}",
            hint="pass the size of a checkpoint you hold",
        )
    tree = StoredTree(store)
    tree.prepare(size)
    return _consistency(tree, ledger_id, (first, root(tree, first)), (size, tree.root()))


def _consistency(tree: StoredTree, ledger_id: str, old: tuple[int, bytes],
                 new: tuple[int, bytes]) -> ConsistencyProof:  # fmt: skip
    """The proof between two (size, root) trees of ``tree``, checked before it is given."""
    proof = ConsistencyProof(
        ledger_id, old[0], old[1], new[0], new[1],
        tuple(consistency_proof(tree, old[0], new[0])),
    )  # fmt: skip
    if not proof.holds():
        raise damaged(f"the consistency proof from {old[0]} to {new[0]} does not verify")
    return proof
