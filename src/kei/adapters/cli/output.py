"""Output conventions every command shares, and the ``kei`` entry point.

- stdout carries data only: rich, coloured lines on a terminal, plain text when piped,
  NDJSON (one object per line, flushed per line) with ``--json``, every time and amount
  in the one form of ``json_form.py``.
- stderr carries progress bars (on a terminal only), warnings (``kei: WARNING: ...``) and errors (``kei: error: ...``, an
  optional ``kei: hint: ...``), one line each, never a traceback.
- ``run`` is the console-script entry point: it turns click's usage errors (a bad flag,
  a missing argument) into the same one-line form and exit code 2.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer._click.core import Command
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from kei.adapters.cli.exits import Exit, exit_code_for
from kei.adapters.cli.limits import check_text, too_long
from kei.adapters.cli.lines import Lines
from kei.app.json_form import json_form
from kei.errors import KeiError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from kei.app.ledger.tail import ChainBreak
    from kei.domain.log.recorded import RecordedEvent

TYPE_WIDTH = 20
STREAM_WIDTH = 16


def json_line(obj: Any) -> None:
    """One JSON object on one line of stdout, flushed so followers see it at once, its
    times and money in the one form of ``json_form.py``."""
    sys.stdout.write(json.dumps(json_form(obj), ensure_ascii=False) + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def stdout_closed_ok() -> Iterator[None]:
    """A reader that stops reading (``kei events tail | head``) ends the command with exit 0."""
    try:
        yield
    except BrokenPipeError:
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None


# A progress report: ``tick(phase, done, total)`` says ``done`` more items of ``total``
# went through ``phase`` (reading, verifying, writing, exporting...).
ProgressTick = Callable[[str, int, int], None]


@contextlib.contextmanager
def progress_bars() -> Iterator[ProgressTick | None]:
    """Progress bars on stderr, one per phase, only when stderr is a terminal (None
    otherwise: a pipe or a log file gets no bars)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def tick(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=max(total, 1))
        bar.advance(tasks[phase], done)

    with bar:
        yield tick


def warn(message: str) -> None:
    """A loud one-line warning on stderr (bold red on a terminal)."""
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True, highlight=False, soft_wrap=True).print(
        Text(f"kei: WARNING: {message}", style="bold red"), markup=False
    )


class _WarningLines(logging.Handler):
    """Warnings the library logs for the user (a read model that skipped events) as
    ``kei: WARNING:`` lines, each at most once per command."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message not in self.seen:
            self.seen.add(message)
            warn(message)


USER_WARNINGS = ("kei.projections.faults", "kei.app.budgets.check")


def route_warnings() -> None:
    """Send the loggers of ``USER_WARNINGS`` to stderr as warning lines (once a command)."""
    for name in USER_WARNINGS:
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if isinstance(h, _WarningLines)]:
            logger.removeHandler(handler)
        logger.addHandler(_WarningLines())
        logger.propagate = False


def warn_break(brk: ChainBreak) -> None:
    warn(f"chain broken at position {brk.position}: {brk.detail} ({brk.kind})")


class EventPrinter:
    """Prints events as readable lines, or as NDJSON with ``as_json``."""

    def __init__(self, *, as_json: bool = False, color: bool | None = None) -> None:
        self.as_json = as_json
        self.color = sys.stdout.isatty() if color is None else color
        self._console = _stdout_console() if self.color else None

    def show(self, item: RecordedEvent | ChainBreak) -> None:
        # The log's readers, loaded by the commands that print events, not by every one.
        from kei.app.ledger.tail import ChainBreak, event_dict

        if isinstance(item, ChainBreak):
            warn_break(item)
        elif self.as_json:
            json_line(event_dict(item))
        elif self._console is not None:
            self._console.print(self.styled(item))
        else:
            sys.stdout.write(self.plain(item) + "\n")
            sys.stdout.flush()

    @staticmethod
    def plain(event: RecordedEvent) -> str:
        from kei.app.ledger.tail import printable, summary, time_text

        return (
            f"{event.position:>6}  {time_text(event)}  {printable(event.type):<{TYPE_WIDTH}} "
            f"{printable(event.stream):<{STREAM_WIDTH}} {summary(event)}"
        ).rstrip()

    @staticmethod
    def styled(event: RecordedEvent) -> Text:
        from rich.text import Text

        from kei.app.ledger.tail import printable, summary, time_text

        return Text.assemble(
            (f"{event.position:>6}", "bold"),
            "  ",
            (time_text(event), "dim"),
            "  ",
            (f"{printable(event.type):<{TYPE_WIDTH}}", "cyan"),
            " ",
            (f"{printable(event.stream):<{STREAM_WIDTH}}", "magenta"),
            " ",
            summary(event),
        )


def _stdout_console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _usage_error(exc: ClickException) -> None:
    console = Lines()
    console.print(f"kei: error: {exc.format_message()}", markup=False)
    ctx = exc.ctx if isinstance(exc, UsageError) else None
    path = ctx.command_path if ctx is not None else "kei"
    console.print(f"kei: hint: see `{path} --help`", markup=False)


def run(
    app: typer.Typer, args: Sequence[str] | None = None, command: Command | None = None
) -> NoReturn:
    """Run the CLI and exit; click's usage errors become one ``kei: error:`` line and
    exit 2 (never click's own codes, since 1 means "findings" in kei's table).

    Arguments and ``KEI_*`` variables that are not UTF-8 are refused first. Anything a
    command lets escape is a bug: it ends as one ``kei: internal error:`` line and exit
    70 (the traceback with ``--verbose``), never as a traceback on a user's terminal.
    ``command`` is ``app`` already built (the daemon builds it once)."""
    argv = list(sys.argv[1:] if args is None else args)
    verbose = "--verbose" in argv
    try:
        code = _dispatch(command if command is not None else typer.main.get_command(app), argv)
    except KeiError as exc:  # raised outside a command's own handler (e.g. bad argv)
        code = _fail(exc)
    except OSError as exc:
        error = too_long(exc)
        code = _internal(exc, verbose) if error is None or verbose else _fail(error)
    except Exception as exc:
        code = _internal(exc, verbose)
    sys.exit(code)


def _dispatch(command: Command, argv: list[str]) -> int:
    check_text(argv, os.environ)
    try:
        code = command.main(args=argv, prog_name="kei", standalone_mode=False)
    except NoArgsIsHelpError:
        return Exit.USAGE  # the help text has been printed already
    except ClickException as exc:
        _usage_error(exc)
        return Exit.USAGE
    except typer.Abort:
        return 130
    return code if isinstance(code, int) else Exit.OK


def print_error(error: KeiError) -> None:
    """An error as users see it: ``kei: error: ...`` and, when it has one, ``kei: hint:
    ...``, one line each on stderr."""
    console = Lines()
    console.print(f"kei: error: {error}", markup=False)
    if error.hint:
        console.print(f"kei: hint: {error.hint}", markup=False)


def _fail(error: KeiError) -> int:
    print_error(error)
    return exit_code_for(error)


def _internal(exc: Exception, verbose: bool) -> int:
    if verbose:
        raise exc
    detail = ascii(f"{type(exc).__name__}: {exc}")[1:-1]
    if len(detail) > 200:
        detail = f"{detail[:200]}..."
    Lines().print(
        f"kei: internal error: {detail} (run with --verbose for the traceback)", markup=False
    )
    return Exit.INTERNAL
