"""CLI conventions every command keeps (issue 20), checked by walking the whole command tree.

Examples in every ``--help``, choices as click choices (shown in help, refused by the parser),
``-o`` beside every ``--out``, global ``-q/-v`` after the subcommand, data on stdout and messages on
stderr (``TOK=$(gridplan token create …)`` captures the token alone), an existing ``--out``
refused before any work, a one-line hint for a missing extra, and piped output that does not
depend on the terminal's width.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from gridplan.cli import app

ROOT = Path(__file__).resolve().parents[1]

#: Options whose values are a fixed set: each must be a click choice (``<a|b>`` in help).
CHOICES = {
    ("sample", "--scale"),
    ("demo", "--scale"),
    ("hotspots", "--by"),
    ("hotspots", "--time-step"),
    ("hotspots", "--value"),
    ("hotspots", "--inference"),
    ("balance", "--method"),
    ("publish", "--tile-crs"),
    ("serve", "--log-level"),
    ("token create", "--role"),
    ("user create", "--role"),
}
#: Commands that write an output file or folder named by ``--out``.
WRITERS = {
    "sample", "validate", "merge", "geocode", "reverse-geocode", "heatmap", "hotspots", "balance",
    "coverage", "diff", "reimport", "publish",
}


def _walk(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _walk(sub, (*path, name))


COMMANDS = {" ".join(p): c for p, c in _walk(get_command(app)) if p}


def _is_choice(param: Any) -> bool:
    desc = getattr(param, "type_descriptor", None)
    if desc is not None:  # typer >= 0.2x builds its own parameter types
        return bool(desc.is_choice)
    import click

    return isinstance(getattr(param, "type", None), click.Choice)


def _options(cmd: Any) -> dict[str, Any]:
    return {o: p for p in cmd.params for o in getattr(p, "opts", []) if o.startswith("-")}


def _help(path: str) -> str:
    res = CliRunner().invoke(app, [*path.split(), "--help"])
    assert res.exit_code == 0, res.output
    return res.output


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI as a script runs it: a real process, both streams piped."""
    code = "import sys; sys.argv[0] = 'gridplan'; from gridplan.cli import main; main()"
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=full_env, timeout=120
    )


def test_the_walk_sees_every_command() -> None:
    assert {"sample", "merge", "geocode", "token create", "token list", "user create"} <= set(COMMANDS)
    assert {c for c, _ in CHOICES} <= set(COMMANDS)
    assert set(COMMANDS) >= WRITERS


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_help_has_an_example_and_no_internal_references(path: str) -> None:
    text = _help(path)
    assert "Example" in text, f"gridplan {path} --help has no example"
    example = text[text.index("Example") :]
    assert f"gridplan {path.split()[0]}" in example, example
    assert "PRODUCT" not in text, "help cites a document users do not have"
    assert "§" not in text, "help cites a section of a document users do not have"
    assert "<bool>" not in text, "a flag shows a <bool> metavar"


@pytest.mark.parametrize(("path", "option"), sorted(CHOICES))
def test_fixed_value_sets_are_click_choices(path: str, option: str) -> None:
    param = _options(COMMANDS[path])[option]
    assert _is_choice(param), f"gridplan {path} {option} is a free string"
    shown = [ln for ln in _help(path).splitlines() if re.match(rf"\s+(-\w, )?{option} <", ln)]
    assert shown, f"gridplan {path} {option}: not in help"
    assert "|" in shown[0], f"gridplan {path} {option}: choices are not shown in help"


def test_no_other_option_lists_its_choices_in_free_text() -> None:
    """A help text spelling out 'a | b | c' is a choice the parser does not enforce."""
    loose = [
        f"{path} {p.opts[0]}"
        for path, cmd in COMMANDS.items()
        for p in getattr(cmd, "params", [])
        if getattr(p, "help", None) and " | " in p.help and not _is_choice(p)
        and (path, p.opts[0]) not in {("coverage", "--candidates")}  # facilities:<kind> | generated
    ]
    assert loose == []


def test_a_choice_is_refused_by_the_parser() -> None:
    res = CliRunner().invoke(app, ["sample", "-o", "x", "--scale", "town"])
    assert res.exit_code == 2
    assert "small" in res.output
    assert "city" in res.output


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_out_has_a_short_o(path: str) -> None:
    opts = _options(COMMANDS[path])
    if path in WRITERS:
        assert "--out" in opts, f"gridplan {path} writes an output but has no --out"
    if "--out" in opts:
        assert "-o" in opts["--out"].opts, f"gridplan {path} --out has no -o"


def test_token_create_stdout_is_the_token_alone(tmp_path: Path) -> None:
    res = _run("token", "create", "--name", "admin", "--role", "admin", "-w", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("\n") == 1, res.stdout
    token = res.stdout.strip()
    assert token
    assert " " not in token
    assert "token id" in res.stderr
    assert token not in res.stderr


def test_global_flags_after_the_subcommand(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["token", "list", "-w", str(tmp_path), "-q"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["token", "list", "-w", str(tmp_path), "-vv"])
    assert res.exit_code == 0, res.output


def test_version() -> None:
    import gridplan

    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0
    assert res.output.strip() == f"gridplan {gridplan.__version__}"


def test_existing_out_is_refused_before_any_work(
    monkeypatch: pytest.MonkeyPatch, small_city: Path, tmp_path: Path
) -> None:
    def never(*_a: object, **_k: object) -> None:
        raise AssertionError("merge ran although --out exists")

    monkeypatch.setattr("gridplan.merge.merge_layers", never)
    monkeypatch.setattr("gridplan.layers.read_layers", never)
    out = tmp_path / "plan.gpkg"
    out.write_bytes(b"keep me")
    res = CliRunner().invoke(app, ["merge", str(small_city / "layers.gpkg"), "-o", str(out)])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "pass --overwrite" in lines[0]
    assert str(out) in lines[0]
    assert out.read_bytes() == b"keep me"


def test_a_missing_extra_is_a_one_line_install_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ModuleNotFoundError
    res = CliRunner().invoke(app, ["serve", "-w", str(tmp_path)])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert lines[0].endswith("pip install 'gridplan[service]'")


def test_user_text_is_never_read_as_markup(tmp_path: Path) -> None:
    """Rich markup in a file name ("[bold]", "[dask]") is printed as written."""
    missing = tmp_path / "[bold]x[/bold] gridplan[dask].gpkg"
    res = _run("merge", str(missing), "-o", str(tmp_path / "p.gpkg"))
    assert res.returncode == 2
    assert str(missing) in res.stderr, res.stderr


def test_piped_output_does_not_depend_on_the_terminal_width(tmp_path: Path) -> None:
    name = "a-rather-long-user-name-" * 2 + "x"  # 49 characters: wider than 40 columns, a valid name
    made = _run("token", "create", "--name", name, "--role", "analyst", "-w", str(tmp_path))
    assert made.returncode == 0, made.stderr
    narrow = _run("token", "list", "-w", str(tmp_path), env={"COLUMNS": "40"})
    wide = _run("token", "list", "-w", str(tmp_path), env={"COLUMNS": "300"})
    assert narrow.returncode == 0, narrow.stderr
    assert narrow.stdout == wide.stdout
    assert name in narrow.stdout  # on one line, not wrapped


def test_progress_bars_show_rate_and_eta() -> None:
    from rich.progress import TimeRemainingColumn

    from gridplan.cli._app import RateColumn, progress

    with progress() as prog:
        kinds = {type(c) for c in prog.columns}
    assert RateColumn in kinds
    assert TimeRemainingColumn in kinds


def test_no_rich_markup_in_cli_messages() -> None:
    """The consoles never read markup (user text is printed as written), so a ``[yellow]…[/]`` in
    the CLI's own messages would reach the user verbatim: styles go in ``style=``."""
    import re
    from pathlib import Path

    import gridplan.cli

    tag = re.compile(r"\[/?(?:bold|dim|italic|yellow|red|green|cyan|blue|magenta|white)\b[^\]]*\]|\[/\]")
    found = [f"{p.name}:{i}: {line.strip()}"
             for p in sorted(Path(gridplan.cli.__file__).parent.glob("*.py"))
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if tag.search(line)]
    assert found == []
