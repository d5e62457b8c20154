"""Command groups that import a command's module only when that command runs.

``kei agent fork`` should pay for the agent commands and nothing else: not for the
other nineteen modules, their libraries (SQLAlchemy, rich) or the typer commands
they declare. A :class:`LazyGroup` knows its commands from a table (name -> the
module whose ``register(app)`` declares it, plus the one-line help ``--help`` lists)
and builds the click command of a name on first use. ``--help`` and shell
completion list the table without importing anything; a test checks that each
table help is the loaded command's own.

The global options (``GLOBALS``) are also attached to every command a lazy group
loads, so ``kei agent fork A B --db X`` means ``kei --db X agent fork A B``: one
definition, read by the root callback and by :func:`_late_global`.
"""

from __future__ import annotations

import importlib
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from itertools import chain
from typing import Any, Final

import typer
from msgspec import Struct, field
from typer._click.core import Command, Context, Parameter
from typer._click.exceptions import UsageError
from typer.core import TyperCommand, TyperGroup, TyperOption

GLOBAL_PANEL: Final = "Global options"
_PREFIX: Final = "kei_global_"


class Global(Struct, frozen=True):
    """One global option: its flag, the ``Globals`` field it sets, its help, the
    metavar its value shows (none for a flag)."""

    flag: str
    field: str
    help: str
    metavar: str | None = None
    is_flag: bool = False


GLOBALS: Final = (
    Global(
        "--db",
        "db",
        "Store URL or SQLite path (default: $KEI_DB, else $KEI_HOME/ledger.db).",
        "URL",
    ),
    Global("--key", "key", "Signing key name or file (default: $KEI_KEY, else 'default').", "NAME"),
    Global(
        "--sqlite-sync", "synchronous", "SQLite durability: FULL (default), NORMAL or OFF.", "MODE"
    ),
    Global("--verbose", "verbose", "Show tracebacks on errors.", is_flag=True),
)


class Lazy(Struct, frozen=True):
    """A command (or command group) that ``module``'s ``register(app)`` declares."""

    module: str
    help: str


class Group(Struct, frozen=True):
    """A command group whose own commands load lazily, each from its module."""

    help: str
    commands: Mapping[str, Lazy] = field(default_factory=dict)


Entry = Lazy | Group


def _late_global(ctx: Context, param: Parameter, value: Any) -> Any:
    """A global option given after the command: set it on the root's ``Globals``,
    refusing one already given before the command (which value was meant is unknown)."""
    from kei.adapters.cli.global_options import Globals

    if value is None or value is False:
        return value
    root = ctx.find_root()
    if not isinstance(root.obj, Globals):  # the root's callback sets it; a test may not
        root.obj = Globals()
    g = root.obj
    name = (param.name or "").removeprefix(_PREFIX)
    if name != "verbose" and getattr(g, name) is not None:
        flag = param.opts[0]
        raise UsageError(f"{flag} given both before and after the command; give it once", ctx)
    setattr(g, name, value)
    return value


def _option(spec: Global) -> TyperOption:
    return TyperOption(
        param_decls=[spec.flag, _PREFIX + spec.field],  # never a command's own name
        type=bool if spec.is_flag else str,
        is_flag=spec.is_flag or None,
        default=False if spec.is_flag else None,
        expose_value=False,
        callback=_late_global,
        help=spec.help,
        metavar=spec.metavar,
        rich_help_panel=GLOBAL_PANEL,
    )


def add_globals(command: Command) -> None:
    """Give every leaf command below ``command`` the global options it does not
    define itself (``kei replay --db`` keeps its own meaning)."""
    if isinstance(command, TyperGroup):
        if not isinstance(command.commands, _Leaves):  # those get them when built
            for sub in command.commands.values():
                add_globals(sub)
        return
    taken = {opt for p in command.params for opt in p.opts}
    command.params.extend(_option(g) for g in GLOBALS if g.flag not in taken)


def _built(module: str, cache: dict[str, TyperGroup]) -> TyperGroup:
    """The click commands ``module`` registers, built once per process; the leaves of
    its command groups are built one by one when used (:class:`_Leaves`)."""
    if module not in cache:
        scratch = typer.Typer(add_completion=False)
        importlib.import_module(f"kei.adapters.cli.commands.{module}").register(scratch)
        groups = {_name(g): g.typer_instance for g in scratch.registered_groups
                  if g.typer_instance is not None}  # fmt: skip
        leaves = {name: g.registered_commands for name, g in groups.items()}
        for g in groups.values():  # typer builds every leaf of a group: not here
            g.registered_commands = []
        try:
            built = typer.main.get_group(scratch)
        finally:
            for name, g in groups.items():
                g.registered_commands = leaves[name]
        for name, commands in leaves.items():
            group = built.commands.get(name)
            if isinstance(group, TyperGroup) and commands:
                group.commands = _Leaves(commands, group.commands, scratch)
        cache[module] = built
    return cache[module]


def _name(info: Any) -> str:
    """The name a group was added under (``add_typer(..., name=)``), else its own."""
    for name in (info.name, info.typer_instance.info.name):
        if isinstance(name, str):
            return name
    return ""


class _LoadedOnUse(MutableMapping[str, Command]):
    """Commands by name, built by ``_load`` on first lookup and kept in ``loaded``; what a
    caller sets or deletes changes only what was loaded (click adds and removes commands).
    The names are those of ``_sources()``, in order, each once."""

    loaded: dict[str, Command]

    @abstractmethod
    def _load(self, name: str) -> Command:
        """The command ``name``, not yet loaded (KeyError: no such command)."""

    @abstractmethod
    def _sources(self) -> tuple[Iterable[str], ...]:
        """Where the names come from, in listing order."""

    def _keep(self, name: str, command: Command) -> Command:
        """Keep a leaf command, with the global options, for later lookups."""
        add_globals(command)
        self.loaded[name] = command
        return command

    def __getitem__(self, name: str) -> Command:
        return self.loaded[name] if name in self.loaded else self._load(name)

    def __setitem__(self, name: str, command: Command) -> None:
        self.loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self.loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(chain.from_iterable(self._sources())))

    def __len__(self) -> int:
        return len(set(chain.from_iterable(self._sources())))


class _Leaves(_LoadedOnUse):
    """A typer group's leaf commands, each built (with the global options) when first
    looked up: ``kei agent fork`` builds ``fork``, not the group's other commands;
    listing them (help, completion) builds them all."""

    def __init__(self, infos: list[Any], others: MutableMapping[str, Command],
                 app: typer.Typer) -> None:  # fmt: skip
        from typer.main import get_command_name

        self.infos = {i.name or get_command_name(i.callback.__name__): i for i in infos}
        self.loaded: dict[str, Command] = {}
        self.others = others  # sub-groups, built by typer as usual
        self.app = app

    def _load(self, name: str) -> Command:
        if name not in self.infos:
            return self.others[name]
        command = typer.main.get_command_from_info(
            self.infos[name], pretty_exceptions_short=self.app.pretty_exceptions_short,
            rich_markup_mode=self.app.rich_markup_mode,
        )  # fmt: skip
        return self._keep(name, command)

    def _sources(self) -> tuple[Iterable[str], ...]:
        return self.infos, self.others, self.loaded


class _Commands(_LoadedOnUse):
    """A group's commands by name, each loaded on first access; while ``listing``
    (help, completion), a stub carrying the table's help stands in."""

    def __init__(self, table: Mapping[str, Entry], built: dict[str, TyperGroup]) -> None:
        self.table = table
        self.built = built  # modules' commands, built once, shared by the root's groups
        self.loaded: dict[str, Command] = {}
        self.listing = False

    def __getitem__(self, name: str) -> Command:
        if self.listing and name in self.table:  # loaded or not: help reads the same
            return self._stub(name)
        return super().__getitem__(name)

    def _stub(self, name: str) -> Command:
        entry = self.table[name]
        return TyperCommand(name=name, help=entry.help, short_help=entry.help)

    def _load(self, name: str) -> Command:
        entry = self.table[name]
        if self.listing:
            return self._stub(name)
        if isinstance(entry, Group):  # its own commands get the global options
            self.loaded[name] = LazyGroup(
                name=name, table=entry.commands, help=entry.help, built=self.built
            )
            return self.loaded[name]
        return self._keep(name, _built(entry.module, self.built).commands[name])

    def _sources(self) -> tuple[Iterable[str], ...]:
        return self.table, self.loaded


class LazyGroup(TyperGroup):
    """A typer group over a table of lazily loaded commands (see the module docstring)."""

    def __init__(
        self,
        *,
        table: Mapping[str, Entry] | None = None,
        built: dict[str, TyperGroup] | None = None,
        **attrs: Any,
    ) -> None:
        attrs.setdefault("no_args_is_help", True)
        super().__init__(**attrs)
        self.built: dict[str, TyperGroup] = {} if built is None else built
        self.commands = _Commands(table if table is not None else {}, self.built)

    def set_table(self, table: Mapping[str, Entry]) -> None:
        self.commands = _Commands(table, self.built)

    def format_help(self, ctx: Context, formatter: Any) -> None:
        with self._listing():
            super().format_help(ctx, formatter)

    def shell_complete(self, ctx: Context, incomplete: str) -> Any:
        with self._listing():
            return super().shell_complete(ctx, incomplete)

    def _listing(self) -> _Listing:
        return _Listing(self.commands)


class _Listing:
    """While open, the group's commands are stubs: listing names costs no imports."""

    def __init__(self, commands: MutableMapping[str, Command]) -> None:
        self.commands = commands

    def __enter__(self) -> None:
        if isinstance(self.commands, _Commands):
            self.commands.listing = True

    def __exit__(self, *exc: object) -> None:
        if isinstance(self.commands, _Commands):
            self.commands.listing = False
