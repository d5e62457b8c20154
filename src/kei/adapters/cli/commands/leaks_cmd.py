"""``kei leaks scan|list|lint|substitute``: the leak matrix (upstream kei-leak-matrix).

Thin: load the matrix (``adapters/files/leaks.py``), ask ``kei.domain.leaks.matrix``, print.
Nothing printed ever holds a pattern or a whole secret: a finding shows at most the first
12 characters of its match. ``scan`` keeps upstream's exit codes by default: 2 if any
finding is ``block``, else 1 if any is ``warn``, else 0 (substitute-only findings, or
none); ``--fail-on`` moves the bar (``block``: only block fails; ``substitute``: every
finding fails, so a CI gate catches JWTs and URL passwords too). A bad or empty matrix,
an unknown scope, an unreadable named file, and a folder scan that could not read some
file or folder (each is named on stderr) are ``kei: error:`` and exit 2, so a CI gate
fails closed.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kei.adapters.cli.context import answering, command_group
from kei.adapters.cli.options import JsonLines, JsonObject, LeakCategory, LeakScope, LeakSeverity
from kei.adapters.cli.output import json_line
from kei.errors import InputError

if TYPE_CHECKING:
    from kei.adapters.files.leaks import Skipped
    from kei.domain.leaks.matrix import Matrix
    from kei.domain.leaks.verdicts import Violation

leaks_app, register = command_group(
    "leaks", "The leak matrix: scan text for secrets, list and test the rules."
)

STDIN = "-"
FAIL_ON = ("substitute", "warn", "block")  # from the most findings failing to the fewest
MatrixOpt = Annotated[
    Path | None,
    typer.Option("--matrix", metavar="FILE", help="Rule file (default: $KEI_LEAK_MATRIX_PATH, else the "
                 "shipped rules plus $KEI_HOME/leaks.toml).", dir_okay=False),
]  # fmt: skip
PatternOpt = Annotated[
    str,
    typer.Option(
        "--pattern", metavar="TEXT", help="A candidate secret: which rule would catch it?"
    ),
]
ScopeOpt = Annotated[LeakScope, typer.Option("--scope", help="Where the text is going.")]


@leaks_app.command("scan")
def scan(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(metavar="PATH", help="A file, a folder (walked), or - for stdin.")],
    scope: ScopeOpt = "all-writes",
    severity: Annotated[
        LeakSeverity | None, typer.Option("--severity", help="Only findings of this severity.")
    ] = None,
    matrix_file: MatrixOpt = None,
    as_json: JsonLines = False,
    fail_on: Annotated[
        LeakSeverity,
        typer.Option("--fail-on", help="Lowest finding that fails the scan: block (exit 2), "
                     "warn (the default: block exits 2, warn 1) or substitute (any finding; "
                     "substitute exits 1)."),
    ] = "warn",
) -> None:  # fmt: skip
    """Find secrets in files: exit 2 if any finding blocks, 1 if any warns, else 0."""
    with answering(ctx) as g:
        from kei.adapters.files.leaks import Skipped
        from kei.domain.leaks.matrix import check_filters
        from kei.errors import LeakMatrixError

        check_filters(scope, severity)
        if fail_on not in FAIL_ON:
            raise InputError(f"unknown --fail-on {fail_on!r}; expected one of "
                             f"{', '.join(FAIL_ON)}")  # fmt: skip
        matrix = _load(matrix_file, g.settings().home)
        if not matrix.fires(scope):
            raise LeakMatrixError(f"the leak matrix has no rule that fires in scope {scope!r}; "
                                  "a scan with it would find nothing",
                                  hint="add rules, or check --matrix and --scope")  # fmt: skip
        found: list[Violation] = []
        files = 0
        skipped: list[Skipped] = []
        for item in _sources(path):
            if isinstance(item, Skipped):
                skipped.append(item)
                if item.incomplete:
                    print(f"kei: cannot read {item.path}: {item.reason}", file=sys.stderr)
                continue
            label, text = item
            files += 1
            for v in matrix.scan_text(text, scope, label, severity):
                found.append(v)
                if as_json:
                    json_line(v.to_dict())
                else:
                    _say(f"{v.file}:{v.line}: {v.severity} {v.rule_id} {v.matched_redacted}")
        _summary(found, files, skipped)
        missed = sum(s.incomplete for s in skipped)
        if missed:
            raise InputError(f"{missed} {'file or folder' if missed == 1 else 'files or folders'} "
                             "could not be read; the scan is incomplete",
                             hint="fix the permissions, or scan a folder kei can read")  # fmt: skip
    raise typer.Exit(exit_code(found, fail_on))


@leaks_app.command("list")
def list_rules(
    ctx: typer.Context,
    category: Annotated[
        LeakCategory | None, typer.Option("--category", help="Only rules of this category."),
    ] = None,
    matrix_file: MatrixOpt = None,
    as_json: JsonLines = False,
) -> None:  # fmt: skip
    """The rules as a markdown table, or one JSON object each (patterns are never shown)."""
    with answering(ctx) as g:
        rules = _load(matrix_file, g.settings().home).select(category)
        if as_json:
            for r in rules:
                json_line({"id": r.id, "category": r.category, "severity": r.severity,
                           "scope": list(r.scope), "rationale": r.rationale,
                           "added": r.added})  # fmt: skip
            return
        _say("| id | category | severity | scope | rationale | added |")
        _say("|---|---|---|---|---|---|")
        for r in rules:
            cells = (r.id, r.category, r.severity, ", ".join(r.scope), r.rationale, r.added)
            _say("| " + " | ".join(_cell(c) for c in cells) + " |")


@leaks_app.command("lint")
def lint(ctx: typer.Context, pattern: PatternOpt, matrix_file: MatrixOpt = None,
         as_json: JsonObject = False) -> None:  # fmt: skip
    """Print the id of the first rule that matches a string, or 'no match'; always exit 0."""
    with answering(ctx) as g:
        rule = _load(matrix_file, g.settings().home).lint(pattern)
        if as_json:
            json_line({"rule": None if rule is None else rule.id,
                       "suggested_category": "secret" if rule is None else rule.category})  # fmt: skip
            return
        _say(rule.id if rule is not None else "no match (suggested category: secret)")


@leaks_app.command("substitute")
def substitute(ctx: typer.Context, scope: ScopeOpt = "all-writes",
               matrix_file: MatrixOpt = None) -> None:  # fmt: skip
    """Copy stdin to stdout with every substitute rule applied (block rules are not)."""
    with answering(ctx) as g:
        matrix = _load(matrix_file, g.settings().home)
        text, used = matrix.substitute(_stdin(), scope)
        sys.stdout.buffer.write(text.encode("utf-8"))
        sys.stdout.flush()
        if used:
            print(f"kei: redacted by {', '.join(used)}", file=sys.stderr)


def exit_code(found: Sequence[Violation], fail_on: str = "warn") -> int:
    """2 for any block; else 1 for any finding at or above ``fail_on`` (block, then
    warn, then substitute); else 0. The default is upstream's exit code."""
    severities = {v.severity for v in found}
    if "block" in severities:
        return 2
    failing = FAIL_ON[FAIL_ON.index(fail_on) :]
    return 1 if severities & set(failing) else 0


def _load(explicit: Path | None, home: Path) -> Matrix:
    from kei.adapters.files.leaks import load_matrix

    return load_matrix(explicit, os.environ, home)


def _sources(path: str) -> Iterator[tuple[str, str] | Skipped]:
    """(label, text) for stdin, one named file, or every regular file of a folder, and
    what a folder scan skipped or could not read."""
    from kei.adapters.files.leaks import read_text_file, walk_texts

    if path == STDIN:
        yield "<stdin>", _stdin()
        return
    root = Path(path)
    if root.is_dir():
        yield from walk_texts(root)
    elif root.exists() or root.is_symlink():
        yield path, read_text_file(root)
    else:
        raise InputError(f"{path}: no such file or folder")


def _stdin() -> str:
    from kei.adapters.files.leaks import read_stream

    return read_stream(sys.stdin.buffer, "stdin")


def _summary(found: Sequence[Violation], files: int, skipped: Sequence[Skipped]) -> None:
    noun = "file" if files == 1 else "files"
    left = Counter(s.reason for s in skipped if not s.incomplete)
    extra = "".join(f"; skipped {n}: {reason}" for reason, n in sorted(left.items()))
    if not found:
        print(f"kei: no leaks found in {files} {noun}{extra}", file=sys.stderr)
        return
    counts = Counter(v.severity for v in found)
    parts = ", ".join(f"{counts[s]} {s}" for s in ("block", "warn", "substitute") if counts[s])
    print(f"kei: {len(found)} findings ({parts}) in {files} {noun}{extra}", file=sys.stderr)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
