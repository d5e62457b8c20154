"""The steps of ``kei demo``, in order: small functions sharing one ``DemoRun``
(``run.py``); a new feature adds a step. One story: an orchestrator's team forks, spends
and finishes; the tail, the tree and the cost report all show that team. The agent steps go through the same services
and renderers as ``kei agent`` and ``kei cost``, so the demo shows what those print."""

from __future__ import annotations

from collections.abc import Callable

from kei.adapters.cli.demo.agent_steps import step_agents, step_route, step_show
from kei.adapters.cli.demo.integrity_steps import (
    step_bundle,
    step_catch,
    step_prove,
    step_tamper,
    step_verify,
)
from kei.adapters.cli.demo.ledger_steps import step_init, step_rotate, step_tail
from kei.adapters.cli.demo.memory_steps import step_memory, step_retro
from kei.adapters.cli.demo.run import DemoRun, step_next

STEPS: tuple[Callable[[DemoRun], None], ...] = (
    step_init,
    step_agents,
    step_rotate,
    step_tail,
    step_show,
    step_route,
    step_memory,
    step_retro,
    step_bundle,
    step_verify,
    step_prove,
    step_tamper,
    step_catch,
    step_next,
)
