"""The read models over HTTP: the same services and objects as the CLI's ``--json``.

Each answer carries ``"at"``, the log position it was computed at (the position the
read models had folded to, or the head the read started from). Reads run on the
backend's read thread, where the services' read models stay open between requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from kei.adapters.http.answers import answer
from kei.adapters.http.backend import Backend
from kei.adapters.http.params import choice, integer, moment
from kei.adapters.http.problems import ApiError
from kei.app.cost_reads import GROUPS, Window
from kei.app.json_form import rfc3339
from kei.app.services import Services


async def health(request: Request, backend: Backend) -> Response:
    from kei import __version__

    return answer({"ok": True, "version": __version__})


async def agents(request: Request, backend: Backend) -> Response:
    def work(services: Services) -> dict[str, Any]:
        costs = _caught_up(services)
        spent = {r.key: r.micro_cents for r in costs.rows}
        service = services.agents().caught_up()
        t = service.projection.table
        rows = service.rows(order=(t.c.forked_us.desc(), t.c.id.desc()))
        return {"at": service.models.position(), "agents": [_agent(r, spent) for r in rows]}

    return answer(await backend.read(work))


def _caught_up(services: Services) -> Any:
    from kei.app import cost_reads

    cost_reads.caught_up(services.ledger, seal_key=services.seal_key)
    return cost_reads.report(services.ledger.store, "agent", services.catalog)


def _agent(row: dict[str, Any], spent: dict[str, int]) -> dict[str, Any]:
    return {
        "agent_id": row["id"], "parent_agent_id": row.get("parent_agent_id"),
        "branch": row.get("branch"), "status": row["status"], "forked_us": row["forked_us"],
        "ended_us": row.get("finished_us"), "cost_micro_cents": spent.get(row["id"], 0),
        "summary": row.get("summary"), "reason": row.get("reason"),
        "outcome": row.get("outcome"),
    }  # fmt: skip


async def costs(request: Request, backend: Backend) -> Response:
    from kei.app import cost_reads

    by = choice(request, "by", GROUPS, "agent")
    since, until = moment(request, "since"), moment(request, "until")

    def work(services: Services) -> dict[str, Any]:
        ledger = services.ledger
        at = ledger.store.max_position()
        cost_reads.caught_up(ledger, seal_key=services.seal_key, only=["costs"])
        found = cost_reads.report(ledger.store, by, services.catalog, Window(since, until))
        return {"at": at, **cost_reads.report_dict(found, since, until_us=until)}

    return answer(await backend.read(work))


async def cost_series(request: Request, backend: Backend) -> Response:
    from kei.app import cost_reads
    from kei.app.cost_series import SPLITS, series

    choice(request, "bucket", ("day",), "day")
    split = choice(request, "split", tuple(SPLITS), "model")
    since, until = moment(request, "since"), moment(request, "until")
    if since is None:
        since = _days_ago(backend.clock_us(), SERIES_DAYS)

    def work(services: Services) -> dict[str, Any]:
        ledger = services.ledger
        at = ledger.store.max_position()
        cost_reads.caught_up(ledger, seal_key=services.seal_key, only=["costs"])
        found = series(ledger.store, split, Window(since, until))
        return {"at": at, "bucket": "day", "split": split, "series": found,
                "budgets": _budgets(services)}  # fmt: skip

    return answer(await backend.read(work))


SERIES_DAYS = 30  # /v1/costs/series without since: the last 30 days (UTC)
_DAY_US = 86_400_000_000


def _days_ago(now_us: int, days: int) -> int:
    """The start (UTC midnight) of the day ``days`` before today."""
    return (now_us // _DAY_US - days) * _DAY_US


def _budgets(services: Services, at_us: int | None = None) -> list[dict[str, Any]]:
    from kei.app.budgets.status import status

    found = status(services.ledger, seal_key=services.seal_key, at_us=at_us,
                   catalog=services.catalog)  # fmt: skip
    return [s.to_dict() for s in found]


async def budgets(request: Request, backend: Backend) -> Response:
    now = backend.clock_us()

    def work(services: Services) -> dict[str, Any]:
        at = services.ledger.store.max_position()  # the read models fold at least this far
        return {"at": at, "measured_at": rfc3339(now), "budgets": _budgets(services, now)}

    return answer(await backend.read(work))


async def posteriors(request: Request, backend: Backend) -> Response:
    def work(services: Services) -> dict[str, Any]:
        routes = services.routes()
        rows = routes.posteriors()
        return {"at": routes.models.position(), "posteriors": [r.to_dict() for r in rows]}

    return answer(await backend.read(work))


async def verify(request: Request, backend: Backend) -> Response:
    now = backend.clock_us()
    return answer(await backend.blocking(lambda: backend.verify.status(now)))


async def checkpoint(request: Request, backend: Backend) -> Response:
    at, text = await backend.read(lambda _: backend.checkpoint())
    return PlainTextResponse(text, headers={"X-Kei-At": str(at)})


async def inclusion(request: Request, backend: Backend) -> Response:
    """The audit path of one event in the tree of the log now (``kei prove inclusion``)."""
    from kei.app.ledger.proving import prove_inclusion

    return await _proof(request, backend, "position", prove_inclusion)


async def consistency(request: Request, backend: Backend) -> Response:
    """The proof that the log now extends its first ``first`` entries."""
    from kei.app.ledger.proving import prove_growth

    return await _proof(request, backend, "first", prove_growth)


async def _proof(request: Request, backend: Backend, name: str,
                 prove: Callable[[Any, str, int], Any]) -> Response:  # fmt: skip
    """``prove(store, ledger_id, ?name=N)`` with the head it was made at."""
    number = integer(request, name, least=1)
    if number is None:
        raise ApiError(422, "invalid-parameter", f"{name} is required: ?{name}=N")

    def work(services: Services) -> dict[str, Any]:
        ledger = services.ledger
        at = ledger.store.max_position()
        return {"at": at, **prove(ledger.store, ledger.ledger_id, number).to_dict()}

    return answer(await backend.read(work))
