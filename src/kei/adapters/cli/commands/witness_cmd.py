"""``kei witness``: cosign other ledgers' checkpoints, only ever along one history.

A witness holds its own key (a kei key file) and a state folder; it never opens a
database. ``cosign`` checks the checkpoint's signature under the log's verifier key,
checks that it extends the last checkpoint it cosigned for that origin (the same size
and root, or a consistency proof from that one), records the new size and root, and
only then adds its C2SP cosignature line. Exit codes: 0 cosigned, 1 refused (the
checkpoint does not extend what the witness saw, or its signature is wrong), 2 usage.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kei.adapters.cli.context import command_group, handled, stderr
from kei.adapters.cli.options import Force, OutFile
from kei.errors import InputError, KeyFileError, VerificationError

if TYPE_CHECKING:
    from kei.adapters.files.witness_state import Seen
    from kei.domain.log.checkpoint import Checkpoint
    from kei.domain.log.keys import SigningKey

witness_app, register = command_group(
    "witness", "Cosign checkpoints of other ledgers (C2SP tlog-cosignature)."
)
DEFAULT_KEY = "witness.key"


def _key_path(ctx: typer.Context, key: Path | None) -> Path:
    if key is not None:
        return key
    from kei.adapters.cli.global_options import Globals

    globals_ = ctx.find_object(Globals)
    if globals_ is None:  # pragma: no cover - the app always sets it
        raise InputError("no settings", hint="pass --key FILE")
    return globals_.settings().keys_dir / DEFAULT_KEY


KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key", metavar="FILE", help="The witness key file (default: KEI_HOME/keys/witness.key)."
    ),
]


@witness_app.command("init")
def init(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Option(
            "--name", metavar="NAME", help="The witness name (e.g. example.com/witness1)."
        ),
    ],
    key: KeyOption = None,
) -> None:
    """Make a new witness key (0600) and print its verifier key."""
    from kei.adapters.files.keyfile import write_key
    from kei.domain.log.cosignature import check_name
    from kei.domain.log.keys import SigningKey

    with handled(ctx):
        try:
            check_name(name)
        except ValueError as exc:
            raise InputError(str(exc), hint="use a name like example.com/witness1") from exc
        path = _key_path(ctx, key)
        new = SigningKey.generate(name=name)
        write_key(path, new)
        _print_vkey(new)
        stderr().print(f"kei: wrote witness key {path}", markup=False)


@witness_app.command("vkey")
def vkey(ctx: typer.Context, key: KeyOption = None) -> None:
    """Print the witness's verifier key (give it to those who check its cosignatures)."""
    with handled(ctx):
        _print_vkey(_load(_key_path(ctx, key)))


def _load(path: Path) -> SigningKey:
    from kei.adapters.files.keyfile import load_key
    from kei.domain.log.cosignature import check_name

    found = load_key(path)
    try:
        check_name(found.name)
    except ValueError as exc:
        raise KeyFileError(
            f"key file {path} has no usable witness name",
            hint="make a witness key with `kei witness init --name NAME`",
        ) from exc
    return found


def _print_vkey(key: SigningKey) -> None:
    from kei.domain.log.cosignature import witness_vkey

    sys.stdout.write(witness_vkey(key.name, key.public_key) + "\n")


@witness_app.command("cosign")
def cosign(
    ctx: typer.Context,
    checkpoint_file: Annotated[
        Path, typer.Argument(metavar="CHECKPOINT", help="The checkpoint to cosign.")
    ],
    log_vkey: Annotated[
        str, typer.Option("--vkey", metavar="VKEY", help="The log's verifier key (text or file).")
    ],
    state: Annotated[
        Path, typer.Option("--state", metavar="DIR", help="The witness's state folder.")
    ],
    proof_file: Annotated[
        str | None,
        typer.Option(
            "--proof",
            metavar="FILE",
            help="Consistency proof from the last cosigned size (`kei prove consistency --json`).",
        ),
    ] = None,
    key: KeyOption = None,
    out: OutFile = None,
    force: Force = False,
) -> None:
    """Check a checkpoint extends what this witness saw, and add its cosignature."""
    from kei.adapters.cli.proof_args import LOG_KEYS, read_vkeys
    from kei.adapters.files.safe_output import check_output, shown, write_bytes
    from kei.adapters.files.witness_state import Seen, locked
    from kei.app.ledger.verification import read_checkpoint_file
    from kei.domain.log.checkpoint import parse_checkpoint
    from kei.domain.log.cosignature import cosignature_line
    from kei.domain.log.proofs import signed_by_vkey

    with handled(ctx) as g:
        signer = _load(_key_path(ctx, key))
        protected = g.settings().protected()
        to_file = out is not None and out != "-"
        if out is not None and to_file:
            check_output(out, protected, force=force)
        text = read_checkpoint_file(checkpoint_file)
        cp = parse_checkpoint(text)
        vkeys = read_vkeys([log_vkey], LOG_KEYS)
        if vkeys[0][0] != cp.origin:
            raise InputError(
                f"the verifier key is for {vkeys[0][0]}, the checkpoint for {cp.origin}",
                hint="pass the vkey `kei keys export --vkey` prints on that ledger",
            )
        if not cp.is_tree:
            raise InputError(
                "the checkpoint's root line is a chain head, not a Merkle root",
                hint="write a new one with `kei checkpoint`",
            )
        if not signed_by_vkey(cp, vkeys):
            raise VerificationError(
                "refused: the checkpoint has no valid signature by the given verifier key",
                kind="witness",
            )
        with locked(state) as st:
            _check_extends(st.get(cp.origin), cp, proof_file)
            st.put(Seen(cp.origin, cp.size, cp.root_hash))
            line = cosignature_line(cp.body, signer.name, signer, int(time.time()))
        cosigned = text + line
        if not to_file:
            sys.stdout.write(cosigned)
            return
        assert out is not None
        write_bytes(out, protected, cosigned.encode(), force=force)
        stderr().print(f"kei: cosigned {cp.origin} at {cp.size}: {shown(out)}", markup=False)


def _check_extends(seen: Seen | None, cp: Checkpoint, proof_file: str | None) -> None:
    """Refuse (VerificationError) a checkpoint that does not extend ``seen``."""
    if seen is None or seen.size == 0:
        return  # trust on first use
    if cp.size < seen.size:
        _refuse(f"it covers {cp.size} entries, fewer than the {seen.size} already cosigned")
    if cp.size == seen.size:
        if cp.root_hash != seen.root_hash:
            _refuse(f"its root differs from the one cosigned at the same size {cp.size}: a fork")
        return
    if proof_file is None:
        raise InputError(
            f"the witness last cosigned {cp.origin} at size {seen.size}; "
            "a consistency proof from there is needed",
            hint=f"pass --proof FILE from `kei prove consistency --from <checkpoint of "
            f"{seen.size}> --json` on that ledger",
        )
    _check_proof(seen, cp, proof_file)


def _check_proof(seen: Seen, cp: Checkpoint, proof_file: str) -> None:
    from kei.adapters.cli.proof_args import read_proof
    from kei.domain.log.proofs import ConsistencyProof, parse_proof
    from kei.errors import ProofFormatError

    try:
        proof = parse_proof(read_proof(proof_file))
    except ProofFormatError as exc:
        raise InputError(f"proof {proof_file} is malformed: {exc}") from exc
    if not isinstance(proof, ConsistencyProof) or proof.origin != cp.origin:
        raise InputError(f"proof {proof_file} is not a consistency proof for {cp.origin}")
    if (proof.tree_size, proof.root_hash) != (cp.size, cp.root_hash):
        _refuse("the proof does not end at this checkpoint's size and root")
    if (proof.old_size, proof.old_root_hash) != (seen.size, seen.root_hash):
        _refuse(f"the proof does not start from the tree this witness cosigned at size {seen.size}")
    if not proof.holds():
        _refuse("the consistency proof does not verify: the log was rewritten (a fork)")


def _refuse(why: str) -> None:
    raise VerificationError(f"refused: {why}", kind="witness")
