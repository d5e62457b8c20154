"""``kei verify-chain`` and ``kei checkpoint``: audit the log, and pin its head.

Both are thin: parse the flags, call ``kei.app.ledger.verification`` or
``Ledger.checkpoint``, render. Findings are data (stdout, one line each, or one JSON
report with ``--json``); the OK/FAIL summary and the progress bar go to stderr.
Exit codes: 0 clean, 1 findings, 2 usage (bad flag, unreadable or malformed
checkpoint), 3 the store cannot be opened.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer

from kei.adapters.cli.config import Settings
from kei.adapters.cli.context import handled, open_ledger, stderr
from kei.adapters.cli.exits import Exit
from kei.adapters.cli.limits import JOBS_MAX
from kei.adapters.cli.options import Force, JsonObject, OutFile, number
from kei.adapters.cli.output import json_line, progress_bars
from kei.adapters.files.pins import Identity, read_pin, write_pin
from kei.app.ledger.verification import (
    VerifyReport,
    default_jobs,
    read_checkpoint_file,
)
from kei.domain.log.findings import Finding, FindingKind
from kei.domain.log.identity import fingerprint
from kei.errors import InputError


def register(app: typer.Typer) -> None:
    app.command("verify-chain")(verify_chain)
    app.command("checkpoint")(checkpoint)


def verify_chain(
    ctx: typer.Context,
    jobs: Annotated[
        int | None,
        number(
            "--jobs",
            "-j",
            most=JOBS_MAX,
            help="Processes verifying signatures (default: all cores).",
        ),
    ] = None,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="Check the chain, hashes and checkpoint, not every signature."
        ),
    ] = False,
    as_json: JsonObject = False,
    checkpoint_file: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint", metavar="FILE", help="Also prove the log still holds this checkpoint."
        ),
    ] = None,
    witnesses: Annotated[
        list[str] | None,
        typer.Option(
            "--witness",
            metavar="VKEY",
            help="A witness verifier key (text or file) whose cosignature the --checkpoint "
            "must carry; repeat for several.",
        ),
    ] = None,
    quorum: Annotated[
        int | None,
        number("--quorum", help="Valid cosignatures needed (default: all)."),
    ] = None,
    read_models: Annotated[
        bool,
        typer.Option(
            "--read-models",
            help="Also re-fold every read model from the log and compare digests "
            "(as `kei projections verify`).",
        ),
    ] = False,
    expect_ledger: Annotated[
        str | None,
        typer.Option("--expect-ledger", metavar="ID", help="The ledger id the genesis must name."),
    ] = None,
    expect_key: Annotated[
        str | None,
        typer.Option(
            "--expect-key",
            metavar="VKEY",
            help="The genesis key: a verifier key (`kei keys export --vkey`), "
            "sha256:<fingerprint>, hex public key or key id.",
        ),
    ] = None,
) -> None:
    """Re-read every stored byte and report every finding (exit 1 when there are any)."""
    with handled(ctx) as g:
        settings = g.settings()
        if expect_key is not None:
            _key_matcher(expect_key)  # a usage error before the store is opened
        cp_text = None if checkpoint_file is None else read_checkpoint_file(checkpoint_file)
        witness_keys = _witness_keys(witnesses or [], quorum, cp_text)
        pin = read_pin(settings.home, settings.db_url)
        started = time.monotonic()
        with (
            open_ledger(settings, read_only=True) as ledger,
            _progress(ledger.store.max_position()) as tick,
        ):
            found = ledger.identity()
            report = ledger.verify(
                jobs=jobs or default_jobs(),
                quick=quick,
                checkpoint=cp_text,
                progress=tick,
                pin=pin,
                expect_ledger=expect_ledger,
                expect_key=expect_key,
            )
        if cp_text is not None and witness_keys:
            report.add(_quorum_findings(cp_text, witness_keys, quorum))
        _render(report, as_json=as_json, seconds=time.monotonic() - started)
        if pin is None and report.ok:
            _pin_on_first_use(settings, found)
        models_ok = _read_models(settings, as_json=as_json) if read_models and report.ok else True
    raise typer.Exit(int(Exit.OK if report.ok and models_ok else Exit.FINDINGS))


def _witness_keys(
    values: list[str], quorum: int | None, cp_text: str | None
) -> list[tuple[str, bytes]]:
    """The parsed ``--witness`` keys; usage errors for flags that cannot work together."""
    from kei.adapters.cli.proof_args import WITNESS_KEYS, read_vkeys

    if (values or quorum is not None) and cp_text is None:
        raise InputError("--witness and --quorum need --checkpoint FILE")
    if quorum is not None and not values:
        raise InputError("--quorum needs at least one --witness VKEY")
    keys = read_vkeys(values, WITNESS_KEYS)
    if quorum is not None and quorum > len(set(keys)):
        raise InputError(
            f"--quorum {quorum} is more than the {len(set(keys))} distinct witnesses given"
        )
    return keys


def _quorum_findings(
    cp_text: str, keys: list[tuple[str, bytes]], quorum: int | None
) -> list[Finding]:
    """A ``witness-quorum`` finding when fewer than ``quorum`` witnesses cosigned."""
    from kei.domain.log.checkpoint import parse_checkpoint
    from kei.domain.log.cosignature import cosigned_by

    body = parse_checkpoint(cp_text).body
    distinct = sorted(set(keys))
    need = len(distinct) if quorum is None else quorum
    missing = [name for name, key in distinct if cosigned_by(cp_text, body, name, key) is None]
    if len(distinct) - len(missing) >= need:
        return []
    detail = (
        f"the checkpoint has {len(distinct) - len(missing)} valid witness cosignature(s), "
        f"{need} needed; missing or invalid: {', '.join(missing)}"
    )
    return [Finding(FindingKind.WITNESS_QUORUM, None, detail)]


def _key_matcher(spec: str) -> str:
    from kei.domain.log.identity import key_matcher

    try:
        return key_matcher(spec)
    except ValueError as exc:
        raise InputError(f"--expect-key: {exc}", hint="see `kei keys export --vkey`") from None


def _pin_on_first_use(settings: Settings, found: Identity) -> None:
    """Trust on first use: a clean ledger with no pin yet is pinned as it is now."""
    if found.ledger_id is None or found.genesis_key is None:
        return
    try:
        path = write_pin(settings.home, settings.db_url, found.ledger_id, found.genesis_key)
    except OSError as exc:
        stderr().print(f"kei: warning: could not pin ledger {found.ledger_id}: {exc}", markup=False)
        return
    stderr().print(
        f"kei: pinned ledger {found.ledger_id} (genesis key {fingerprint(found.genesis_key)}) "
        f"in {path} on first use",
        markup=False,
    )


def _read_models(settings: Settings, *, as_json: bool) -> bool:
    """``--read-models``: the live read models against a fold of the (verified) log."""
    from kei.adapters.cli.commands.projections_cmd import show_audits
    from kei.app.read_model_audit import audit_read_models

    with open_ledger(settings) as ledger:
        audits = audit_read_models(ledger)
    return show_audits(audits, as_json=as_json)


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr, only when stderr is a terminal."""
    with progress_bars() as bars:
        yield None if bars is None else (lambda n: bars("verifying", n, total))


def _render(report: VerifyReport, *, as_json: bool, seconds: float) -> None:
    if as_json:
        json_line(report.to_dict())
        return
    for finding in report.findings:
        sys.stdout.write(f"{finding}\n")
    sys.stdout.flush()
    err = stderr()
    if report.ok:
        head = "none" if report.head_hash is None else "sha256:" + report.head_hash.hex()
        what = "--quick: chain and hashes only" if report.quick else "chain, hashes and signatures"
        against = (
            f"; matches checkpoint of {report.checkpoint['size']}" if report.checkpoint else ""
        )
        err.print(
            f"kei: OK: {_n(report.events_checked, 'event')} verified ({what}) in {seconds:.1f} s; "
            f"head {head}{against}",
            markup=False,
        )
        return
    total = len(report.findings) + report.findings_omitted
    more = f" ({report.findings_omitted} not listed)" if report.findings_omitted else ""
    err.print(
        f"kei: FAIL: {_n(total, 'finding')} in {_n(report.events_checked, 'event')}{more}",
        markup=False,
    )


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def checkpoint(
    ctx: typer.Context,
    out: OutFile = None,
    force: Force = False,
) -> None:
    """Write a signed C2SP checkpoint of the log as it is now (origin, size, head hash)."""
    from kei.adapters.files.safe_output import check_output, shown, write_bytes

    with handled(ctx) as g:
        settings = g.settings()
        to_file = out is not None and out != "-"
        protected = settings.protected()
        if out is not None and to_file:
            check_output(out, protected, force=force)  # before signing anything
        with open_ledger(settings, with_key=True) as ledger:
            text = ledger.checkpoint()
        if out is None or not to_file:
            sys.stdout.write(text)
            return
        write_bytes(out, protected, text.encode("utf-8"), force=force)
        size = text.split("\n", 2)[1]
        noun = "event" if size == "1" else "events"
        stderr().print(f"kei: wrote a checkpoint of {size} {noun} to {shown(out)}", markup=False)
