"""The tamper-evident log itself: the envelope's bytes, keys and the key ring, signed heads,
the Merkle tree, checkpoints, cosignatures, proofs, and the pure verifier over raw rows.
"""
