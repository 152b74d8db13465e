"""The Typer application object and the helpers every command module shares.

Each ``gridplan/cli/<capability>.py`` module registers its commands on :data:`app` and stays thin:
it translates arguments, calls the library, and prints a Rich summary.  Errors raised by the
library reach the user as one line on stderr and the exit code of :data:`gridplan.errors.EXIT_CODES`;
an unexpected error (a bug) is one line too, with the path of a log holding its traceback.  Progress
and INFO logs go to stderr only when it is a terminal (or with ``-v``), so a piped or scripted run
sees only warnings and the error line.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

try:  # Typer >= 0.20 carries its own copy of Click; its parser raises that copy's exceptions
    from typer._click import exceptions as _cx
except ImportError:  # pragma: no cover - older Typer on the real Click
    from click import exceptions as _cx  # type: ignore[no-redef]

from gridplan._atomic import write_text
from gridplan._clock import compact_stamp
from gridplan.errors import GridplanError, InputError, exit_code_for


def _usage_error_classes() -> tuple[type[Exception], ...]:
    """Click's UsageError, and the one of the copy of click that recent typer ships."""
    classes: list[type[Exception]] = [click.exceptions.UsageError]
    try:
        from typer._click.exceptions import UsageError
    except ImportError:  # pragma: no cover - older typer runs on click itself
        return tuple(classes)
    return (*classes, UsageError)


_UsageError = _usage_error_classes()

#: Global options, also accepted after the subcommand (``gridplan merge … -q``): hoisted in front.
GLOBAL_FLAGS = frozenset({"-q", "--quiet", "-v", "-vv", "-vvv", "--verbose"})


def hoist_global_flags(args: list[str]) -> list[str]:
    """Move global flags given after the subcommand to the front (up to a ``--``).

    >>> hoist_global_flags(["merge", "a.gpkg", "-q", "-o", "p.gpkg"])
    ['-q', 'merge', 'a.gpkg', '-o', 'p.gpkg']
    >>> hoist_global_flags(["-v", "geocode", "--", "-q"])
    ['-v', 'geocode', '--', '-q']
    """
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
    rest = [a for a in args[:end] if a not in GLOBAL_FLAGS]
    return flags + rest + args[end:]


#: ``gridplan --help`` lists the commands in the order of the work (others after, sorted).
COMMAND_ORDER = ("sample", "validate", "merge", "geocode", "reverse-geocode", "heatmap", "hotspots",
                 "balance", "coverage", "diff", "reimport", "publish", "serve", "token", "user", "demo")


def _usage_one_line(exc: Any) -> Any:
    """Make a usage error (unknown option, a value not among the choices) print as one line."""
    where = f" (see {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) is not None else ""
    message = exc.format_message().replace("Value error, ", "")
    exc.show = lambda file=None: _one_line(message + where)
    return exc


class _Group(typer.core.TyperGroup):
    """The top-level group: global flags anywhere on the line, commands in the order of the work.

    A usage error is one line on stderr (exit 2), as every other bad input.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_flags(list(args)))

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except _UsageError as exc:
            raise _usage_one_line(exc) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _UsageError as exc:
            raise _usage_one_line(exc) from None

    def list_commands(self, ctx: Any) -> list[str]:
        known = [c for c in COMMAND_ORDER if c in self.commands]
        return known + sorted(set(self.commands) - set(known))



class _OneLineErrors(_Group):
    """The command group: a usage error (unknown option, value out of range) is one line too.

    Click and Typer draw a usage box over several lines; a script reading stderr wants the one
    ``error:`` line every other failure gives.  ``gridplan`` with no arguments still shows the help.
    """

    def main(  # type: ignore[override]
        self, args: Any = None, prog_name: str | None = None, standalone_mode: bool = True, **kwargs: Any
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, standalone_mode=False, **kwargs)
        try:
            rv = super().main(args, prog_name, standalone_mode=False, **kwargs)
        except _cx.NoArgsIsHelpError as exc:
            typer.echo(exc.format_message(), err=True)
            sys.exit(exc.exit_code)
        except _cx.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "gridplan"
            _one_line(f"{exc.format_message()} (see '{where} --help')")
            sys.exit(exc.exit_code)
        except _cx.ClickException as exc:
            _one_line(exc.format_message())
            sys.exit(exc.exit_code)
        except (typer.Abort, getattr(_cx, "Abort", typer.Abort)):
            _one_line("aborted")
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    name="gridplan",
    cls=_OneLineErrors,
    help="City grid governance: merge departmental grids, geocode, hotspots, staffing, maps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: no Rich markup read into user text ("gridplan[dask]" stays), no box drawn
    # to the terminal width, no <bool> metavar on flags; choices show as <a|b>.
    rich_markup_mode=None,
)


def example(*commands: str) -> str:
    """Return the epilog of a command's ``--help``: example command lines, printed as written.

    >>> example("gridplan merge layers.gpkg -o plan.gpkg").splitlines()[1:]
    ['Example:', '  gridplan merge layers.gpkg -o plan.gpkg']
    """
    label = "Example:" if len(commands) == 1 else "Examples:"
    return "\b\n" + label + "\n" + "\n".join(f"  {c}" for c in commands)  # \b: click keeps the lines


def _console(*, stderr: bool) -> Console:
    """Make a console that never reads markup in what it prints, and does not wrap when piped.

    On a terminal Rich fits tables to its width; piped (a file, ``$(…)``, CI) every line is
    printed whole, whatever the width of the terminal the pipeline was started from.
    """
    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    return Console(stderr=stderr, markup=False, width=None if tty else 1000, soft_wrap=not tty)


console = _console(stderr=False)
err_console = _console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def _one_line(message: str) -> None:
    """Print ``error: message`` as exactly one line on stderr (user text is never markup)."""
    text = " ".join(str(message).split())
    err_console.print(Text("error: ", style="bold red"), Text(text), sep="", highlight=False, soft_wrap=True)


def _crash_log(exc: BaseException) -> Path:
    """Write the traceback of an unexpected error to a log file and return its path."""
    path = Path(tempfile.gettempdir()) / f"gridplan-crash-{compact_stamp()}-{os.getpid()}.log"
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    write_text(f"gridplan {' '.join(sys.argv[1:])}\n\n{text}", path)
    return path


#: Errors about files a user named (missing, a folder, not writable, already there): bad input.
_FILE_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, FileExistsError)


def user_errors(func: F) -> F:
    """Turn every error into one line on stderr and an exit code; never a traceback.

    Bad input (:class:`GridplanError`, a missing or unreadable file) exits with the code of
    :data:`gridplan.errors.EXIT_CODES` (2 for input).  Anything else is a bug of ours: one line
    naming the exception and the path of a log holding its traceback, exit 1.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except GridplanError as exc:
            _one_line(str(exc))
            raise typer.Exit(exit_code_for(exc)) from None
        except _FILE_ERRORS as exc:
            _one_line(str(exc))
            raise typer.Exit(2) from None
        except ImportError as exc:
            hint = missing_extra_hint(exc)
            if hint is None:
                raise
            _one_line(hint)
            raise typer.Exit(2) from None
        except Exception as exc:  # a bug: say so in one line, keep the traceback in a log
            try:
                where = f"; the traceback is in {_crash_log(exc)}"
            except OSError:
                where = ""
            _one_line(f"internal error ({type(exc).__name__}: {exc}){where}; please report it")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


#: Top-level module of an optional dependency → the extra that installs it.
EXTRAS: dict[str, str] = {
    "fastapi": "service",
    "fastapi_offline": "service",
    "uvicorn": "service",
    "multipart": "service",
    "python_multipart": "service",
    "psycopg": "postgis",
    "dask": "dask",
    "distributed": "dask",
    "bokeh": "dask",
}


def missing_extra_hint(exc: ImportError) -> str | None:
    """One line naming the extra that installs a missing optional module (``None``: not one).

    >>> missing_extra_hint(ModuleNotFoundError("No module named 'uvicorn'", name="uvicorn"))
    "this needs uvicorn, which is optional: pip install 'gridplan[service]'"
    """
    top = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    return f"this needs {top}, which is optional: pip install 'gridplan[{extra}]'"


def refuse_existing(path: Path | None, *, overwrite: bool, flag: str = "--out") -> None:
    """Refuse an existing plan file before any work is done (``--overwrite`` replaces it)."""
    if path is not None and path.exists() and not overwrite:
        raise InputError(
            "exists and plans are immutable: write to a new file, or pass --overwrite to replace it",
            file=path,
            field=flag,
        )


class RateColumn(ProgressColumn):
    """Items per second of a task (blank until there is a rate)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("")
        return Text(f"{speed:,.0f}/s", style="progress.data.speed")


@contextmanager
def progress() -> Iterator[Progress]:
    """Show a Rich progress display for long steps (on stderr, silent when not a terminal).

    Each bar shows done/total, rate, elapsed time and the time remaining; a task added with
    ``total=None`` (a step whose size is unknown, such as building an index) pulses instead.
    """
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False, style="progress.description"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
        disable=not err_console.is_terminal,
    ) as prog:
        yield prog


#: The ``--scheduler`` help of every command that can run its long steps on Dask.
SCHEDULER_HELP = (
    "Run the long steps on Dask: a scheduler address (tcp://host:8786; workers need gridplan and "
    "the same file paths), or 'local' for a 2-process local cluster."
)


@contextmanager
def dask_session(scheduler: str) -> Iterator[Any]:
    """Open a ``distributed.Client`` for ``--scheduler`` (see :func:`gridplan._dask.dask_client`).

    Prints the dashboard's address on stderr when the scheduler serves one (bokeh installed).
    """
    from gridplan._dask import dask_client

    with dask_client(scheduler) as client:
        link = getattr(client, "dashboard_link", None)
        if link:
            err_console.print(f"Dask dashboard: {link}", highlight=False)
        yield client


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:  # what gridplan.__version__ says (importing gridplan itself here would point up)
            text = version("gridplan")
        except PackageNotFoundError:
            text = "0+unknown"
        typer.echo(f"gridplan {text}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-vv: debug)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors."),
) -> None:
    """City grid governance: merge departmental grids, geocode, hotspots, staffing, maps."""
    # Progress lines are for a person at a terminal: piped, stderr holds warnings and the error line.
    chatty = err_console.is_terminal or verbose >= 1
    level = logging.WARNING if quiet or not chatty else (logging.DEBUG if verbose >= 2 else logging.INFO)
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=False)],
        force=True,
    )
    # GDAL/pyogrio report every layer write at INFO ("Created N records"): not news for our users.
    for noisy in ("pyogrio", "fiona", "rasterio", "distributed", "numba", "matplotlib"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
