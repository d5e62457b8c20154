"""The gap report and the plan as text: upstream's markdown, byte for byte, and JSON.

The gap report is upstream's ``render_gap_report``: confident matches (best match
≥ 0.5) by confidence, weak signals (best 0.3–0.5) by confidence, unmatched modules
by name, then upstream's three next steps (which name upstream's ``skeleton``
subcommand; kept so the text stays upstream's). Two differences, both facts upstream
got wrong: the LOC shown is source lines (code, not comments or blanks) of the
module's own source files, not every file's bytes / 40; and manifests that could not
be read, which aborted upstream's run, are listed in a section of their own before
the next steps when there are any.

The plan is upstream's ``plan_render`` layout; its instructions name kei's commands
(upstream's named its ``execute`` and ``skeleton`` subcommands), the unmatched
section states the threshold (upstream printed the average confidence in its place),
and a forked phase shows its agent in the status column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from msgspec import Struct

from kei.domain.project.facts import ModuleFacts
from kei.domain.project.plan import Plan
from kei.domain.project.traits import TraitScore

_EMPTY_ROW = "| — | — | — | — |\n"


def gap_report(project: str, modules: Sequence[ModuleFacts]) -> str:
    """Upstream's markdown gap report of ``modules``."""
    readable = [m for m in modules if m.error is None]
    out = [f"# {project} \u2014 kei-import gap report\n\n"]
    out.append("## Confident matches (confidence \u2265 0.5)\n\n")
    out.append("| Module | Suggested trait | Confidence | Matched methods |\n|---|---|---:|---|\n")
    sure = _ranked([(m.name, s) for m in readable if (s := m.confident()) is not None])
    out += [f"| {n} | {s.trait} | {s.confidence:.2f} | {', '.join(s.methods)} |\n" for n, s in sure]
    out += [_EMPTY_ROW] if not sure else []
    out.append("\n## Weak signals (confidence 0.3\u20130.5; review needed)\n\n")
    out.append("| Module | Best-guess trait | Confidence | Notes |\n|---|---|---:|---|\n")
    weak = _ranked([(m.name, s) for m in readable if (s := m.weak()) is not None])
    out += [
        f"| {n} | {s.trait} | {s.confidence:.2f} | matched keywords: {', '.join(s.keywords)} |\n"
        for n, s in weak
    ]
    out += [_EMPTY_ROW] if not weak else []
    out.append(
        "\n## Unmatched modules (no trait fits \u2014 likely glue, utility, or novel concept)\n\n"
    )
    unmatched = sorted((m for m in readable if m.best is None), key=lambda m: m.name)
    out += [f"- {m.name} ({_size(m)})\n" for m in unmatched]
    out += ["_None — all modules matched at least one trait._\n"] if not unmatched else []
    bad = sorted((m for m in modules if m.error is not None), key=lambda m: m.manifest_path)
    if bad:
        out.append("\n## Unreadable manifests (kei-import skipped them)\n\n")
        out += [f"- {m.manifest_path}: {m.error}\n" for m in bad]
    out.append(
        "\n## Suggested next steps\n\n"
        "1. For confident matches: run `kei-import-project skeleton --module X --trait Y`\n"
        "   to generate impl boilerplate.\n"
        "2. For weak signals: manual review; the module may implement multiple\n"
        "   traits or none.\n"
        "3. For unmatched modules: classify manually \u2014 utility, novel primitive,\n"
        "   or out-of-scope.\n"
    )
    return "".join(out)


def gap_report_json(project: str, modules: Sequence[ModuleFacts]) -> dict[str, Any]:
    """The same facts as one JSON object (every module, every match)."""
    return {
        "project": project,
        "modules": [
            {
                "module_id": m.module_id, "kind": m.kind, "manifest_path": m.manifest_path,
                "name": m.name, "files": m.files, "sloc": m.sloc,
                "content_sha256": m.content_sha256, "languages": list(m.languages),
                "error": m.error,
                "matches": [
                    {"trait": s.trait, "confidence": s.confidence, "methods": list(s.methods),
                     "keywords": list(s.keywords)}
                    for s in m.matches
                ],
                "section": _section(m),
            }
            for m in sorted(modules, key=lambda m: m.module_id)
        ],
    }  # fmt: skip


class PlanHeader(Struct, frozen=True):
    """What upstream's plan header names: the project, its source and when the plan
    was made (kei: when the run that last changed it was signed, RFC 3339 seconds)."""

    project: str
    source: str
    generated: str


def plan_markdown(header: PlanHeader, plan: Plan, modules: Sequence[ModuleFacts],
                  threshold: float, agents: Mapping[str, str | None]) -> str:  # fmt: skip
    """Upstream's plan markdown (``plan_render.rs``), with kei's commands in its
    instructions, the threshold (upstream printed the average confidence there) and a
    forked phase's agent."""
    by_id = {m.module_id: m for m in modules}
    out = [
        f"# {header.project} \u2014 Migration Plan\n\n",
        f"> Generated: {header.generated}\n> Source: {header.source}\n",
        f"> Average confidence: {plan.average_confidence:.2f}\n\n## STATUS BANNER\n\n",
    ]
    blocked = sum(p.status == "blocked-needs-review" for p in plan.phases)
    if not plan.phases:
        out.append("> **WARNING: no modules matched any trait at the given threshold.**\n"
                   "> Lower `--threshold` or check the report's unmatched modules.\n\n")  # fmt: skip
    elif blocked:
        out.append(f"> **AUTO-GENERATED plan. {blocked} phase(s) blocked \u2014 needs human "
                   "triage.**\n> Run `kei import project PATH --run-phase ID` after triage.\n\n")  # fmt: skip
    else:
        out.append("> **AUTO-GENERATED initial plan. All phases initial status: scaffolding.**\n"
                   "> Run `kei import project PATH --run-phase ID` to fork an agent per phase.\n"
                   "> Each agent must finish with STATUS-TRUTH MARKER (RULE 0.16).\n\n")  # fmt: skip
    out.append(
        "| Phase | Trait family | Modules | Priority | Initial status |\n|---|---|---:|---:|---|\n"
    )
    for p in plan.phases:
        status = f"forked ({agents[p.phase_id]})" if agents.get(p.phase_id) else p.status
        out.append(
            f"| {p.phase_id} | {p.trait} | {len(p.module_ids)} | {_rank(p.priority)} | {status} |\n"
        )
    out.append("\n## Per-phase detail\n\n")
    for p in plan.phases:
        out.append(f"### {p.phase_id} \u2014 {p.trait}\n\nModules to port:\n")
        rows = [(by_id[i].name, b.confidence) for i in p.module_ids
                if i in by_id and (b := by_id[i].best) is not None]  # fmt: skip
        out += [f"- {n} (confidence {c:.2f})\n" for n, c in sorted(rows, key=lambda r: -r[1])]
        out.append("\nVerification gate (RULE 0.13 + RULE 0.16):\n- `cargo check --workspace` PASS\n"
                   "- `cargo test -p <crate>` PASS\n- STATUS-TRUTH MARKER `shipped: functional`\n\n")  # fmt: skip
    out.append("## Unmatched modules\n\n")
    if not plan.unmatched:
        out.append("All modules matched at the given threshold.\n\n")
    else:
        out.append(f"These do not match any KeiSeiKit-runtime-core trait at threshold {threshold:.2f}.\n"
                   "Manual classification required before they can be ported.\n\n")  # fmt: skip
        out += [f"- {by_id[i].name if i in by_id else i}\n" for i in plan.unmatched]
        out.append("\n")
    out.append("## Follow-up\n\n- Review the gap report: `kei import project PATH --report`\n"
               "- Execute phases: `kei import project PATH --run-phase ID`\n")  # fmt: skip
    return "".join(out)


def _rank(priority: str) -> int:
    """Upstream's numeric priority: P0..P3 are 0..3, a ``Pwip`` phase 99."""
    return int(priority[1:]) if priority[1:].isdigit() else 99


def plan_json(project: str, plan: Plan, threshold: float) -> dict[str, Any]:
    return {
        "project": project,
        "threshold": threshold,
        "average_confidence": plan.average_confidence,
        "phases": [
            {"phase_id": p.phase_id, "trait": p.trait, "priority": p.priority,
             "status": p.status, "module_ids": list(p.module_ids)}
            for p in plan.phases
        ],
        "unmatched": list(plan.unmatched),
    }  # fmt: skip


def _ranked(rows: list[tuple[str, TraitScore]]) -> list[tuple[str, TraitScore]]:
    return sorted(rows, key=lambda r: -r[1].confidence)  # stable, as upstream's sort_by


def _size(m: ModuleFacts) -> str:
    return f"{m.files} source files, {m.sloc} LOC" if m.sloc > 0 else f"{m.files} source files"


def _section(m: ModuleFacts) -> str:
    if m.error is not None:
        return "unreadable"
    if m.confident() is not None:
        return "confident"
    return "weak" if m.weak() is not None else "unmatched"
