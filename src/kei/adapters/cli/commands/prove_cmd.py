"""``kei prove inclusion|consistency`` and ``kei verify-proof``: Merkle proofs.

Proving reads the store (``kei.app.ledger.proving``); checking a proof needs only the
proof, the checkpoint(s) and a verifier key (``kei.domain.log.proofs``), never the store,
so an outsider holding a checkpoint can run it. Exit codes: 0 the proof holds, 1 it
does not, 2 usage (bad file, wrong ledger, sizes), 3 the store cannot be opened.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kei.adapters.cli.context import command_group, handled, open_ledger, stderr
from kei.adapters.cli.limits import INT64_MAX
from kei.adapters.cli.options import JsonObject
from kei.adapters.cli.output import json_line
from kei.errors import InputError, VerificationError

if TYPE_CHECKING:
    from kei.domain.log.checkpoint import Checkpoint
    from kei.domain.log.proofs import Proof

prove_app, _register_prove = command_group(
    "prove", "Prove an event is in the log, or that the log only grew since a checkpoint."
)

# kei prove inclusion
Position = Annotated[
    int,
    typer.Argument(
        metavar="POSITION", min=1, max=INT64_MAX, help="The event's position in the log."
    ),
]
Against = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint", metavar="FILE", help="Prove against this checkpoint (default: now)."
    ),
]
# kei prove consistency
Older = Annotated[Path, typer.Option("--from", metavar="OLD", help="The older checkpoint.")]
Newer = Annotated[
    Path | None,
    typer.Option("--to", metavar="NEW", help="The newer checkpoint (default: the log now)."),
]
# kei verify-proof
ProofArg = Annotated[
    str, typer.Argument(metavar="PROOF", help="A proof from `kei prove ... --json`, or -.")
]
ProvenCheckpoint = Annotated[
    Path, typer.Option("--checkpoint", metavar="FILE", help="The checkpoint the proof is for.")
]
Vkeys = Annotated[
    list[str],
    typer.Option(
        "--vkey", metavar="VKEY", help="A verifier key (text or file); repeat for several."
    ),
]
ProvenOlder = Annotated[
    Path | None,
    typer.Option("--from", metavar="OLD", help="The older checkpoint (consistency proofs)."),
]


def register(app: typer.Typer) -> None:
    _register_prove(app)
    app.command("verify-proof")(verify_proof)


def _checkpoint(path: Path) -> Checkpoint:
    from kei.app.ledger.verification import read_checkpoint_file
    from kei.domain.log.checkpoint import parse_checkpoint

    return parse_checkpoint(read_checkpoint_file(path))


def _verdict(proof: Proof, cp: Checkpoint, problem: str | None) -> dict[str, object]:
    """``verify-proof --json``: whether the proof holds, and what it proves."""
    from kei.domain.log.proofs import ConsistencyProof

    what: dict[str, object] = (
        {"proof": "consistency", "old_size": proof.old_size}
        if isinstance(proof, ConsistencyProof)
        else {"proof": "inclusion", "position": proof.position, "leaf_index": proof.leaf_index}
    )
    return {"ok": problem is None, **what, "tree_size": proof.tree_size,
            "origin": cp.origin, "problem": problem}  # fmt: skip


def _emit(proof: Proof, as_json: bool) -> None:
    doc = proof.to_dict()
    if as_json:
        sys.stdout.write(json.dumps(doc) + "\n")
        return
    lines = [f"{k} {v}" for k, v in doc.items() if k != "hashes"]
    lines.append(f"hashes {len(doc['hashes'])}")
    lines.extend(doc["hashes"])
    sys.stdout.write("\n".join(lines) + "\n")


@prove_app.command("inclusion")
def inclusion(
    ctx: typer.Context,
    position: Position,
    checkpoint_file: Against = None,
    as_json: JsonObject = False,
) -> None:
    """Print the audit path of one event: leaf index, tree size, root and hashes."""
    from kei.app.ledger.proving import prove_inclusion

    with handled(ctx) as g:
        settings = g.settings()
        cp = None if checkpoint_file is None else _checkpoint(checkpoint_file)
        with open_ledger(settings) as ledger:
            proof = prove_inclusion(ledger.store, ledger.ledger_id, position, cp)
        _emit(proof, as_json)


@prove_app.command("consistency")
def consistency(
    ctx: typer.Context, old_file: Older, new_file: Newer = None, as_json: JsonObject = False
) -> None:
    """Print the proof that the log of NEW (or now) extends the log of OLD."""
    from kei.app.ledger.proving import prove_consistency

    with handled(ctx) as g:
        settings = g.settings()
        old = _checkpoint(old_file)
        new = None if new_file is None else _checkpoint(new_file)
        with open_ledger(settings) as ledger:
            proof = prove_consistency(ledger.store, ledger.ledger_id, old, new)
        _emit(proof, as_json)


def verify_proof(
    ctx: typer.Context,
    proof_file: ProofArg,
    checkpoint_file: ProvenCheckpoint,
    vkey_values: Vkeys,
    old_file: ProvenOlder = None,
    as_json: JsonObject = False,
) -> None:
    """Check a proof against a signed checkpoint and a verifier key, without the database."""
    from kei.adapters.cli.proof_args import LOG_KEYS, read_proof, read_vkeys
    from kei.domain.log.proofs import ConsistencyProof, check_proof, parse_proof
    from kei.errors import ProofFormatError

    with handled(ctx):
        vkeys = read_vkeys(vkey_values, LOG_KEYS)
        cp = _checkpoint(checkpoint_file)
        old = None if old_file is None else _checkpoint(old_file)
        try:
            proof = parse_proof(read_proof(proof_file))
        except ProofFormatError as exc:
            raise InputError(
                f"proof {proof_file} is malformed: {exc}", hint="write one with `kei prove --json`"
            ) from exc
        if isinstance(proof, ConsistencyProof) and old is None:
            raise InputError(
                "a consistency proof needs the old checkpoint", hint="pass --from OLD.ckpt"
            )
        problem = check_proof(proof, cp, vkeys, old)
        if as_json:  # also when it does not hold: then exit 1, the reason on stderr too
            json_line(_verdict(proof, cp, problem))
        if problem:
            raise VerificationError(f"the proof does not hold: {problem}", kind="proof")
        what = (
            f"entry at position {proof.position} (leaf {proof.leaf_index}) is in"
            if not isinstance(proof, ConsistencyProof)
            else f"the log of {proof.old_size} entries is a prefix of"
        )
        stderr().print(
            f"kei: OK: {what} the log of {proof.tree_size} entries signed for {cp.origin}",
            markup=False,
        )
