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
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

try:  # Typer >= 0.20 carries its own copy of Click; its parser raises that copy's exceptions
    from typer._click import exceptions as _cx
except ImportError:  # pragma: no cover - older Typer on the real Click
    from click import exceptions as _cx  # type: ignore[no-redef]

from gridplan._atomic import write_text
from gridplan._clock import compact_stamp
from gridplan.errors import GridplanError, exit_code_for


class _OneLineErrors(typer.core.TyperGroup):
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
)

console = Console(stderr=False)
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def _one_line(message: str) -> None:
    """Print ``error: message`` as exactly one line on stderr (user text is never markup)."""
    text = " ".join(str(message).split())
    err_console.print("[bold red]error:[/] ", end="", markup=True, highlight=False)
    err_console.print(text, markup=False, highlight=False, soft_wrap=True)


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
        except Exception as exc:  # a bug: say so in one line, keep the traceback in a log
            try:
                where = f"; the traceback is in {_crash_log(exc)}"
            except OSError:
                where = ""
            _one_line(f"internal error ({type(exc).__name__}: {exc}){where}; please report it")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def progress() -> Iterator[Progress]:
    """Show a Rich progress display for long steps (on stderr, silent when not a terminal)."""
    with Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
        disable=not err_console.is_terminal,
    ) as prog:
        yield prog


@app.callback()
def _main(
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
