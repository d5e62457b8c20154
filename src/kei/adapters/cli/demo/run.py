"""What the steps of ``kei demo`` share: the throwaway folder, the ledger, the console,
and what earlier steps made; and how a verification report is told."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from msgspec import Struct
from rich.console import Console

from kei.adapters.cli import config

if TYPE_CHECKING:
    from kei.app.ledger.ledger import Ledger
    from kei.app.ledger.verification import VerifyReport
    from kei.domain.catalog.catalog import Catalog


class DemoRun(Struct):
    """What the steps share: the folder, the ledger, and what earlier steps made."""

    folder: Path
    out: Console
    ledger: Ledger | None = None
    tampered: Path | None = None
    kept: bool = False

    @property
    def settings(self) -> config.Settings:
        return config.resolve({"KEI_HOME": str(self.folder)})

    @property
    def url(self) -> str:
        return self.settings.db_url

    def catalog(self) -> Catalog:
        from kei.adapters.files.catalog import load_catalog

        return load_catalog(self.folder)

    def open(self) -> Ledger:
        assert self.ledger is not None, "step_init runs first"
        return self.ledger

    def say(self, text: str) -> None:
        self.out.print(text, markup=False)


def say_report(run: DemoRun, what: str, report: VerifyReport) -> None:
    """``kei verify-chain``'s verdict in one line, then each finding."""
    if report.ok:
        run.say(f"[verify] {what}: {report.events_checked} events, chain and signatures OK")
        return
    run.say(f"[verify] {what}: {len(report.findings)} findings")
    for finding in report.findings:
        run.say(f"  {finding}")


def step_next(run: DemoRun) -> None:
    """What to run next: on this ledger when it was kept, else on one of your own."""
    run.say("next:")
    if run.kept:
        run.say(f"  export KEI_HOME={run.folder}   # this demo's ledger, then:")
        run.say("  kei agent tree orchestrator; kei cost report --by model; kei events tail -f")
    else:
        run.say("  kei demo --keep DIR     # the same run, its ledger kept to explore")
    run.say("  kei init                # your own ledger in ~/.kei (or $KEI_HOME)")
    run.say("  kei agent fork ID BRANCH; kei cost record ID --provider P --model M "
            "--tokens-in N --tokens-out N; kei agent tree ID")  # fmt: skip
    run.say("  kei --help              # every command; docs/cli.md has examples")
