"""The text ``kei migrate`` and ``kei import kei-migrate`` print, from their reports.

Names and details come from files and tables anyone may have edited, so each goes
through ``printable`` (JSON-quoted when it holds a control character): a hostile name
cannot move the reader's cursor. Lines that are the command's answer go to stdout;
notes and warnings to stderr as ``kei: note:`` / ``kei: warning:`` lines.
"""

from __future__ import annotations

from typing import Any

from kei.app.json_form import rfc3339
from kei.app.ledger.tail import printable
from kei.app.migrate.reports import ImportReport, RunReport, StatusReport, Step, VerifyReport
from kei.domain.migrate.drift import Disagreement
from kei.domain.migrate.tracker import parse_rfc3339_us

_DONE = {"up": "applied", "down": "reverted"}
_STATES = {
    "applied": "APPLIED",
    "pending": "PENDING",
    "missing-file": "MISSING",
    "partial": "PARTIAL",
}


def step_line(step: Step) -> str:
    took = "" if step.duration_us is None else f" ({step.duration_us / 1000:.0f} ms)"
    return (
        f"[{step.direction}] {step.version} {printable(step.name)} — {_DONE[step.direction]}{took}"
    )


def drift_line(d: Disagreement) -> str:
    where = "" if d.version is None else f" {d.version}"
    return f"{d.drift}{where}: {printable(d.detail)}"


def run_lines(report: RunReport) -> tuple[list[str], list[str]]:
    """(stdout, stderr) after ``up`` or ``down``."""
    verb = _DONE[report.direction]
    count = len(report.steps)
    out = [f"{count} {verb} on {report.target}" if count else f"nothing to {report.direction}"]
    err = [f"kei: note: {printable(n.text)}" for n in report.notes]
    err += [
        f"kei: note: {v} was {verb} by another runner while this one waited" for v in report.skipped
    ]
    err += [f"kei: warning: {drift_line(d)}" for d in report.drift]
    return out, err


def status_lines(report: StatusReport) -> list[str]:
    lines = [f"target {report.target} (log stream {report.stream})"]
    for e in report.entries:
        flag = ""
        if e.out_of_order:
            flag = "  (out of order: older than the newest applied)"
        elif e.state == "missing-file":
            flag = "  (applied; its file is not in the folder)"
        elif e.state == "partial":
            flag = "  (started, not finished: resolve with --resolve-partial)"
        lines.append(f"{_STATES[e.state]:<8} {e.version}  {printable(e.name)}{flag}")
    lines.append(f"{report.applied} applied, {report.pending} pending")
    if not report.logged:
        lines.append("kei's log: no ledger here yet (kei init; then up and down are recorded)")
    lines += [f"drift: {drift_line(d)}" for d in report.drift]
    lines += [f"interrupted: {printable(n.text)}" for n in report.interrupted]
    return lines


def status_json(report: StatusReport) -> dict[str, Any]:
    """``status --json``: each ``applied_at`` in kei's one form of times (None when the
    tracker row's text is not RFC 3339), the row's text as ``applied_at_text``."""
    data = report.to_dict() | {"applied": report.applied, "pending": report.pending}
    for entry in data["entries"]:
        text = entry.pop("applied_at")
        entry["applied_at"] = None if text is None else rfc3339(parse_rfc3339_us(text))
        entry["applied_at_text"] = text
    return data


def verify_lines(report: VerifyReport) -> list[str]:
    if report.ok:
        return [
            f"ok: files, tracker table, kei's log and live schema agree on {report.target} "
            f"(schema {report.schema[:16]})"
        ]
    lines = [drift_line(d) for d in report.drift]
    lines += [f"interrupted: {printable(n.text)}" for n in report.interrupted]
    lines += [f"partial: {printable(n.text)}" for n in report.partial]
    found = len(report.drift) + len(report.interrupted) + len(report.partial)
    lines.append(
        f"{found} disagreement(s) on {report.target}; {report.recorded} newly recorded in "
        f"stream {report.stream}"
    )
    return lines


def import_lines(report: ImportReport) -> list[str]:
    verb = "to carry over" if report.dry_run else "carried over"
    title = f"kei-migrate tracker table of {report.target}"
    lines = [title + (" (dry run: nothing appended)" if report.dry_run else "")]
    lines.append(
        f"rows: {report.rows}; {verb}: {report.imported}; already in kei: {report.already}"
    )
    lines += [f"note: {printable(n)}" for n in report.notes]
    if report.not_carried:
        lines.append(f"not carried over: {len(report.not_carried)}")
        lines += [f"  {printable(n.text)}" for n in report.not_carried]
    return lines
