"""``kei route select|outcome|escalate|explain|calibrate`` and ``kei posterior show``.

Thin: ``kei.app.routing`` decides and appends; this module parses flags,
prints, and maps results to exit codes. Data goes to stdout (``--json``: one object per
line), confirmations to stderr. ``select`` prints upstream's lines (``model:``,
``expected_cost``, ``q_lower_bound``, ``reason:``) after the decision id that later
commands take. ``explain`` exits 1 when the log no longer re-derives the decision.
"""

from __future__ import annotations

import math
import secrets
from contextlib import AbstractContextManager
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kei.adapters.cli.context import answering, command_group, open_ledger, service_scope, stderr
from kei.adapters.cli.limits import INT64_MAX
from kei.adapters.cli.options import DryRun, JsonLines, JsonObject, OutcomeOpt, RoutePolicy, number
from kei.adapters.cli.output import json_line
from kei.app.ledger.tail import printable as safe
from kei.domain.routing.posterior import Beta

if TYPE_CHECKING:
    from kei.adapters.cli.config import Settings
    from kei.app.routing import Explanation, Routed, RouteService

route_app, _register_route = command_group(
    "route", "Route tasks to the cheapest model good enough."
)
posterior_app, _register_posterior = command_group(
    "posterior", "The Beta posteriors the router learns."
)

DecisionArg = Annotated[
    str, typer.Argument(metavar="DECISION", help="The decision id `kei route select` printed.")
]


def register(app: typer.Typer) -> None:
    _register_route(app)
    _register_posterior(app)


def _service(settings: Settings, *, write: bool = False) -> AbstractContextManager[RouteService]:
    from kei.adapters.files.catalog import load_catalog
    from kei.app.routing import RouteService

    catalog = load_catalog(settings.home)
    return service_scope(settings, partial(RouteService, catalog=catalog), write=write)


@route_app.command("select")
def select_cmd(
    ctx: typer.Context,
    dna: Annotated[str, typer.Option("--dna", metavar="DNA", help="The task's DNA.")],
    prompt: Annotated[
        str, typer.Option("--prompt", metavar="TEXT", help="The task's prompt (complexity).")
    ] = "",
    pin: Annotated[
        str | None, typer.Option("--pin", metavar="MODEL", help="Use this model, no questions.")
    ] = None,
    policy: Annotated[RoutePolicy, typer.Option("--policy", help="How to choose.")] = "bound",
    seed: Annotated[
        int | None,
        number(
            "--seed", least=0, most=INT64_MAX, help="Thompson seed (default: random, recorded)."
        ),
    ] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", metavar="ID", help="The agent the task is for.")
    ] = None,
    budget: Annotated[
        str | None,
        typer.Option(
            "--budget",
            metavar="SCOPE",
            help="Leave out models whose estimated call costs more "
            "than this budget scope has left this period (kei budget status).",
        ),
    ] = None,
    budget_micro: Annotated[
        int | None,
        number(
            "--budget-micro",
            least=0,
            most=INT64_MAX,
            help="Leave out models whose estimated call costs more than N µ¢.",
        ),
    ] = None,
    dry_run: DryRun = False,
    as_json: JsonObject = False,
) -> None:
    """Choose the cheapest model whose posterior clears the bar, and record why."""
    from kei.domain.routing.select import DecisionInput

    with answering(ctx) as g:
        if policy == "thompson" and seed is None:
            seed = secrets.randbits(63)  # recorded with the decision, so explain re-derives it
        inp = DecisionInput(dna=dna, prompt=prompt, pinned=pin, policy=policy,
                            seed=seed if policy == "thompson" else None,
                            budget_micro_cents=budget_micro)  # fmt: skip
        if policy == "bound" and seed is not None:
            stderr().print("kei: --seed only matters with --policy thompson", markup=False)
        with _service(g.settings(), write=not dry_run) as service:
            routed = service.select(inp, dry_run=dry_run, agent_id=agent, budget=budget)
        _print_routed(routed, as_json)


def _print_routed(routed: Routed, as_json: bool) -> None:
    e = routed.event
    if as_json:
        json_line({"decision_id": e.decision_id, "event": routed.name, **_decided(e)})
        return
    cost = e.expected_cost_micro_cents
    typer.echo(
        f"decision: {safe(e.decision_id)}" + ("" if routed.name else " (dry run, not recorded)")
    )
    typer.echo(f"model: {safe(e.model)}")
    typer.echo(f"expected_cost ${cost / 100_000_000:.4f} (microcents={cost})")
    typer.echo(f"q_lower_bound {e.lower_bound:.3f} (posterior n={e.n})")
    typer.echo(f"reason: {safe(e.reason)}")
    typer.echo(f"complexity: tau={e.complexity_tau:.2f} tier={safe(e.tier)}")
    if e.budget_micro_cents is not None:
        scope = "" if e.budget_scope is None else f" left of {safe(e.budget_scope)}"
        typer.echo(f"budget: ${e.budget_micro_cents / 100_000_000:.4f}{scope} "
                   f"(microcents={e.budget_micro_cents})")  # fmt: skip


def _decided(e: Any) -> dict[str, Any]:
    import msgspec

    data: dict[str, Any] = msgspec.to_builtins(e)
    return data


@route_app.command("outcome")
def outcome_cmd(
    ctx: typer.Context,
    decision: DecisionArg,
    outcome: OutcomeOpt,
    depth: Annotated[
        int | None,
        number(
            "--escalation-depth", least=0, most=INT64_MAX, help="Default: the escalations recorded."
        ),
    ] = None,
    as_json: JsonObject = False,
) -> None:
    """Record how the routed work turned out: what the posteriors learn from."""
    from kei.app.route_writes import record_outcome

    with answering(ctx) as g, open_ledger(g.settings(), with_key=True) as ledger:
        name = record_outcome(ledger, decision, outcome, depth)  # no read model: fast
    if as_json:
        json_line({"ok": True, "decision_id": decision, "event": name, "outcome": outcome})
    else:
        stderr().print(f"kei: recorded {outcome} for {safe(decision)} ({name})", markup=False)


@route_app.command("escalate")
def escalate_cmd(ctx: typer.Context, decision: DecisionArg, as_json: JsonObject = False) -> None:
    """After a failure: one step up the ladder (at most two), or surrender (exit 1)."""
    with answering(ctx) as g, _service(g.settings(), write=True) as service:
        step = service.escalate(decision)
    if as_json:
        json_line({"decision_id": decision, "retry": step is not None,
                   **({} if step is None else {"model": step.to_model, "depth": step.depth})})  # fmt: skip
    elif step is not None:
        typer.echo(f"retry: {step.to_model} (depth {step.depth})")
    else:
        typer.echo("surrender: no higher model, or the escalation ceiling is reached")
    raise typer.Exit(0 if step is not None else 1)


@route_app.command("explain")
def explain_cmd(
    ctx: typer.Context,
    decision: DecisionArg,
    prompt: Annotated[
        str, typer.Option("--prompt", metavar="TEXT", help="The prompt, to re-derive complexity.")
    ] = "",
    as_json: JsonObject = False,
) -> None:
    """Re-derive a decision from the log as of its position, and show the evidence."""
    with answering(ctx) as g, _service(g.settings()) as service:
        found = service.explain(decision, prompt)
    if as_json:
        json_line(_explained(found))
    else:
        _print_explanation(found)
    raise typer.Exit(0 if not found.differences else 1)


def _explained(x: Explanation) -> dict[str, Any]:
    return {"decision_id": x.recorded.decision_id, "position": x.position,
            "outcomes_before": x.outcomes_before, "rederived": not x.differences,
            "differences": x.differences, "recorded": _decided(x.recorded)}  # fmt: skip


def _print_explanation(x: Explanation) -> None:
    e = x.recorded
    typer.echo(
        f"decision {safe(e.decision_id)} at position {x.position}: {safe(e.model)} "
        f"({safe(e.reason)})"
    )
    typer.echo(f"task class: {safe(str(e.task_class))}  policy: {safe(e.policy)}  seed: {e.seed}")
    typer.echo(f"q* {e.q_threshold}  delta {e.delta}  weights {_weights(e)}")
    typer.echo(f"evidence: {x.outcomes_before} outcome(s) in the log before it")
    if e.budget_micro_cents is not None:
        scope = "" if e.budget_scope is None else f" (left of {safe(e.budget_scope)})"
        typer.echo(f"budget: {e.budget_micro_cents} µ¢ per call{scope}")
    typer.echo("model\talpha\tbeta\tn\tlower_bound\tcost_micro\tsmoothed\tfeasible\tsample"
               + ("\tover_budget" if e.budget_micro_cents is not None else ""))  # fmt: skip
    for c in e.candidates:
        sample = "" if c.sample is None else f"{c.sample:.4f}"
        over = "" if e.budget_micro_cents is None else f"\t{c.over_budget}"
        typer.echo(f"{safe(c.model)}\t{c.alpha:g}\t{c.beta:g}\t{c.n}\t{c.lower_bound:.4f}\t"
                   f"{c.expected_cost_micro_cents}\t{c.smoothed}\t{c.feasible}\t{sample}{over}")  # fmt: skip
    if not x.differences:
        typer.echo("re-derived from the log: identical")
    for d in x.differences:
        typer.echo(f"differs: {safe(str(d))}")


def _weights(e: Any) -> str:
    w = e.weights
    ref = f" ({safe(e.weights_ref)})" if e.weights_ref else " (defaults)"
    return f"role={w.role:g} caps={w.caps:g} scope={w.scope:g} body={w.body:g}{ref}"


@route_app.command("calibrate")
def calibrate_cmd(
    ctx: typer.Context,
    apply: Annotated[
        bool, typer.Option("--apply", help="Record the weights for later decisions.")
    ] = False,
    as_json: JsonObject = False,
) -> None:
    """Upstream's leave-one-out grid search for the kernel weights."""
    with answering(ctx) as g, _service(g.settings(), write=apply) as service:
        result, name = service.calibrate(apply=apply)
    w = result.weights
    if as_json:
        json_line({"weights": w.to_dict(), "mse": _num(result.mse),
                   "baseline_mse": _num(result.baseline_mse), "evaluated": result.evaluated,
                   "applied": name})  # fmt: skip
        return
    typer.echo(f"weights: role={w.role:g} caps={w.caps:g} scope={w.scope:g} body={w.body:g}")
    typer.echo(f"mse {result.mse:.6f} (defaults {result.baseline_mse:.6f}), "
               f"{result.evaluated} outcome(s)")  # fmt: skip
    if name:
        stderr().print(f"kei: applied as {name}; later decisions use these weights", markup=False)


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x  # NaN has no JSON spelling


@posterior_app.command("show")
def show_cmd(
    ctx: typer.Context,
    task_class: Annotated[
        str | None, typer.Option("--task-class", metavar="CLASS", help="Only this class.")
    ] = None,
    as_json: JsonLines = False,
) -> None:
    """Each (task class, model): successes, failures, Beta mean and lower bound."""
    from kei.app.routing import SHOWN_DELTA as DELTA

    with answering(ctx) as g, _service(g.settings()) as service:
        rows = service.posteriors(task_class)
    if not rows and not as_json:
        stderr().print("kei: no outcomes recorded yet", markup=False)
    if not as_json and rows:
        typer.echo("task_class\tmodel\talpha\tbeta\tn\tmean\tlower_bound")
    for r in rows:
        b = Beta.from_counts(r.successes, r.failures)
        if as_json:
            json_line(r.to_dict())
        else:
            typer.echo(f"{safe(r.task_class)}\t{safe(r.model)}\t{b.alpha:g}\t{b.beta:g}\t{b.n}\t"
                       f"{b.mean:.3f}\t{b.lower_bound(DELTA):.3f}")  # fmt: skip
