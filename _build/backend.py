"""setuptools' PEP 517 backend, tidied: ``pip wheel .`` leaves no ``build/`` or egg-info in the tree.

Everything is :mod:`setuptools.build_meta`; only :func:`build_wheel` removes the scratch folders
setuptools creates in the source tree, and only those that were not there before the build.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from setuptools import build_meta as _orig
from setuptools.build_meta import *  # noqa: F403 - the whole backend interface, unchanged

_SCRATCH = ("build", "gridplan.egg-info")


def build_wheel(
    wheel_directory: str, config_settings: dict[str, Any] | None = None, metadata_directory: str | None = None
) -> str:
    """Build the wheel as setuptools does, then remove the scratch folders this build created."""
    new = [Path(p) for p in _SCRATCH if not Path(p).exists()]
    try:
        return _orig.build_wheel(wheel_directory, config_settings, metadata_directory)
    finally:
        for path in new:
            shutil.rmtree(path, ignore_errors=True)
