"""Command-line face of gridplan (PRODUCT §5): ``gridplan <command> --help`` for each command.

Importing this package registers every command module on :data:`app`.  A command module that
is not written yet is simply absent from the list below.
"""

from __future__ import annotations

import importlib

from gridplan.cli._app import app

_COMMAND_MODULES = (
    "sample", "layers", "merge", "plans", "geocode", "hotspots", "balance", "maps", "demo", "serve",
)

for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(f"gridplan.cli.{_name}")
    except ModuleNotFoundError as _exc:  # pragma: no cover - only while a room is being built
        if _exc.name != f"gridplan.cli.{_name}":
            raise


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
