"""Plans: the versioned, immutable output of a merge (PRODUCT §3.3, §4).

* :mod:`~gridplan.plans.model` — :class:`Plan` and :class:`PlanMeta` (ids, parent, params, inputs);
* :mod:`~gridplan.plans.io` — :func:`write_plan` / :func:`read_plan`: one GeoPackage per version,
  written atomically, never overwriting another plan;
* :mod:`~gridplan.plans.diff` — :func:`diff_plans`: grids added/removed/reshaped/recoded and the
  households/addresses that changed grid.

Making plans (merge, re-import of QGIS edits, the crosswalk) is :mod:`gridplan.merge`'s job.
"""

from gridplan.plans.diff import PlanDiff, diff_plans
from gridplan.plans.io import read_plan, read_plan_meta, write_plan
from gridplan.plans.model import (
    PLAN_LAYERS,
    UNIT_STATS,
    Plan,
    PlanMeta,
    new_plan_id,
    numeric_column,
    text_column,
)

__all__ = [
    "PLAN_LAYERS",
    "UNIT_STATS",
    "Plan",
    "PlanDiff",
    "PlanMeta",
    "diff_plans",
    "new_plan_id",
    "numeric_column",
    "read_plan",
    "read_plan_meta",
    "text_column",
    "write_plan",
]
