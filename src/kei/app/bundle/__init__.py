"""Hibernate bundles: the log itself, byte for byte, in one signed ``.tar.zst`` file.

- ``layout``: names, the format version and every limit a reader enforces;
- ``manifest``: the signed manifest (a msgspec Struct) and its signature;
- ``segments``: the framing of stored rows inside segment files;
- ``archive``: the deterministic tar + zstd writer;
- ``reader``: the streaming reader that refuses every unsafe or inconsistent entry (on
  ``adapters/files/tarsafe.py``, the capped tar.zst reader of every archive kei reads);
- ``export`` (with ``spool`` and ``keys``): writing a bundle from a ledger;
- ``digests``: projection digests at a head, rebuilt in a scratch database;
- ``content``, ``checks``, ``replay``, ``report``: verifying a bundle and replaying it
  into a store, all or nothing (the target, staging and placement are ``app/restore``,
  shared with ``kei events import``);
- ``inspect``: checking a bundle without writing anything.

``docs/events.md`` §10 ("Bundles") is the format's contract.
"""
