"""``kei hooks install|uninstall claude-code``: kei's entries merged into a settings file
without touching anything else, idempotent, removed exactly, written atomically; a file
kei cannot use is refused with one line and left as it was."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import cli_env, in_process
from kei.adapters.hooks.settings import EVENTS, is_kei_command
from kei.app.ledger.ledger import Ledger

USER_SETTINGS: dict[str, Any] = {
    "model": "opus",
    "permissions": {"allow": ["Bash(pytest:*)"], "deny": []},
    "hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "./guard.sh"}]},
            {"matcher": "Task", "hooks": [{"type": "command", "command": "notify-send task"}]},
        ],
        "Notification": [{"hooks": [{"type": "command", "command": "say hi"}]}],
    },
    "env": {"FOO": "1"},
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


@pytest.fixture
def kei(tmp_path: Path) -> Any:
    return in_process(cli_env(tmp_path / "home", HOME=str(tmp_path / "user")))


def settings_at(project: Path) -> Path:
    return project / ".claude" / "settings.json"


def kei_groups(settings: dict[str, Any]) -> dict[str, list[Any]]:
    return {
        event: [g for g in groups if any(is_kei_command(h.get("command")) for h in g["hooks"])]
        for event, groups in settings.get("hooks", {}).items()
    }


def test_install_into_a_new_project_then_uninstall_leaves_no_hooks(kei: Any, project: Path) -> None:
    result = kei("hooks", "install", "claude-code", "--project", str(project))
    assert "installed kei's hooks in" in result.stderr
    installed = json.loads(settings_at(project).read_text())
    assert set(installed["hooks"]) == set(EVENTS)
    pre = installed["hooks"]["PreToolUse"][0]
    assert pre["matcher"] == "Task|Agent" and pre["hooks"][0]["command"].endswith(
        " hook claude-code"
    )
    assert "matcher" not in installed["hooks"]["Stop"][0]
    kei("hooks", "uninstall", "claude-code", "--project", str(project))
    assert json.loads(settings_at(project).read_text()) == {}


def test_install_keeps_every_other_entry_and_uninstall_restores_the_file(
    kei: Any, project: Path
) -> None:
    path = settings_at(project)
    path.parent.mkdir()
    original = json.dumps(USER_SETTINGS, indent=2) + "\n"
    path.write_text(original)
    kei("hooks", "install", "claude-code", "--project", str(project))
    installed = json.loads(path.read_text())
    assert list(installed) == list(USER_SETTINGS)  # key order kept
    for key in ("model", "permissions", "env"):
        assert installed[key] == USER_SETTINGS[key]
    assert installed["hooks"]["PreToolUse"][:2] == USER_SETTINGS["hooks"]["PreToolUse"]
    assert installed["hooks"]["Notification"] == USER_SETTINGS["hooks"]["Notification"]
    assert {e: len(g) for e, g in kei_groups(installed).items() if g} == dict.fromkeys(EVENTS, 1)
    kei("hooks", "uninstall", "claude-code", "--project", str(project))
    assert path.read_text() == original


def test_install_twice_changes_nothing(kei: Any, project: Path) -> None:
    kei("hooks", "install", "claude-code", "--project", str(project))
    first = settings_at(project).read_bytes()
    inode = settings_at(project).stat().st_ino
    result = kei("hooks", "install", "claude-code", "--project", str(project))
    assert "already" in result.stderr
    assert settings_at(project).read_bytes() == first
    assert settings_at(project).stat().st_ino == inode  # not even rewritten


def test_install_replaces_an_older_kei_entry(kei: Any, project: Path) -> None:
    path = settings_at(project)
    path.parent.mkdir()
    old = {"type": "command", "command": "/old/venv/bin/kei hook claude-code"}
    path.write_text(json.dumps({"hooks": {"PreToolUse": [{"matcher": "Task", "hooks": [old]}]}}))
    kei("hooks", "install", "claude-code", "--project", str(project))
    groups = json.loads(path.read_text())["hooks"]["PreToolUse"]
    assert len(groups) == 1 and groups[0]["hooks"][0]["command"] != old["command"]


def test_uninstall_removes_only_kei_from_a_shared_group(kei: Any, project: Path) -> None:
    path = settings_at(project)
    path.parent.mkdir()
    mine = {"type": "command", "command": "notify-send task"}
    theirs = {"type": "command", "command": "kei hook claude-code"}
    body = {"hooks": {"PreToolUse": [{"matcher": "Task", "hooks": [mine, theirs]}]}}
    path.write_text(json.dumps(body))
    kei("hooks", "uninstall", "claude-code", "--project", str(project))
    assert json.loads(path.read_text()) == {
        "hooks": {"PreToolUse": [{"matcher": "Task", "hooks": [mine]}]}
    }


def test_user_install_respects_home(kei: Any, tmp_path: Path) -> None:
    kei("hooks", "install", "claude-code", "--user")
    path = tmp_path / "user" / ".claude" / "settings.json"
    assert set(json.loads(path.read_text())["hooks"]) == set(EVENTS)
    kei("hooks", "uninstall", "claude-code", "--user")
    assert json.loads(path.read_text()) == {}


def test_the_file_mode_is_kept_and_a_symlink_followed(
    kei: Any, project: Path, tmp_path: Path
) -> None:
    real = tmp_path / "dotfiles" / "settings.json"
    real.parent.mkdir()
    real.write_text('{"model": "opus"}')
    real.chmod(0o600)
    settings_at(project).parent.mkdir()
    settings_at(project).symlink_to(real)
    kei("hooks", "install", "claude-code", "--project", str(project))
    assert settings_at(project).is_symlink()
    assert "hooks" in json.loads(real.read_text())
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert [p.name for p in real.parent.iterdir()] == ["settings.json"]  # no temp file left


REFUSED = {
    "a list": ("[1, 2]", "is not a JSON object"),
    "not json": ("{'model': 1}", "is not valid JSON"),
    "hooks a list": ('{"hooks": []}', '"hooks" is not a JSON object'),
    "an event not a list": ('{"hooks": {"Stop": {}}}', '"hooks"."Stop" is not a JSON list'),
}


@pytest.mark.parametrize("verb", ["install", "uninstall"])
@pytest.mark.parametrize(("text", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_a_file_kei_cannot_use_is_refused_and_untouched(
    kei: Any, project: Path, verb: str, text: str, message: str
) -> None:
    path = settings_at(project)
    path.parent.mkdir()
    path.write_text(text)
    result = kei("hooks", verb, "claude-code", "--project", str(project), code=None)
    assert result.exit_code != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # the error, and a hint at most
    assert path.read_text() == text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["claude-code", "--user", "--project", "."], "--project and --user both given"),
        (["cursor"], "is not one of 'claude-code'"),
        (["claude-code", "--project", "/nonexistent/x"], "is not a folder"),
    ],
)
def test_bad_arguments_are_one_line(kei: Any, args: list[str], message: str) -> None:
    result = kei("hooks", "install", *args, code=None)
    assert result.exit_code != 0 and message in result.stderr


def test_the_installed_command_records_a_fork(tmp_path: Path, project: Path) -> None:
    """The command install writes, run by a shell as Claude Code runs it."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = cli_env(tmp_path / "home", url, HOME=str(tmp_path / "user"))
    kei = in_process(env)
    kei("init")
    kei("hooks", "install", "claude-code", "--project", str(project))
    command = json.loads(settings_at(project).read_text())["hooks"]["PreToolUse"][0]["hooks"][0]
    body = {
        "session_id": "s1",
        "cwd": str(project),
        "hook_event_name": "PreToolUse",
        "tool_name": "Task",
        "tool_input": {"prompt": "p", "subagent_type": "x"},
        "tool_use_id": "toolu_installed",
    }
    done = subprocess.run(
        ["/bin/sh", "-c", command["command"]],
        input=json.dumps(body),
        env={**env, "PATH": os.defpath},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "")
    with Ledger.open(url) as ledger:
        assert ledger.store.stream_version("agent/toolu_installed") == 1
