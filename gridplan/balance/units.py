"""The plan's atomic units as arrays (grid index, community, workload, counts): what balancing works on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gridplan.errors import InputError
from gridplan.plans import Plan, numeric_column

__all__ = ["Units"]


def _unit_workload(unit_ids: np.ndarray, workload_units: pd.DataFrame | pd.Series) -> np.ndarray:
    """Workload of every atomic unit, in the units' order (missing or negative refused)."""
    if isinstance(workload_units, pd.Series):
        wl_series = workload_units.copy()
    else:
        if "unit_id" not in workload_units or "workload" not in workload_units:
            raise InputError("workload table needs unit_id and workload columns", field="workload")
        wl_series = workload_units.set_index(workload_units["unit_id"].astype(str))["workload"]
    wl_series.index = wl_series.index.astype(str)
    wl = wl_series.reindex(unit_ids).to_numpy(float)
    if np.isnan(wl).any():
        missing = unit_ids[np.isnan(wl)][:3]
        raise InputError(f"no workload for atomic unit(s) {', '.join(missing)}", field="workload")
    if (wl < 0).any():
        raise InputError("workload must be >= 0", field="workload")
    return wl


@dataclass(frozen=True)
class Units:
    """The plan's atomic units as arrays, with their grid (index into ``codes``) and community."""

    ids: np.ndarray
    grid_of: np.ndarray
    codes: np.ndarray
    comm_u: np.ndarray
    comm_g: np.ndarray
    wl: np.ndarray
    hh: np.ndarray
    addr: np.ndarray
    res: np.ndarray
    geoms: np.ndarray

    @classmethod
    def of(cls, plan: Plan, wl_in: pd.DataFrame | pd.Series) -> Units:
        """Arrays of *plan*'s atomic units with the workload *wl_in* (refused if missing or negative)."""
        au, bg = plan.atomic_units, plan.base_grids
        ids = au["unit_id"].astype(str).to_numpy()
        wl = _unit_workload(ids, wl_in)
        grid_code_u = au["base_grid_code"].astype("string").fillna("").to_numpy(dtype=object)
        codes = np.array(sorted(set(bg["grid_code"].astype(str)) | (set(grid_code_u) - {""})), dtype=object)
        if len(codes) == 0:
            raise InputError("plan has no base grids", layer="base_grids")
        code_idx = {c: i for i, c in enumerate(codes)}
        grid_of = np.array([code_idx.get(c, -1) if c else -1 for c in grid_code_u], dtype=np.int64)
        comm_u = au["community_code"].astype("string").fillna("").to_numpy(dtype=object)
        comm_g = np.empty(len(codes), dtype=object)
        ok = grid_of >= 0
        comm_g[grid_of[ok]] = comm_u[ok]
        empty = np.array([c is None for c in comm_g])
        bg_comm = bg.set_index(bg["grid_code"].astype(str))["community_code"].astype(str)
        comm_g[empty] = bg_comm.reindex(codes[empty]).to_numpy()
        hh, addr, res = (numeric_column(au, c) for c in ("households", "addresses", "residents"))
        return cls(ids, grid_of, codes, comm_u, comm_g.astype(str), wl, hh, addr, res, au.geometry.to_numpy())

    def per_grid(self, values: np.ndarray, grid_of: np.ndarray | None = None) -> np.ndarray:
        """Sum *values* per grid (by the given assignment, default the plan's)."""
        g = self.grid_of if grid_of is None else grid_of
        ok = g >= 0
        return np.bincount(g[ok], weights=values[ok], minlength=len(self.codes))
