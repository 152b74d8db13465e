"""Workload, staffing and coverage-balancing proposals (PRODUCT §3.6).

* :mod:`~gridplan.balance.workload` — workload per atomic unit and base grid from weights;
* :mod:`~gridplan.balance.staffing` — integer workers per grid under a budget (apportionment);
* :mod:`~gridplan.balance.rebalance` — :func:`rebalance`: moves that even out workload per worker;
* :mod:`~gridplan.balance.graph`, :mod:`~gridplan.balance.search` — the unit graph and the search;
* :mod:`~gridplan.balance.proposal` — the proposal written as a new plan version.
"""

from gridplan.balance.rebalance import (
    Proposal,
    RebalanceOptions,
    apportion_by_community,
    rebalance,
)
from gridplan.balance.report import metrics_table
from gridplan.balance.staffing import Method, apportion, staffing_table
from gridplan.balance.workload import (
    COMPONENTS,
    WEIGHT_KEYS,
    default_weights_path,
    grid_workload,
    load_weights,
    unit_workload,
)

__all__ = [
    "COMPONENTS",
    "WEIGHT_KEYS",
    "Method",
    "Proposal",
    "RebalanceOptions",
    "apportion",
    "apportion_by_community",
    "default_weights_path",
    "grid_workload",
    "load_weights",
    "metrics_table",
    "rebalance",
    "staffing_table",
    "unit_workload",
]
