"""Command-line face of gridplan (PRODUCT §5): ``gridplan <command> --help`` for each command.

Importing this package registers every command module on :data:`app`.
"""

from __future__ import annotations

# Importing a command module registers its commands on ``app``.
from gridplan.cli import balance, demo, geocode, hotspots, layers, maps, merge, plans, sample, serve  # noqa: F401
from gridplan.cli._app import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
