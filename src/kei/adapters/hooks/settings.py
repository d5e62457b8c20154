"""kei's entries in a Claude Code ``settings.json``: merged in, or taken out exactly.

Claude Code reads ``hooks`` as ``{event: [{"matcher": ..., "hooks": [{"type":
"command", "command": ...}]}]}``. kei adds one group per event it listens to and
recognises its own entries by their command (``… hook claude-code``, run by kei), so:

- installing twice changes nothing, and installing again replaces kei's old entries
  (a moved ``kei``) instead of adding a second set;
- uninstalling removes kei's entries, then only the groups, event lists and the
  ``hooks`` object that removing them left empty; everything else, the user's hooks
  and every other key, stays as it was, in its order;
- a file that is not a JSON object, or whose ``hooks`` is not shaped as above, is
  refused with one line and left untouched;
- the new text is written beside the file and renamed over it (the file's mode
  kept; a symlinked settings file is updated where the link points).
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any, Final

from kei.adapters.files.bounded_read import read_at_most
from kei.errors import InputError

SETTINGS_MAX_BYTES: Final = 4 << 20
HOOK_TIMEOUT_S: Final = 30
_TOOLS: Final = "Task|Agent"
EVENTS: Final[dict[str, str | None]] = {  # event -> matcher (None: the event has none)
    "PreToolUse": _TOOLS,
    "PostToolUse": _TOOLS,
    "PostToolUseFailure": _TOOLS,
    "Stop": None,
    "SessionEnd": None,
}
SUBCOMMAND: Final = ("hook", "claude-code")

Settings = dict[str, Any]


def is_kei_command(command: object) -> bool:
    """``<…kei…> hook claude-code``: kei's hook, wherever kei was installed."""
    if not isinstance(command, str):
        return False
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    return tuple(words[-2:]) == SUBCOMMAND and any("kei" in w for w in words[:-2])


def merged(settings: Settings, command: str) -> Settings:
    """``settings`` with kei's entries (running ``command``) in, old ones replaced."""
    out = removed(settings)
    hooks = out.setdefault("hooks", {})
    for event, matcher in EVENTS.items():
        group: dict[str, Any] = {} if matcher is None else {"matcher": matcher}
        group["hooks"] = [{"type": "command", "command": command, "timeout": HOOK_TIMEOUT_S}]
        hooks.setdefault(event, []).append(group)
    return out


def removed(settings: Settings) -> Settings:
    """``settings`` without kei's entries and without what that removal left empty."""
    out = dict(settings)
    hooks = _hooks_of(settings)
    if hooks is None:
        return out
    kept = {}
    for event, groups in hooks.items():
        left = [g for g in (_without_kei(g) for g in groups) if g is not None]
        if left or not groups:
            kept[event] = left
    if kept or not hooks:
        out["hooks"] = kept
    else:
        del out["hooks"]
    return out


def _without_kei(group: Any) -> Any:
    """The group without kei's commands; None when only kei's were in it."""
    if not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
        return group
    entries = group["hooks"]
    left = [h for h in entries if not (isinstance(h, dict) and is_kei_command(h.get("command")))]
    if len(left) == len(entries):
        return group
    return {**group, "hooks": left} if left else None


def _hooks_of(settings: Settings) -> dict[str, list[Any]] | None:
    hooks = settings.get("hooks")
    if hooks is None:
        return None
    if not isinstance(hooks, dict):
        raise InputError('its "hooks" is not a JSON object')
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            raise InputError(f'its "hooks"."{event}" is not a JSON list')
    return hooks


def load(path: Path) -> Settings:
    """The settings object at ``path`` (empty when there is no file)."""
    try:
        data = read_at_most(path, SETTINGS_MAX_BYTES)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > SETTINGS_MAX_BYTES:
        raise InputError(f"{path} is over {SETTINGS_MAX_BYTES} bytes; not a settings file")
    try:
        body = json.loads(data) if data.strip() else {}
    except ValueError as exc:
        raise InputError(f"{path} is not valid JSON ({exc}); fix it, then run again") from None
    if not isinstance(body, dict):
        raise InputError(f"{path} is not a JSON object; fix or move it, then run again")
    try:
        _hooks_of(body)
    except InputError as exc:
        raise InputError(f"{path}: {exc}; fix it, then run again") from None
    return body


def save(path: Path, settings: Settings) -> None:
    """Write ``settings`` to ``path`` atomically: a temporary file beside the target,
    flushed, given the old file's mode, renamed over it."""
    target = path.resolve() if path.is_symlink() else path
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    text = json.dumps(settings, indent=2, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def update(path: Path, change: Any) -> bool:
    """Apply ``change`` (settings -> settings) to the file; False when nothing changed
    (then the file is not rewritten)."""
    before = load(path)
    after = change(before)
    if after == before and (path.exists() or not after):
        return False
    save(path, after)
    return True
