"""``kei demo``: runs end to end, shows an agent tree with its costs and the cost report,
catches its own tampering, never touches the user's ledger."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from cli_helpers import cli_env, kei
from kei.adapters.cli.app import app
from kei.adapters.store import open_store
from kei.app.ledger.verification import verify_store


def test_demo_exits_0_and_reports_the_tampering(tmp_path: Path) -> None:
    home = tmp_path / "user-home"
    result = CliRunner().invoke(app, ["demo"], env=cli_env(home, f"sqlite:///{home}/mine.db"))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "chain and signatures OK" in out
    tampered = re.search(r"flipped one bit of byte \d+ of position (\d+)", out)
    assert tampered, out
    position = tampered.group(1)
    assert f"position {position}: content-changed" in out
    assert f"position {position}: bad-signature" in out
    assert "tampering caught" in out
    assert not home.exists()  # the user's KEI_HOME and KEI_DB were left alone


def test_demo_tails_every_kind_of_event(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo"], env=cli_env(tmp_path / "h"))
    for kind in ("kei.ledger.genesis", "agent.forked", "cost.recorded", "agent.failed",
                 "agent.completed", "agent.merged", "kei.key.added", "kei.key.revoked"):  # fmt: skip
        assert kind in result.stdout
    assert "parent_agent_id=orchestrator" in result.stdout


TREE = [
    "[tree] kei agent tree orchestrator:",
    "orchestrator [done] branch=release/1.4 cost=$0.15",
    "  research [done] branch=agent/research cost=$0.17",
    "  implement [merged] branch=agent/implement cost=$0.02",
    "    tests [failed] branch=agent/tests cost=$0.03",
    "  illustrate [done] branch=agent/illustrate cost=$0.12 (unverified price)",
]
REPORT = [
    "[cost] kei cost report:",
    "agent\tevents\tusd\tmicro_cents\tprice",
    "research\t1\t$0.17\t17250000\tok",
    "orchestrator\t1\t$0.15\t15000000\tok",
    "illustrate\t1\t$0.12\t11940000\tUNVERIFIED (1 of 1)",
    "tests\t1\t$0.03\t2500000\tok",
    "implement\t1\t$0.02\t2400000\tok",
    "TOTAL\t5\t$0.49\t49090000\tUNVERIFIED (1 of 5)",
]


def test_demo_builds_an_agent_tree_and_reports_its_costs(tmp_path: Path) -> None:
    """Catalog-priced, hand-given and amended costs (the amendment counts once), a failure,
    a merge, the tree and the report (as piped), then a clean verification of it all."""
    proc = kei(["demo"], cli_env(tmp_path / "h"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[lines.index(TREE[0]) :][: len(TREE)] == TREE
    assert lines[lines.index(REPORT[0]) :][: len(REPORT)] == REPORT
    agents = next(line for line in lines if line.startswith("[agents] "))
    assert agents.startswith("[agents] 17 events: an orchestrator forks 3 agents")
    order = [next(i for i, line in enumerate(lines) if line.startswith(p))
             for p in ("[agents]", "[dna]", "[keys]", "[tail]", "[tree]", "[cost]", "[route]", "[memory]", "[retro]", "[verify]", "[tamper]")]  # fmt: skip
    assert order == sorted(order)
    assert "[verify] kei verify-chain: 44 events, chain and signatures OK" in lines
    memory = [line for line in lines if line.startswith("[memory] ")]
    assert memory[1].endswith("retry-policy = jittered exponential backoff, at most 6 tries")
    leak = next(line for line in lines if line.startswith("[leaks] "))
    assert "matches leak rule 'aws-access-key-id' (block); nothing was appended" in leak
    assert "Q7RZ5W3NPL4HGT2X" not in proc.stdout
    retro = [line for line in lines if line.startswith("[retro] ")]
    assert retro[0].endswith("6 events; again: 0 appended, 6 already in the log")
    assert "6 events, 3 tool calls, 1 error, 52 s" in retro[1]
    routes = [line for line in lines if line.startswith("[route] ")]
    assert "claude-opus-4-7 (no_feasible, n=0)" in routes[0]
    assert routes[1].endswith("claude-haiku-4-5 Beta(7, 1)")
    assert "Beta(successes + 1, failures + 1)" in routes[2]
    assert "claude-haiku-4-5 (argmin_cost_feasible, lower bound 0.734" in routes[3]
    assert "$0.0115 estimated instead of $0.0575" in routes[3]
    assert routes[4].endswith("re-derived from the 6 outcomes before it, identical")
    bundle = next(i for i, line in enumerate(lines) if line.startswith("[bundle]"))
    assert "44 events, positions 1..44" in lines[bundle] and "signed" in lines[bundle]
    assert "restore, 44 events, 2 keys" in lines[bundle + 1]
    digests = [line.split()[:2] for line in lines[bundle + 2 : bundle + 10]]
    names = [
        "agents",
        "costs",
        "event_counts",
        "memory",
        "posteriors",
        "projects",
        "skills",
        "traces",
    ]
    assert digests == [[n, "matched"] for n in names]


def test_demo_tells_one_story_and_ends_with_what_to_run_next(tmp_path: Path) -> None:
    """The tree and the cost report show the same agents; DNA and posteriors get a line
    each; the last lines say what to run next."""
    lines = kei(["demo"], cli_env(tmp_path / "h")).stdout.splitlines()
    tree = {line.split()[0] for line in TREE[1:]}
    assert {line.split("\t")[0] for line in REPORT[2:-1]} == tree
    tail = lines[lines.index("[tail] kei events tail -n 25:") + 1 : lines.index(TREE[0])]
    streams = {line.split()[3] for line in tail if "agent/" in line}
    assert streams == {f"agent/{agent}" for agent in tree}
    assert any(line.startswith("[dna] ") and "task class" in line for line in lines)
    next_at = lines.index("next:")
    assert "kei init" in "\n".join(lines[next_at:]) and lines[next_at - 1].startswith("tampering")


def test_demo_keep_leaves_a_ledger_that_verifies_clean(tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    result = CliRunner().invoke(app, ["demo", "--keep", str(kept)], env=cli_env(tmp_path / "h"))
    assert result.exit_code == 0, result.output
    assert (kept / "keys" / "default.key").exists() and (kept / "keys" / "bootstrap.key").exists()
    env = cli_env(kept)  # what the demo printed is what the commands print on its ledger
    assert kei(["agent", "tree", "orchestrator"], env).stdout.splitlines() == TREE[1:]
    assert kei(["cost", "report"], env).stdout.splitlines() == REPORT[1:]
    outcome = kei(["agent", "show", "implement", "--json"], env).stdout
    assert '"outcome": "functional"' in outcome
    store = open_store(f"sqlite:///{kept / 'ledger.db'}")
    try:
        assert verify_store(store).ok
    finally:
        store.close()
    copy = open_store(f"sqlite:///{kept / 'tampered.db'}")
    try:
        assert {f.kind.value for f in verify_store(copy).findings} == {
            "content-changed",
            "bad-signature",
        }
    finally:
        copy.close()


def test_demo_keep_refuses_a_folder_in_use(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "ledger.db").write_bytes(b"precious")
    proc = kei(["demo", "--keep", str(tmp_path / "busy")], cli_env(tmp_path / "h"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("kei: error:") and "Traceback" not in proc.stderr
    assert (tmp_path / "busy" / "ledger.db").read_bytes() == b"precious"


def test_demo_runs_as_a_real_process(tmp_path: Path) -> None:
    proc = kei(["demo"], cli_env(tmp_path / "h"))
    assert proc.returncode == 0, proc.stderr
    assert "tampering caught" in proc.stdout
    assert proc.stderr == ""


def test_demo_checks_an_inclusion_proof_without_the_database(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo"], env=cli_env(tmp_path / "h"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    prove = next(i for i, line in enumerate(lines) if line.startswith("[prove] "))
    assert re.fullmatch(
        r"\[prove\] kei prove inclusion \d+ \(agent\.merged\): leaf \d+ of 44, \d+ hashes in "
        r"the audit path",
        lines[prove],
    )
    assert lines[prove + 1].startswith("[verify-proof] ")
    assert "OK" in lines[prove + 1] and "without the database" in lines[prove + 1]
