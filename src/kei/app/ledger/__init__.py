"""The ledger: kei's public, embeddable face, and the paths it owns: appending (sealing,
the leak guard, retries), verification, following the log, the Merkle tree of a store,
checkpoints and proofs, and signed heads carried in bundles and JSON lines.
"""
