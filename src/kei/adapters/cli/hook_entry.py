"""``kei hook claude-code`` without typer: Claude Code runs it on every tool call it
hooks, so ``entry.py`` sends the bare command here before the command tree is
imported; the typer command (``commands/hook_cmd.py``) calls the same function."""

from __future__ import annotations

import os
import sys

from kei.adapters.cli.config import home_of
from kei.adapters.cli.global_options import Globals


def claude_code(options: Globals) -> None:
    """Record the payload on stdin; never raises, prints nothing (see ``hooks/run.py``)."""
    from kei.adapters.hooks.run import HookTarget, run_claude_hook

    def target() -> HookTarget:
        s = options.settings()
        return HookTarget(s.home, s.db_url, s.key_path(), s.synchronous, s.retry)

    # KEI_HOME as config.resolve reads it, for a failure before the settings resolve
    run_claude_hook(sys.stdin.buffer, target, home_of(os.environ))
