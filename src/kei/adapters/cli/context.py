"""Shared CLI plumbing: global options, settings, command groups, opening the ledger
(and a read-model service over it), error printing.

Command modules import heavy libraries (the stores, SQLAlchemy, the services) inside
their command functions, and this module imports none at the top, so each command
loads only what it uses (``kei --help`` and ``kei models`` never load a store).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Protocol, TypeVar

import typer

from kei.adapters.cli import config
from kei.adapters.cli.exits import ExitTable, exit_code_for
from kei.adapters.cli.global_options import Globals
from kei.adapters.cli.limits import too_long
from kei.adapters.cli.lines import Lines
from kei.adapters.cli.output import print_error, stdout_closed_ok
from kei.errors import KeiError

if TYPE_CHECKING:
    from kei.app.ledger.ledger import Ledger
    from kei.domain.log.keys import SigningKey

_Service = TypeVar("_Service")
_Service_co = TypeVar("_Service_co", covariant=True)


def command_group(name: str, help: str) -> tuple[typer.Typer, Callable[[typer.Typer], None]]:
    """A ``kei`` command group (called with no command, it shows its help), and the
    ``register(app)`` that adds it to ``app`` as ``kei NAME``."""
    group = typer.Typer(help=help, no_args_is_help=True)
    return group, lambda app: app.add_typer(group, name=name)


def stderr() -> Lines:
    """Plain message lines on stderr (rich is not loaded for them)."""
    return Lines()


def globals_of(ctx: typer.Context) -> Globals:
    obj = ctx.find_root().obj
    if not isinstance(obj, Globals):
        obj = Globals()
        ctx.find_root().obj = obj
    return obj


def fail(error: KeiError, *, verbose: bool = False, table: ExitTable = ()) -> typer.Exit:
    """Print one line (plus an optional hint) to stderr; return the exit to raise, with
    the code ``table`` (else kei's table) gives the error."""
    if verbose:
        raise error
    print_error(error)
    return typer.Exit(exit_code_for(error, table))


@contextmanager
def handled(ctx: typer.Context, *, table: ExitTable = ()) -> Iterator[Globals]:
    """Run a command body, turning any KeiError into one line and its exit code (from
    ``table`` where a command group keeps an upstream tool's codes, see ``exits.py``)."""
    g = globals_of(ctx)
    try:
        with _repairs_on_stderr():
            yield g
    except KeiError as exc:
        raise fail(exc, verbose=g.verbose, table=table) from None
    except OSError as exc:
        error = too_long(exc)  # a path the user gave that no file system accepts
        if error is None:
            raise
        raise fail(error, verbose=g.verbose, table=table) from None


@contextmanager
def answering(ctx: typer.Context, *, table: ExitTable = ()) -> Iterator[Globals]:
    """:func:`handled`, for a command that answers on stdout: a reader that stops
    reading (``| head``) ends it with exit 0, not an error."""
    with handled(ctx, table=table) as g, stdout_closed_ok():
        yield g


class _WarningLine(logging.Handler):
    """A library warning (a read model rebuilt from the log) as one ``kei: warning:`` line."""

    def emit(self, record: logging.LogRecord) -> None:
        line = " ".join(record.getMessage().split())
        stderr().print(f"kei: warning: {line}", markup=False)


@contextmanager
def _repairs_on_stderr() -> Iterator[None]:
    """Say on stderr when the projection engine rebuilt a read model that disagreed with
    the log, so a user never reads repaired numbers without knowing."""
    logger = logging.getLogger("kei.adapters.readmodels.engine")
    handler = _WarningLine(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def seal_key(settings: config.Settings) -> bytes:
    """The read models' seal key in ``KEI_HOME`` (made on first use)."""
    from kei.adapters.readmodels.seal_key import load_or_create

    return load_or_create(settings.home)


def seal_key_or_none(settings: config.Settings) -> bytes | None:
    """The seal key, or None with one warning line when it cannot be read or made (a
    full disk under ``KEI_HOME``): for commands that work as well without sealing what
    they fold (replay, import), whose read models the next checked read then rebuilds."""
    from kei.errors import KeyFileError

    try:
        return seal_key(settings)
    except KeyFileError as exc:
        stderr().print(f"kei: warning: read models left unsealed: {exc}", markup=False)
        return None


def load_signing_key(settings: config.Settings, ref: str | None = None) -> SigningKey:
    from kei.adapters.files.keyfile import load_key

    return load_key(settings.key_path(ref))


@contextmanager
def open_ledger(
    settings: config.Settings,
    *,
    with_key: bool = False,
    read_only: bool = False,
    parallel_signing: bool = False,
) -> Iterator[Ledger]:
    """The ledger ``settings`` name; ``parallel_signing`` (for a long bulk write, such
    as an import) signs big batches on two cores (``Ledger.open``)."""
    # Imported here, not at the top: every command module imports this one, and
    # `kei --help` or `kei models` should not load the store's libraries.
    from kei.app.ledger.ledger import Ledger

    key = load_signing_key(settings) if with_key else None
    ledger = Ledger.open(
        settings.db_url,
        key=key,
        synchronous=settings.synchronous,
        read_only=read_only,
        retry=settings.retry,
        checkpoint_state=settings.checkpoint_state,
        parallel_signing=parallel_signing,
    )
    try:
        yield ledger
        if with_key and not read_only:
            _auto_checkpoint(ledger, settings)
    finally:
        ledger.close()


class ServiceType(Protocol[_Service_co]):
    """A read-model service's constructor, as :func:`service_scope` calls it: the
    service is its own context manager, closing its read models."""

    def __call__(
        self, ledger: Ledger, /, *, seal_key: bytes | None
    ) -> AbstractContextManager[_Service_co]: ...


@contextmanager
def service_scope(
    settings: config.Settings, service: ServiceType[_Service], *, write: bool = False
) -> Iterator[_Service]:
    """``service`` over the ledger ``settings`` name, sealing its read models with the
    seal key; ``write`` loads the signing key. Both are closed on the way out."""
    with (
        open_ledger(settings, with_key=write) as ledger,
        service(ledger, seal_key=seal_key(settings)) as opened,
    ):
        yield opened


def _auto_checkpoint(ledger: Ledger, settings: config.Settings) -> None:
    """``KEI_CHECKPOINT_EVERY``: a checkpoint after a write, when due; a failure is one
    warning line, never a failed write (the write has committed already)."""
    from kei.adapters.cli.auto_checkpoint import maybe_checkpoint

    try:
        maybe_checkpoint(ledger, settings)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        stderr().print(f"kei: warning: no automatic checkpoint written: {reason}", markup=False)


def is_tty() -> bool:
    return sys.stdout.isatty()
