"""Pin files: which ledger a store holds, kept outside the store in ``KEI_HOME``.

One small JSON file per store, ``KEI_HOME/pins/<name>.json``, where ``<name>`` is the
first 32 hex digits of SHA-256 over the store's identity: ``sqlite:///`` followed by
the file's real absolute path for SQLite, the redacted URL (``kei.adapters.store.urls``)
for PostgreSQL. Keyed by the store, not by the ledger id, on purpose: a history
rewritten from a new genesis carries a new ledger id of the attacker's choosing, and
must still meet the pin of the store it replaced. Content::

    {"version": 1, "store": "<redacted url>", "ledger_id": "<uuid>",
     "genesis_key": "sha256:<64 hex>"}

Written atomically (temporary file, fsync, rename) with mode 0600 in the 0700
``pins`` folder; never overwritten by kei once written (a pin that is wrong is
fixed by hand: delete the file, then `kei verify-chain` pins again on first use).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from msgspec import Struct

from kei.adapters.files.keyfile import make_private_folder, read_private
from kei.adapters.store.urls import redact_url, sqlite_path
from kei.domain.log.checkpoint import parse_checkpoint
from kei.domain.log.findings import Finding, FindingKind
from kei.domain.log.identity import fingerprint, genesis_of, is_fingerprint, key_matches
from kei.errors import InputError
from kei.limits import LIMITS


class Pin(Struct, frozen=True):
    store: str
    ledger_id: str
    genesis_key: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": 1,
                "store": self.store,
                "ledger_id": self.ledger_id,
                "genesis_key": self.genesis_key,
            },
            indent=2,
        )


class Identity(Struct, frozen=True):
    """What the log says it is: its genesis ledger id and key (None: no valid genesis)."""

    ledger_id: str | None
    genesis_key: bytes | None


def store_identity(url: str) -> str:
    path = sqlite_path(url)
    return redact_url(url) if path is None else "sqlite:///" + os.path.realpath(path)


def pin_path(home: Path, url: str) -> Path:
    digest = hashlib.sha256(store_identity(url).encode()).hexdigest()[:32]
    return home / "pins" / f"{digest}.json"


def read_pin(home: Path, url: str) -> Pin | None:
    """The pin of the store at ``url`` (None: none yet); a malformed one is an InputError."""
    path = pin_path(home, url)
    try:
        body = read_private(path, LIMITS.max_pin_file_bytes)
    except OSError as exc:  # a folder, a device that fails
        raise _bad(path, exc.strerror or str(exc)) from None
    if body is None:
        return None
    try:
        data = json.loads(body.decode("utf-8")) if len(body) <= LIMITS.max_pin_file_bytes else None
    except (UnicodeDecodeError, ValueError):
        data = None
    if (
        not isinstance(data, dict)
        or data.get("version") != 1
        or not isinstance(data.get("ledger_id"), str)
        or not data["ledger_id"]
        or not isinstance(data.get("genesis_key"), str)
        or not is_fingerprint(data["genesis_key"])
    ):
        raise _bad(path, "not a kei pin (version 1, ledger_id, genesis_key sha256:<64 hex>)")
    return Pin(str(data.get("store", "")), data["ledger_id"], data["genesis_key"])


def _bad(path: Path, why: str) -> InputError:
    return InputError(
        f"pin file {path} is unusable: {why}",
        hint="fix it, or delete it to pin the ledger again on the next `kei verify-chain`",
    )


def write_pin(home: Path, url: str, ledger_id: str, genesis_key: bytes) -> Path:
    """Pin the store at ``url``; an existing pin file is left untouched (returned as is)."""
    path = pin_path(home, url)
    make_private_folder(path.parent)
    pin = Pin(redact_url(url), ledger_id, fingerprint(genesis_key))
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, pin.to_json().encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path)  # atomic, and never replaces a pin written meanwhile
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


def identity_findings(
    found: Identity,
    *,
    pin: Pin | None,
    expect_ledger: str | None = None,
    expect_key: str | None = None,
    checkpoint_text: str | None = None,
) -> list[Finding]:
    """``pin-mismatch`` findings of the log's genesis against every outside value given.

    ``expect_key`` is a ``kei.domain.log.identity.key_matcher`` result.
    """
    wants: list[tuple[str, str | None, str | None]] = []  # (source, ledger id, fingerprint)
    if pin is not None:
        wants.append(("the pin in KEI_HOME", pin.ledger_id, pin.genesis_key))
    if expect_ledger is not None:
        wants.append(("--expect-ledger", expect_ledger, None))
    findings: list[Finding] = []
    if checkpoint_text is not None:
        try:
            extensions = parse_checkpoint(checkpoint_text).extensions
        except ValueError:  # malformed: refused before verification, by the checkpoint check
            extensions = ()
        try:
            genesis = genesis_of(extensions)
        except ValueError as exc:
            findings.append(_mismatch(str(exc)))
        else:
            if genesis is not None:
                wants.append(("the checkpoint's kei-genesis line", None, genesis))
    for source, ledger_id, key_fp in wants:
        if ledger_id is not None and found.ledger_id != ledger_id:
            findings.append(
                _mismatch(f"{source} names ledger {ledger_id}; the log's genesis names "
                          f"{found.ledger_id or 'no valid ledger'}")
            )  # fmt: skip
        if key_fp is not None and (
            found.genesis_key is None or fingerprint(found.genesis_key) != key_fp
        ):
            findings.append(_mismatch(f"{source} names genesis key {key_fp}; the log's is "
                                      f"{_shown_key(found)}"))  # fmt: skip
    if expect_key is not None and (
        found.genesis_key is None or not key_matches(expect_key, found.genesis_key)
    ):
        findings.append(
            _mismatch(f"--expect-key does not match the genesis key {_shown_key(found)}")
        )
    return findings


def _shown_key(found: Identity) -> str:
    return "missing" if found.genesis_key is None else fingerprint(found.genesis_key)


def _mismatch(detail: str) -> Finding:
    return Finding(FindingKind.PIN_MISMATCH, None, detail)
