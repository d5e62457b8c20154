"""The options many commands share, declared once, so that one flag means one thing
(and has one help text) everywhere ``kei`` takes it.

- Output: ``--json`` is :data:`JsonObject` where a command answers with one object and
  :data:`JsonLines` where it answers with one object per item (NDJSON, each line
  flushed); :func:`chosen_format` is the one check of ``--format`` against ``--json``.
- Time: ``--since`` is always a time (:data:`Since`: a duration back, ``30d``, a
  date/time or unix seconds, read against the clock by :func:`time_us`); a position in
  the log is ``--after`` (:data:`AfterPosition`).
- Files: :data:`OutFile` and :data:`Force` for the commands that write a file.
- Choices: a closed set of values is a ``Literal`` (typer shows ``[a|b|c]`` in help,
  refuses anything else and the shell completes it); each mirrors a tuple the domain
  checks against, and ``tests/cli/test_cli_habits.py`` keeps the two equal.
- Groups: :func:`option_group` declares options that go together once and hands them
  to a command as one value; :data:`charge_options` are the ten token, amount and speed
  options of ``kei cost record`` and ``kei cost amend``, as one :class:`ChargeOptions`.

Integers are bounded here as everywhere (``limits.py``): :func:`number` declares a
whole-number option, shown as N, with its bounds.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

import typer
from msgspec import Struct
from msgspec.structs import fields

from kei.adapters.cli.limits import CENTS_MAX, COUNT_MAX, INT64_MAX, INT64_MIN
from kei.domain.agents.money import MICRO_CENTS_PER_CENT
from kei.domain.events.payload import TokenUsage
from kei.errors import InputError

# -- output ---------------------------------------------------------------------------

JsonObject = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
JsonLines = Annotated[
    bool, typer.Option("--json", help="Print JSON on stdout, one object per line.")
]


def chosen_format(
    fmt: str | None, *, as_json: bool, formats: Mapping[str, str], default: str
) -> str:
    """The output format ``--format`` names (an alias in ``formats`` maps to its format),
    ``json`` for ``--json``, else ``default``; an unknown format, or ``--json`` with
    another format, is a usage error."""
    chosen = formats.get((fmt or ("json" if as_json else default)).lower())
    if chosen is None:
        names = " or ".join(sorted(set(formats.values())))
        raise InputError(f"unknown format {fmt!r}; use {names}")
    if as_json and chosen != "json":
        raise InputError(f"--json conflicts with --format {fmt}")
    return chosen


# -- choices -------------------------------------------------------------------------

OutcomeName = Literal["functional", "partial", "scaffolding", "fail"]  # events.OUTCOMES
AgentStatus = Literal["running", "done", "failed", "merged"]
CostGroup = Literal[
    "agent", "provider", "model", "day", "month", "session", "project", "block"
]  # cost_reads.GROUPS
RoutePolicy = Literal["bound", "thompson"]  # routing.select.POLICIES
Speed = Literal["standard", "fast"]  # catalog.pricing: the speeds a price can have
BudgetPeriod = Literal["day", "month", "total"]  # events.budgets.PERIODS
TokenScope = Literal["read", "write", "admin"]  # tokens.grant.SCOPES
LeakScope = Literal["all-writes", "public-mirror", "github-push", "commit-msg"]  # rules.SCOPES
LeakSeverity = Literal["block", "warn", "substitute"]  # what a finding can be
LeakCategory = Literal["patent-ip", "secret", "personal", "internal-infra", "private-project"]
ModelStatus = Literal["active", "deprecated", "preview", "beta"]  # catalog.STATUSES
EventsFormat = Literal["jsonl"]
SkillFormat = Literal["markdown", "md", "json"]

OutcomeOpt = Annotated[OutcomeName, typer.Option("--outcome", help="How the work turned out.")]


def text_option(flag: str, metavar: str, help: str) -> Any:
    """An optional text option (default None), as a table of options declares one."""
    return Annotated[str | None, typer.Option(flag, metavar=metavar, help=help)]


# -- time and positions ---------------------------------------------------------------

Since = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="WHEN",
        help="From then on: a duration back (30d, 12h), a date/time or unix seconds.",
    ),
]
Until = Annotated[
    str | None,
    typer.Option(
        "--until",
        metavar="WHEN",
        help="Before then: a duration back (1d), a date/time or unix seconds.",
    ),
]
AfterPosition = Annotated[
    int,
    typer.Option(
        "--after", min=0, max=INT64_MAX, metavar="POSITION", help="Only events after POSITION."
    ),
]


def since_us(text: str | None) -> int | None:
    """A ``--since`` value as a microsecond timestamp; None when it was not given."""
    return None if text is None else time_us(text)


def time_us(text: str, flag: str = "--since", *, ahead: bool = False) -> int:
    """A time option's value (``--since``, ``--before``, ``--until``: ``flag``, which
    errors name) as a microsecond timestamp: a duration is read back from now (forward
    with ``ahead``, as ``--expires 30d``), the clock read here and nowhere else."""
    from kei.domain.agents.skills import parse_since

    return parse_since(text, now_us(), flag, ahead=ahead)


def now_us() -> int:
    """The wall clock in microseconds since the epoch, as events record time."""
    return int(datetime.now(UTC).timestamp() * 1_000_000)


# -- files ----------------------------------------------------------------------------

OutFile = Annotated[
    str | None,
    typer.Option(
        "--out",
        "-o",
        metavar="FILE",
        help="Write it to FILE (atomically) instead of stdout ('-': stdout).",
    ),
]
Force = Annotated[
    bool, typer.Option("--force", help="Replace FILE if it exists (a regular file only).")
]
# kei migrate and kei import kei-migrate: the database migrated (upstream's $DATABASE_URL)
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target",
        "--database-url",
        envvar="DATABASE_URL",
        metavar="URL",
        help="The database (sqlite:////abs.db, postgresql://user@host/db, "
        "mysql+pymysql://user@host/db); default $DATABASE_URL. Its credentials are never "
        "recorded or printed.",
        show_default=False,
    ),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Check and report; write nothing.")]

# -- money ----------------------------------------------------------------------------

BudgetMicro = Annotated[
    int | None,
    typer.Option(
        "--budget-micro",
        metavar="MICRO_CENTS",
        min=0,
        max=INT64_MAX,
        help="Most µ¢ for 1k input + 1k output tokens.",
    ),
]
_Count = int | None


def number(*flags: str, help: str, least: int = 1, most: int = COUNT_MAX) -> Any:
    """A whole-number option, shown as N and bounded as every integer kei takes (by
    default a count: 1 to ``COUNT_MAX``); typer refuses a value out of bounds."""
    return typer.Option(*flags, metavar="N", min=least, max=most, help=help)


def _tokens(flag: str, help: str) -> Any:
    """A token count as ``cost record`` and ``cost amend`` take it: any int64 (the
    field limits, not the parser, refuse a negative count, with the field's name)."""
    return number(flag, least=INT64_MIN, most=INT64_MAX, help=help)


_TokensIn = Annotated[
    _Count,
    _tokens("--tokens-in", "Input tokens, all of them: cache reads and writes included "
            "(OpenTelemetry GenAI; Anthropic's input_tokens leave them out)."),
]  # fmt: skip
_TokensOut = Annotated[_Count, _tokens("--tokens-out", "Output tokens, reasoning included.")]
_CacheRead = Annotated[
    _Count,
    _tokens("--cache-read-tokens", "Input tokens read from the cache (part of --tokens-in)."),
]
_CacheWrite = Annotated[
    _Count,
    _tokens("--cache-write-tokens", "Input tokens written to the cache, 5-minute and 1-hour "
            "(part of --tokens-in)."),
]  # fmt: skip
_CacheWrite5m = Annotated[
    _Count, _tokens("--cache-write-5m-tokens", "Of the cache writes, those kept 5 minutes.")
]
_CacheWrite1h = Annotated[
    _Count, _tokens("--cache-write-1h-tokens", "Of the cache writes, those kept 1 hour.")
]
_Reasoning = Annotated[
    _Count, _tokens("--reasoning-tokens", "Reasoning tokens (part of --tokens-out).")
]
_Micro = Annotated[
    _Count,
    typer.Option(
        "--micro-cents",
        metavar="MICRO_CENTS",
        min=-INT64_MAX,
        max=INT64_MAX,
        help="The amount in micro-cents (1 cent = 1,000,000).",
    ),
]
SpeedOpt = Annotated[
    Speed | None,
    typer.Option("--speed", help="The speed the call ran at; fast: the entry's fast-mode "
                 "rates (Anthropic's usage.speed). Default: standard."),
]  # fmt: skip
_Cents = Annotated[
    _Count,
    typer.Option(
        "--cents", metavar="CENTS", min=-CENTS_MAX, max=CENTS_MAX, help="The amount in whole cents."
    ),
]


class ChargeOptions(Struct, frozen=True):
    """What a cost command was told about one model call: its token counts by tier (in
    ``TokenUsage``'s convention), and the amount when it was given by hand (else the
    catalog prices the tokens)."""

    tokens_in: int | None = None
    tokens_out: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    cache_write_5m: int | None = None
    cache_write_1h: int | None = None
    reasoning: int | None = None
    micro_cents: int | None = None
    cents: int | None = None
    speed: str | None = None

    def usage(self) -> TokenUsage:
        write, write_1h = self._writes()
        return TokenUsage(
            input_tokens=self.tokens_in,
            output_tokens=self.tokens_out,
            cache_read_tokens=self.cache_read,
            cache_write_tokens=write,
            reasoning_tokens=self.reasoning,
            cache_write_1h_tokens=write_1h,
        )

    def _writes(self) -> tuple[int | None, int | None]:
        """All cache writes and the one-hour part, from any two of the three flags."""
        total, short, long = self.cache_write, self.cache_write_5m, self.cache_write_1h
        if short is None and long is None:
            return total, None
        if total is None:
            return (short or 0) + (long or 0), long or 0
        if long is None:
            long = total - (short or 0)
        if short is not None and short + long != total:
            raise InputError(
                f"--cache-write-5m-tokens ({short}) + --cache-write-1h-tokens ({long}) "
                f"is not --cache-write-tokens ({total})"
            )
        return total, long

    @property
    def has_tokens(self) -> bool:
        counts = (self.tokens_in, self.tokens_out, self.cache_read, self.cache_write,
                  self.cache_write_5m, self.cache_write_1h)  # fmt: skip
        return any(c is not None for c in (*counts, self.reasoning))

    def amount(self) -> int | None:
        """The amount in micro-cents given by ``--micro-cents`` or ``--cents`` (not both)."""
        if self.micro_cents is not None and self.cents is not None:
            raise InputError("give --micro-cents or --cents, not both")
        return self.cents * MICRO_CENTS_PER_CENT if self.cents is not None else self.micro_cents


_CHARGE_OPTIONS: dict[str, Any] = dict(
    zip(
        (f.name for f in fields(ChargeOptions)),
        (_TokensIn, _TokensOut, _CacheRead, _CacheWrite, _CacheWrite5m, _CacheWrite1h,
         _Reasoning, _Micro, _Cents, SpeedOpt),
        strict=True,
    )
)  # fmt: skip


def option_group(
    param: str,
    options: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
    make: Callable[..., Any],
    defaults: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A decorator for options that go together: the command's keyword-only ``param``
    becomes the options of ``options`` (name -> typer annotation; default None unless
    ``defaults`` says), in its place (typer reads the signature), and the command is
    called with ``make(**those options)`` as ``param``. The options are declared once, for
    every command that takes them; given as a function, their table is made only when
    the command is built."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        return _Grouped(command, param, options, make, defaults or {})

    return decorate


class _Grouped:
    """A command with an option group in place of one parameter (:func:`option_group`).
    Its signature is built when typer first reads it, that is when the command is
    built: importing a command module evaluates no annotations (a write's latency)."""

    def __init__(self, command: Callable[..., None], param: str,
                 options: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
                 make: Callable[..., Any], defaults: Mapping[str, Any]) -> None:  # fmt: skip
        functools.update_wrapper(self, command, assigned=("__module__", "__name__", "__doc__"))
        self.command, self.param, self.table = command, param, options
        self.make, self.defaults = make, defaults

    @functools.cached_property
    def options(self) -> Mapping[str, Any]:
        return self.table() if callable(self.table) else self.table

    def __call__(self, **given: Any) -> None:
        group = self.make(**{name: given.pop(name) for name in self.options})
        self.command(**given, **{self.param: group})

    @functools.cached_property
    def __signature__(self) -> inspect.Signature:
        signature = inspect.signature(self.command, eval_str=True)
        params: list[inspect.Parameter] = []
        for p in signature.parameters.values():
            if p.name != self.param:
                params.append(p)
                continue
            params += [
                inspect.Parameter(name, p.kind, default=self.defaults.get(name), annotation=kind)
                for name, kind in self.options.items()
            ]
        return signature.replace(parameters=params)

    @property
    def __annotations__(self) -> dict[str, Any]:  # type: ignore[override]
        """The signature's annotations (``typing.get_type_hints`` reads these)."""
        return {p.name: p.annotation for p in self.__signature__.parameters.values()}


charge_options: Final = option_group("charge", _CHARGE_OPTIONS, ChargeOptions)
"""Give a command the ten charge options in place of its keyword-only ``charge:
ChargeOptions`` parameter, and call it with them as one ``ChargeOptions``."""
