"""Inclusion and consistency proofs as data: their JSON form, and the offline check.

A proof is worth nothing on its own; ``check_proof`` accepts one only against a
checkpoint whose signature verifies under a verifier key the caller trusts (C2SP
vkey, ``checkpoint.parse_vkey``), whose root line is a Merkle root (tree format), and
whose size and root are the ones the proof names. Everything it needs is in the
proof, the checkpoint(s) and the key: no database.

JSON (one object; hashes base64 like the checkpoint's root line)::

    {"type": "inclusion", "origin", "position", "leaf_index", "tree_size",
     "root_hash", "entry_hash", "hashes": [...]}
    {"type": "consistency", "origin", "old_size", "old_root_hash", "tree_size",
     "root_hash", "hashes": [...]}
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any, Final

import msgspec
from msgspec import Struct

from kei.domain.log.checkpoint import Checkpoint, note_key_id
from kei.domain.log.envelope import HASH_LEN
from kei.domain.log.keys import verify_signature
from kei.domain.log.merkle import leaf_hash, verify_consistency, verify_inclusion
from kei.errors import ProofFormatError
from kei.limits import LIMITS


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class _Proof(Struct, frozen=True, tag_field="type"):
    """What both proofs share: where they come from and their JSON form."""

    origin: str

    def to_dict(self) -> dict[str, Any]:
        """``{"type": tag}`` and then the fields in the order they are declared (the order
        of the JSON above), each hash in base64."""
        doc: dict[str, Any] = {"type": self.__struct_config__.tag}
        for field in msgspec.structs.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bytes):
                value = _b64(value)
            elif isinstance(value, tuple):
                value = [_b64(h) for h in value]
            doc[field.name] = value
        return doc

    def holds(self) -> bool:
        """The proof leads to ``root_hash`` (RFC 9162): an inclusion proof's audit path from
        the entry's leaf, a consistency proof's from the tree of ``old_root_hash``. Any
        other kind holds nothing (fail closed)."""
        if isinstance(self, InclusionProof):
            leaf = leaf_hash(self.entry_hash)
            return verify_inclusion(
                self.leaf_index, self.tree_size, leaf, self.hashes, self.root_hash
            )
        if isinstance(self, ConsistencyProof):
            return verify_consistency(
                self.old_size, self.tree_size, self.old_root_hash, self.root_hash, self.hashes
            )
        return False


class InclusionProof(_Proof, frozen=True, tag="inclusion"):
    position: int
    leaf_index: int
    tree_size: int
    root_hash: bytes
    entry_hash: bytes
    hashes: tuple[bytes, ...]


class ConsistencyProof(_Proof, frozen=True, tag="consistency"):
    old_size: int
    old_root_hash: bytes
    tree_size: int
    root_hash: bytes
    hashes: tuple[bytes, ...]


Proof = InclusionProof | ConsistencyProof


def parse_proof(text: str) -> Proof:
    """Strict: known type, every field present with the right type and length."""
    if len(text.encode()) > LIMITS.max_proof_bytes:
        raise ProofFormatError(f"proof is larger than {LIMITS.max_proof_bytes} bytes")
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ProofFormatError(f"proof is not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ProofFormatError("proof is not a JSON object")
    kind = doc.get("type")
    hashes = _hashes(doc.get("hashes"))
    origin = doc.get("origin")
    if not isinstance(origin, str):
        raise ProofFormatError("proof field 'origin' must be a string")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is not None:
        fields = msgspec.structs.fields(cls)[1:-1]
        values = {f.name: _FIELD_READERS[f.type](doc, f.name) for f in fields}
        return cls(origin=origin, hashes=hashes, **values)
    raise ProofFormatError("proof field 'type' must be 'inclusion' or 'consistency'")


def _count(doc: dict[str, Any], name: str) -> int:
    value = doc.get(name)
    if type(value) is not int or value < 0:
        raise ProofFormatError(f"proof field {name!r} must be a non-negative integer")
    return value


def _decode(value: Any, name: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except binascii.Error:
        raw = b""
    if len(raw) != HASH_LEN:
        raise ProofFormatError(f"proof field {name!r} must hold base64 of {HASH_LEN} bytes")
    return raw


def _hash(doc: dict[str, Any], name: str) -> bytes:
    return _decode(doc.get(name), name)


def _hashes(value: Any) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > LIMITS.max_proof_hashes:
        raise ProofFormatError(
            f"proof field 'hashes' must be a list of at most {LIMITS.max_proof_hashes}"
        )
    return tuple(_decode(v, "hashes") for v in value)


def signed_by_vkey(cp: Checkpoint, vkeys: list[tuple[str, bytes]]) -> bool:
    """True when a signature line of ``cp`` verifies under one of the (name, key) vkeys."""
    message = cp.body.encode()
    for name, note_id, sig in cp.signatures:
        for vname, public_key in vkeys:
            if (
                name == vname
                and note_key_id(vname, public_key) == note_id
                and verify_signature(public_key, message, sig)
            ):
                return True
    return False


def _checkpoint_problem(cp: Checkpoint, vkeys: list[tuple[str, bytes]], what: str) -> str | None:
    if not cp.is_tree:
        return f"{what} predates Merkle roots (its root line is a chain head)"
    if not signed_by_vkey(cp, vkeys):
        return f"{what} has no valid signature by the given verifier key"
    return None


def check_proof(
    proof: Proof, cp: Checkpoint, vkeys: list[tuple[str, bytes]], old: Checkpoint | None = None
) -> str | None:
    """Why ``proof`` does not hold against ``cp`` (and ``old``), or None when it does."""
    label = "the new checkpoint" if old is not None else "the checkpoint"
    problem = _checkpoint_problem(cp, vkeys, label)
    if problem:
        return problem
    if proof.origin != cp.origin:
        return f"the proof is for {proof.origin}, the checkpoint for {cp.origin}"
    if (proof.tree_size, proof.root_hash) != (cp.size, cp.root_hash):
        return (
            f"the proof is for a tree of size {proof.tree_size}, not the checkpoint's "
            f"(size {cp.size}) or its root differs"
        )
    if isinstance(proof, ConsistencyProof):
        if old is None:
            return "a consistency proof needs the old checkpoint too"
        problem = _checkpoint_problem(old, vkeys, "the old checkpoint")
        if problem:
            return problem
        if old.origin != cp.origin:
            return f"the old checkpoint is for {old.origin}, the new one for {cp.origin}"
        if (proof.old_size, proof.old_root_hash) != (old.size, old.root_hash):
            return "the proof starts from another tree than the old checkpoint's"
    if not proof.holds():
        return f"the {proof.to_dict()['type']} proof does not verify (RFC 9162)"
    return None


_KINDS: Final[dict[str, type[Proof]]] = {
    "inclusion": InclusionProof,
    "consistency": ConsistencyProof,
}
"""Each proof's ``type``; its fields between ``origin`` and ``hashes`` are read in order."""
_FIELD_READERS: Final[dict[Any, Callable[[dict[str, Any], str], Any]]] = {int: _count, bytes: _hash}
