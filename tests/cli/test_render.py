"""How ``kei agent``, ``kei cost`` and ``kei skill`` look: the renderers in ``render.py``
rendered into a string console (no terminal needed), then the real commands run on a
real pseudo-terminal on both stores (rich), against the same commands piped (plain).
"""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console, RenderableType
from typer.testing import CliRunner

from cli_helpers import cli_env, kei
from kei.adapters.cli import render
from kei.adapters.cli.app import app
from kei.app.cost_reads import Report, ReportRow, TreeNode
from kei.domain.agents.skills import Invocation, aggregate

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def text_of(renderable: RenderableType) -> str:
    console = Console(file=io.StringIO(), width=120, force_terminal=False)
    console.print(renderable)
    out = console.file.getvalue()
    assert isinstance(out, str)
    return out


def node(depth: int, agent: str, status: str, micro: int = 0, unverified: int = 0) -> TreeNode:
    row = {"id": agent, "status": status, "branch": f"agent/{agent}", "parent_agent_id": None}
    return TreeNode(depth, row, ReportRow(agent, micro_cents=micro, unverified=unverified))


TREE = [
    node(0, "root", "running", 1_500_000),
    node(1, "a", "merged", 499_999),
    node(2, "a1", "failed", 500_000, unverified=1),
    node(1, "b", "done"),
]


def test_tree_lines_are_plain_indented_and_round_half_up() -> None:
    assert render.tree_text(TREE).splitlines() == [
        "root [running] branch=agent/root cost=$0.02",
        "  a [merged] branch=agent/a cost=$0.00",
        "    a1 [failed] branch=agent/a1 cost=$0.01 (unverified price)",
        "  b [done] branch=agent/b cost=$0.00",
    ]


def test_rich_tree_nests_by_depth() -> None:
    lines = text_of(render.agent_tree(TREE)).splitlines()
    assert lines == [
        "root running agent/root  $0.02",
        "├── a merged agent/a  $0.00",
        "│   └── a1 failed agent/a1  $0.01 (unverified price)",
        "└── b done agent/b  $0.00",
    ]


def test_markup_in_names_is_shown_as_typed() -> None:
    weird = [node(0, "[bold]x[/bold]", "running")]
    assert "[bold]x[/bold] running" in text_of(render.agent_tree(weird))


LISTED = [
    {"id": "b", "status": "running", "branch": "agent/b", "forked_us": 1_795_604_256_000_000,
     "parent_agent_id": "a", "spec_sha": None},
    {"id": "a", "status": "merged", "branch": "agent/a", "forked_us": 1_795_604_255_000_000,
     "parent_agent_id": None, "spec_sha": "0123456789abcdef"},
]  # fmt: skip


def test_list_lines_keep_upstreams_shape() -> None:
    assert [render.list_line(r) for r in LISTED] == [
        "b\trunning\tagent/b\t2026-11-25T10:57:36Z\tparent=a\tspec=-",
        "a\tmerged\tagent/a\t2026-11-25T10:57:35Z\tparent=-\tspec=0123456789ab",
    ]


def test_list_table_has_the_same_fields() -> None:
    lines = text_of(render.agent_table(LISTED)).splitlines()
    assert re.split(r"\W+", lines[1].strip("┃ ")) == ["id", "status", "branch", "forked",
                                                     "parent", "spec"]  # fmt: skip
    assert lines[3].split() == ["│", "b", "│", "running", "│", "agent/b", "│",
                                "2026-11-25T10:57:36Z", "│", "a", "│", "-", "│"]  # fmt: skip


REPORT = Report(
    "model",
    [
        ReportRow("big", micro_cents=7_000_000, events=2),
        ReportRow("mid", micro_cents=6_000_000, events=3, unverified=1),
        ReportRow("small", micro_cents=500_000, events=1, given=1),
    ],
)


def test_report_text_limits_rows_not_the_total() -> None:
    assert render.report_text(REPORT, limit=1).splitlines() == [
        "model\tevents\tusd\tmicro_cents\tprice",
        "big\t2\t$0.07\t7000000\tok",
        "TOTAL\t6\t$0.14\t13500000\tUNVERIFIED (1 of 6)",
    ]
    assert len(render.report_text(REPORT).splitlines()) == 5
    assert render.report_text(Report("agent")) == "(no costs)\n"


def test_cost_table_has_the_total_as_footer_and_marks_unverified() -> None:
    full = text_of(render.cost_table(REPORT))
    rows = [line.strip("│┃ ").split() for line in full.splitlines() if "│" in line]
    assert ["big", "│", "2", "│", "$0.07", "│", "7000000", "│", "ok"] in rows
    assert [
        "mid",
        "│",
        "3",
        "│",
        "$0.06",
        "│",
        "6000000",
        "│",
        "UNVERIFIED",
        "(1",
        "of",
        "3)",
    ] in rows
    assert rows[-1] == ["TOTAL", "│", "6", "│", "$0.14", "│", "13500000", "│", "UNVERIFIED",
                        "(1", "of", "6)"]  # fmt: skip
    assert "biggest" not in full
    limited = text_of(render.cost_table(REPORT, limit=2))
    assert "small" not in limited and "TOTAL" in limited and "13500000" in limited
    assert "the 2 biggest of 3 rows; TOTAL covers all" in limited


def test_skill_table() -> None:
    runs = [Invocation("lint", True, 1_795_603_923_000_000, 140)] * 10 + [
        Invocation("deploy", i < 2, 1_795_603_928_000_000, 2_750) for i in range(10)
    ]
    lines = text_of(render.skill_table(aggregate(runs))).splitlines()
    assert lines[1].split("┃")[1:-1][0].strip() == "skill"
    deploy = [c.strip() for c in lines[3].split("│")[1:-1]]
    lint = [c.strip() for c in lines[4].split("│")[1:-1]]
    assert deploy == ["deploy", "10", "20.0%", "2750", "2750", "2026-11-25T10:52:08Z", "ARCHIVE"]
    assert lint[0] == "lint" and lint[-1] == "validated"


def test_huge_outputs_fall_back_to_plain_lines() -> None:
    assert render.fits(render.RICH_LIMIT) and not render.fits(render.RICH_LIMIT + 1)


# -- the real commands on a pseudo-terminal ------------------------------------------


def on_terminal(args: Sequence[str], env: dict[str, str]) -> str:
    """Run ``kei ARGS`` with stdout on a pseudo-terminal; its output without colours."""
    leader, follower = pty.openpty()
    env = {**env, "COLUMNS": "160", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kei", *args], env=env, stdout=follower, stderr=subprocess.PIPE
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    return ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


@pytest.fixture
def env(store_url: str, tmp_path: Path) -> dict[str, str]:
    environment = cli_env(tmp_path / "home", store_url)
    script: list[list[str]] = [
        ["init"],
        ["agent", "fork", "root", "agent/root"],
        ["agent", "fork", "kid", "agent/kid", "--parent", "root"],
        ["agent", "fail", "kid", "--reason", "r"],
        ["cost", "record", "kid", "--provider", "google", "--model", "gemini-3-1-flash-image",
         "--tokens-in", "0", "--tokens-out", "2"],
        ["skill", "record", "lint", "--success", "--duration-ms", "5"],
    ]  # fmt: skip
    for args in script:  # in-process: faster, and only the checks below need a process
        done = CliRunner().invoke(app, args, env=environment)
        assert done.exit_code == 0, (args, done.stderr)
    return environment


def test_terminal_gets_rich_tree_table_and_reports(env: dict[str, str]) -> None:
    tree = on_terminal(["agent", "tree", "root"], env)
    assert tree.splitlines() == [
        "root running agent/root  $0.00",
        "└── kid failed agent/kid  $0.08 (unverified price)",
    ]
    listed = on_terminal(["agent", "list"], env)
    assert "┃ id " in listed and "parent" in listed and "│ kid " in listed
    report = on_terminal(["cost", "report"], env)
    assert "│ kid " in report and "UNVERIFIED (1 of 1)" in report
    assert report.splitlines()[-2].split()[:3] == ["│", "TOTAL", "│"]
    skills = on_terminal(["skill", "report"], env)
    assert "┃ skill " in skills and "insufficient" in skills
    markdown = on_terminal(["skill", "report", "--format", "markdown"], env)
    assert markdown.startswith("| skill | total |")  # asked for by name: as upstream


def test_pipes_get_plain_lines(env: dict[str, str]) -> None:
    def out(*args: str) -> Any:
        done = kei(list(args), env)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert out("agent", "tree", "root").splitlines() == [
        "root [running] branch=agent/root cost=$0.00",
        "  kid [failed] branch=agent/kid cost=$0.08 (unverified price)",
    ]
    assert out("agent", "list").splitlines()[0].startswith("kid\tfailed\tagent/kid\t")
    assert out("cost", "report").splitlines()[-1] == "TOTAL\t1\t$0.08\t7960000\tUNVERIFIED (1 of 1)"
    assert out("skill", "report").startswith("| skill | total |")
