"""Running a tunnel tool (``wg``, ``wg-quick``, ``ip``), optionally inside a network
namespace, with a timeout and bounded output.

Why one function: every mode shells out the same way, and every result must be safe to
hand on. A missing program or a timeout is a result (``exit_code`` None and a line
saying so), never an exception, because ``configure`` reports failures as results.
Standard output is returned to the caller only (``wg show dump`` holds keys): nothing
here logs it.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from typing import Final

from msgspec import Struct

log = logging.getLogger(__name__)

MOST_BYTES: Final = 4 * 1024 * 1024
DEFAULT_TIMEOUT_S: Final = 30.0


class Completed(Struct, frozen=True):
    """What a command did: ``exit_code`` None when it did not start or end in time."""

    exit_code: int | None
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def in_netns(argv: Sequence[str], netns: str | None) -> list[str]:
    """``argv``, run inside namespace ``netns`` when one is named (``ip netns exec``)."""
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


def run(
    argv: Sequence[str],
    *,
    netns: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    stdin: str | None = None,
) -> Completed:
    """Run ``argv`` (in ``netns``), ``env`` added to this process's environment."""
    full = in_netns(argv, netns)
    environ = {**os.environ, **(env or {})}
    log.debug("running %s", " ".join(full[:6]))
    try:
        done = subprocess.run(full, input=(stdin or "").encode(), capture_output=True,
                              timeout=timeout_s, env=environ, check=False)  # fmt: skip
    except FileNotFoundError:
        return Completed(None, "", f"{full[0]}: not found (is it installed?)")
    except subprocess.TimeoutExpired:
        return Completed(None, "", f"{argv[0]}: no answer within {timeout_s:g} s")
    except OSError as exc:
        return Completed(None, "", f"{full[0]}: cannot run ({exc.strerror or exc})")
    return Completed(done.returncode, _text(done.stdout), _text(done.stderr))


def _text(raw: bytes) -> str:
    return raw[:MOST_BYTES].decode("utf-8", "replace")
