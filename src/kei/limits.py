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

from typing import Final

from msgspec import Struct

__all__ = ["LIMITS", "Limits"]

_KIB: Final = 1024
_MIB: Final = 1024 * _KIB


class Limits(Struct, frozen=True):
    """The bounds, by what they bound: bytes are bytes read, chars are characters.

    The three findings caps differ on purpose: ``kei verify`` reports on a whole
    ledger; a bundle or an import needs only its first findings to be refused; one
    check of a range of rows keeps its own default when its caller sets no other cap.
    """

    # -- what a writer may append (``app/ledger``, ``domain/events``) ------------------
    max_batch_events: int = 10_000  # one ``Ledger.append``, leak notes included
    max_id_chars: int = 256  # an identifier field: agent id, model, key name, tag...
    max_stream_chars: int = 1_024  # a stream name
    max_path_chars: int = 4_096  # a file-path field
    max_text_chars: int = 1 << 20  # a free-text field: summary, memory value, trace text
    max_list_items: int = 10_000  # a tuple field: tags, candidates...
    max_branch_chars: int = 256  # an agent's branch or parent branch (upstream kei-agent)
    max_memory_key_chars: int = 512  # a memory namespace or key
    max_memory_stdin_bytes: int = _MIB  # a memory value on stdin (``kei memory write -``)
    max_write_attempts: int = 1_000  # the highest ``KEI_WRITE_ATTEMPTS``

    # -- signed notes and proofs (``domain/log``) ---------------------------------------
    max_note_bytes: int = 16 * _KIB  # a checkpoint (signed note), read or parsed
    max_note_signatures: int = 16  # signature lines on one checkpoint
    max_note_extensions: int = 16  # extension lines on one checkpoint
    max_proof_bytes: int = 64 * _KIB  # a proof, read from a file or stdin, or parsed
    max_proof_hashes: int = 128  # hashes in one proof

    # -- findings kept (the rest are only counted) ------------------------------------
    max_range_findings: int = 10_000  # one check of a range of rows, by default
    max_verify_findings: int = 100_000  # ``kei verify`` over a whole ledger
    max_bundle_findings: int = 1_000  # a bundle replay or inspection, ``kei events import``
    max_step_backs_classified: int = 1_000  # reordered rows re-read to tell a duplicate

    # -- what verification holds in memory (``app/ledger``) -----------------------------
    max_streams_held: int = 100_000
    """Streams whose last version ``verify-chain --quick`` keeps, to check every
    stream's versions in position order as the ranges are read; a log with more streams
    gets the pass along the (stream, version) index instead, so memory stays flat."""

    # -- files kei reads (``adapters/files``, ``adapters/cli``) ---------------------------
    max_key_file_bytes: int = 64 * _KIB  # a private key file
    max_vkey_file_bytes: int = 4_096  # a verifier-key file (a vkey is ~100 characters)
    max_pin_file_bytes: int = 4_096  # a ledger pin file
    max_checkpoint_state_bytes: int = 64 * _KIB  # the last signed checkpoint's state file
    max_witness_state_bytes: int = 4_096  # a witness's state file
    max_line_bytes: int = 64 * _MIB  # a line of an export or transcript; images come inline
    max_transcript_bytes: int = 4 * 1024 * _MIB  # a Claude Code transcript ``kei import`` reads
    max_catalog_bytes: int = 4 * _MIB  # a model-catalog file
    max_catalog_models: int = 10_000  # models in one catalog file
    max_catalog_text_chars: int = 2_000  # a text field of a catalog entry
    max_catalog_list_items: int = 100  # a list in a catalog entry (capabilities, aliases...)
    max_leak_matrix_bytes: int = 4 * _MIB  # a leak-matrix file
    max_leak_rules: int = 2_000  # rules in one leak-matrix file
    max_leak_pattern_chars: int = 4_096  # one leak rule's regular expression
    max_leak_text_chars: int = 2_000  # a text field of a leak rule
    max_leak_scan_bytes: int = 32 * _MIB  # a file or stdin ``kei leaks scan`` reads
    max_gguf_depth: int = 4  # folders deep kei looks for GGUF model files

    # -- archives kei reads (``adapters/files/tarsafe.py``) -------------------------------
    max_archive_bytes: int = 64 * 1024 * _MIB
    """What any tar.zst kei reads (its own bundles, upstream kei-hibernate bundles) may
    decompress to, in all: far above any real bundle (a kit, or a ledger's segments),
    so only a bomb reaches it. No ratio cap: a real file of zeros compresses 10,000 to
    1, so a ratio tells a bomb from a sparse file no better than a coin."""
    max_archive_window_bytes: int = 128 * _MIB  # the zstd window one frame may claim
    archive_slack_bytes: int = 64 * _MIB  # past a kei bundle's declared size (non-strict)

    # -- command-line numbers (``adapters/cli/limits.py``) ------------------------------
    max_jobs: int = 256  # processes ``kei verify-chain -j`` may start
    max_rows: int = 1_000_000_000  # rows a listing may ask for (``-n``, ``--limit``...)


LIMITS: Final = Limits()
"""The limits kei runs with."""
