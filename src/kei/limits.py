"""Every size and count kei bounds its input by, in one frozen value.

A bound is a security decision: how much a hostile file, proof, standard input,
batch or ledger may make kei read, hold or report. Kept side by side, they can be
reviewed together, and changing one is a one-line diff here. The shape is
python-tuf's ``UpdaterConfig``: a frozen dataclass whose defaults *are* the limits,
read through the one instance :data:`LIMITS` at the moment of use (so a test can
swap in ``dataclasses.replace(LIMITS, ...)``).

Pure (stdlib only): the domain may import it, like :mod:`kei.errors`
(``tests/domain/test_domain.py`` allows exactly those two outside ``kei.domain``).

Left out on purpose, because they are not choices about input:

- the archive caps of bundles and of the upstream importer (bytes, ratio): their own
  frozen value beside the one tar.zst reader;
- the widths of a format (2^63-1 for a BIGINT, the last µs of year 9999) and the value
  ranges of event fields (money, time: ``domain/events/fields.py``);
- tuning: page, range and batch sizes, the leak prefilter and memo, SQLite's 999
  statement parameters, the zstd levels, the schema versions kei can import.

Example::

    >>> from kei.limits import LIMITS
    >>> LIMITS.max_batch_events
    10000
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["LIMITS", "Limits"]

_KIB: Final = 1024
_MIB: Final = 1024 * _KIB


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds, by what they bound. Bytes are bytes read; chars are characters."""

    # -- what a writer may append (``app/ledger``, ``domain/events/limits.py``) -------
    max_batch_events: int = 10_000
    """Events one ``Ledger.append`` takes (leak notes included)."""
    max_id_chars: int = 256
    """An identifier field of an event (agent id, model, key name, tag...)."""
    max_stream_chars: int = 1_024
    """A stream name."""
    max_path_chars: int = 4_096
    """A file-path field of an event."""
    max_text_chars: int = 1 << 20
    """A free-text field of an event (summary, memory value, trace text)."""
    max_list_items: int = 10_000
    """A tuple field of an event (tags, candidates...)."""
    max_branch_chars: int = 256
    """An agent's branch or parent branch (upstream kei-agent's cap)."""
    max_memory_key_chars: int = 512
    """A memory namespace or key."""
    max_memory_stdin_bytes: int = _MIB
    """A memory value given on standard input (``kei memory write -``)."""
    max_write_attempts: int = 1_000
    """The highest ``KEI_WRITE_ATTEMPTS`` (retries of a write that lost a race)."""

    # -- signed notes and proofs (``domain/log``) ---------------------------------------
    max_note_bytes: int = 16 * _KIB
    """A checkpoint (a signed note), read from a file or parsed."""
    max_note_signatures: int = 16
    """Signature lines on one checkpoint."""
    max_note_extensions: int = 16
    """Extension lines on one checkpoint."""
    max_proof_bytes: int = 64 * _KIB
    """An inclusion or consistency proof, read from a file or standard input, or parsed."""
    max_proof_hashes: int = 128
    """Hashes in one proof."""

    # -- findings kept; the rest are only counted -------------------------------------
    max_range_findings: int = 10_000
    """By one check of a range of rows, when its caller sets no other bound."""
    max_verify_findings: int = 100_000
    """By ``kei verify`` (``verify_store``) for a whole ledger."""
    max_bundle_findings: int = 1_000
    """By a bundle replay or inspection and by ``kei events import``."""
    max_step_backs_classified: int = 1_000
    """Reordered rows ``kei verify`` looks at again to tell a duplicate."""

    # -- files kei reads (``adapters/files``, ``adapters/cli``) ---------------------------
    max_key_file_bytes: int = 64 * _KIB
    """A private key file."""
    max_vkey_file_bytes: int = 4_096
    """A verifier-key file (a vkey is about 100 characters)."""
    max_pin_file_bytes: int = 4_096
    """A ledger pin file."""
    max_checkpoint_state_bytes: int = 64 * _KIB
    """The state file of the last checkpoint signed."""
    max_witness_state_bytes: int = 4_096
    """A witness's state file."""
    max_line_bytes: int = 64 * _MIB
    """One line of a user's file (an export to import, a transcript): large, because
    transcripts carry pasted images inline; it only stops a file without newlines."""
    max_catalog_bytes: int = 4 * _MIB
    """A model-catalog file."""
    max_catalog_models: int = 10_000
    """Models in one catalog file."""
    max_catalog_text_chars: int = 2_000
    """A text field of a catalog entry."""
    max_leak_matrix_bytes: int = 4 * _MIB
    """A leak-matrix file."""
    max_leak_rules: int = 2_000
    """Rules in one leak-matrix file."""
    max_leak_pattern_chars: int = 4_096
    """One leak rule's regular expression."""
    max_leak_text_chars: int = 2_000
    """A text field of a leak rule."""
    max_leak_scan_bytes: int = 32 * _MIB
    """A file or standard input ``kei leaks scan`` reads (a larger file is skipped)."""
    max_gguf_depth: int = 4
    """Folders deep kei looks for GGUF model files."""

    # -- command-line numbers (``adapters/cli/limits.py``) ------------------------------
    max_jobs: int = 256
    """Processes ``kei verify-chain -j`` may start."""
    max_rows: int = 1_000_000_000
    """Rows a listing may ask for (``-n``, ``--limit``, ``-k``, ``--depth``...)."""


LIMITS: Final = Limits()
"""The limits kei runs with."""
