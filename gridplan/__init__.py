"""gridplan: one base grid from many departmental grids, and what a city's grid office does with it.

Merge departmental grids (:mod:`gridplan.merge`), geocode cases (:mod:`gridplan.geocode`), find
hot spots (:mod:`gridplan.hotspots`), staff and rebalance grids (:mod:`gridplan.balance`), and
publish offline maps (:mod:`gridplan.maps`).  DESIGN.md maps the rooms; the CLI is ``gridplan``.

The names below are the front door (``import gridplan as gp; gp.read_plan(...)``).  They are
loaded on first use (PEP 562 ``__getattr__``), so ``import gridplan`` — and the CLI's start —
pulls in no geopandas until a name is used.

>>> import gridplan
>>> gridplan.__version__ != ""
True
>>> gridplan.read_plan.__module__
'gridplan.plans.io'
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("gridplan")
except PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"

#: Public name → the module that defines it.
_EXPORTS: dict[str, str] = {
    # errors
    "GridplanError": "errors",
    "InputError": "errors",
    # data
    "read_layer": "layers",
    "read_layers": "layers",
    "read_events": "layers",
    "write_layers": "layers",
    "write_table": "layers",
    "validate_layers": "validate",
    "write_sample": "sample",
    "build_sample": "sample",
    # plans
    "Plan": "plans",
    "read_plan": "plans",
    "write_plan": "plans",
    "diff_plans": "plans",
    "merge_layers": "merge",
    "reimport_base_grids": "merge",
    # analyses
    "Geocoder": "geocode",
    "reverse_geocode": "geocode",
    "hotspot_analysis": "hotspots",
    "emerging_hotspots": "hotspots",
    "kde_density": "hotspots",
    "year_on_year": "hotspots",
    "RebalanceOptions": "balance",
    "rebalance": "balance",
    "unit_workload": "balance",
    "maximal_covering": "coverage",
    "set_covering": "coverage",
    # faces
    "publish_map": "maps",
    "publish_standard_set": "maps",
    "render_html": "maps",
}
_SUBMODULES = ("balance", "coverage", "crs", "errors", "geocode", "hotspots", "layers", "maps", "merge",
               "plans", "sample", "settings", "testing", "validate")

__all__ = [
    "Geocoder",
    "GridplanError",
    "InputError",
    "Plan",
    "RebalanceOptions",
    "__version__",
    "build_sample",
    "diff_plans",
    "emerging_hotspots",
    "hotspot_analysis",
    "kde_density",
    "maximal_covering",
    "merge_layers",
    "publish_map",
    "publish_standard_set",
    "read_events",
    "read_layer",
    "read_layers",
    "read_plan",
    "rebalance",
    "reimport_base_grids",
    "render_html",
    "reverse_geocode",
    "set_covering",
    "unit_workload",
    "validate_layers",
    "write_layers",
    "write_plan",
    "write_sample",
    "write_table",
    "year_on_year",
]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads these
    from gridplan.balance import RebalanceOptions, unit_workload
    from gridplan.balance.rebalance import rebalance
    from gridplan.coverage import maximal_covering, set_covering
    from gridplan.errors import GridplanError, InputError
    from gridplan.geocode import Geocoder, reverse_geocode
    from gridplan.hotspots import emerging_hotspots, hotspot_analysis, kde_density, year_on_year
    from gridplan.layers import read_events, read_layer, read_layers, write_layers, write_table
    from gridplan.maps import publish_map, publish_standard_set, render_html
    from gridplan.merge import merge_layers, reimport_base_grids
    from gridplan.plans import Plan, diff_plans, read_plan, write_plan
    from gridplan.sample import build_sample, write_sample
    from gridplan.validate import validate_layers


def __getattr__(name: str) -> Any:
    """Load a public name (or a submodule) on first use."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *_SUBMODULES})
