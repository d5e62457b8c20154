"""The git branch a hook ran on: upstream's ``--parent`` for a forked subagent."""

from __future__ import annotations

import logging
import os
import subprocess
from typing import Final

log = logging.getLogger(__name__)
GIT_TIMEOUT_S: Final = 2.0  # a hook must never hang on a slow or locked repository


def current_branch(cwd: str | None) -> str | None:
    """The checked-out branch of the repository at ``cwd``; None when there is none
    (no ``cwd``, not a repository, a detached HEAD, no git, or git too slow)."""
    if not cwd or not os.path.isdir(cwd):
        return None
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", "-C", cwd, "symbolic-ref", "--quiet", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("no git branch for %s: %s", cwd, exc)
        return None
    branch = done.stdout.strip()
    return branch if done.returncode == 0 and branch and branch.isprintable() else None
