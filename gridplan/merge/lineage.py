"""Lineage of overlay faces (private helper of :mod:`gridplan.merge.build`).

Owns which community, which grid of each department and which split piece every face of the
overlay belongs to, with the overlaps and gaps met on the way (QA rows).  Rules in
:mod:`gridplan.merge.build`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely

from gridplan.merge.inputs import MergeInputs
from gridplan.merge.overlay import Faces, face_adjacency, refined_adjacency
from gridplan.merge.slivers import eliminate_slivers, lineage_components, sliver_mask

__all__ = ["FaceLineage", "face_lineage"]


@dataclass
class FaceLineage:
    """Per face: community key, department grid keys, split piece key (-1 none), and QA rows."""

    fg: np.ndarray
    farea: np.ndarray
    fperim: np.ndarray
    fadj: pd.DataFrame
    fcomm: np.ndarray
    fdept: np.ndarray
    fpiece: np.ndarray
    comm_codes_u: np.ndarray
    comm_key: np.ndarray
    dept_ids: dict[str, np.ndarray]
    qa_rows: list[dict[str, Any]]


def _resolve(pairs: np.ndarray, n_faces: int, keys: np.ndarray, face_area: np.ndarray,
             face_group: np.ndarray | None) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Pick one key per face: the candidate with the larger area (within the face's group).

    Returns the chosen key code per face (-1 = none), a table of overlapping faces (``face``,
    ``chosen``, ``region``: faces with the same candidates and choice share a region key) and the
    candidates of those faces (``face``, ``key``, sorted).
    """
    face, feat = pairs[0], pairs[1]
    key = keys[feat]
    df = pd.DataFrame({"face": face, "key": key}).drop_duplicates()
    chosen = np.full(n_faces, -1, np.int64)
    counts = df.groupby("face")["key"].transform("size").to_numpy()
    single = counts == 1
    chosen[df["face"].to_numpy()[single]] = df["key"].to_numpy()[single]
    multi = df[~single].copy()
    if multi.empty:
        empty = np.array([], np.int64)
        return (chosen, pd.DataFrame({"face": empty, "chosen": empty, "region": empty}),
                pd.DataFrame({"face": empty, "key": empty}))
    grp = np.zeros(n_faces, np.int64) if face_group is None else face_group
    share = pd.DataFrame({"key": df["key"].to_numpy(), "g": grp[df["face"].to_numpy()],
                          "area": face_area[df["face"].to_numpy()]})
    tot = share.groupby(["key", "g"])["area"].sum()
    multi["g"] = grp[multi["face"].to_numpy()]
    multi["score"] = tot.reindex(pd.MultiIndex.from_arrays([multi["key"], multi["g"]])).to_numpy()
    multi = multi.sort_values(["face", "score", "key"], ascending=[True, False, True], kind="stable")
    best = multi.drop_duplicates("face", keep="first")
    chosen[best["face"].to_numpy()] = best["key"].to_numpy()
    agg = multi.groupby("face", sort=True)["key"].agg(["min", "max", "size"])
    fidx = agg.index.to_numpy()
    region = pd.DataFrame({"a": agg["min"].to_numpy(), "b": agg["max"].to_numpy(),
                           "n": agg["size"].to_numpy(), "c": chosen[fidx]}).groupby(
        ["a", "b", "n", "c"], sort=True).ngroup().to_numpy()
    ov = pd.DataFrame({"face": fidx, "chosen": chosen[fidx], "region": region})
    cand = multi[["face", "key"]].sort_values(["face", "key"], kind="stable").reset_index(drop=True)
    return chosen, ov, cand


def _candidates(cand: pd.DataFrame, face: int) -> np.ndarray:
    f = cand["face"].to_numpy()
    lo, hi = np.searchsorted(f, face, "left"), np.searchsorted(f, face, "right")
    return cand["key"].to_numpy()[lo:hi]


def _regions(faces: np.ndarray, key: np.ndarray, fadj: pd.DataFrame, farea: np.ndarray,
             fperim: np.ndarray, noise: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> list[np.ndarray]:
    """Return the connected regions of *faces* with equal *key* that are not noise."""
    if len(faces) == 0:
        return []
    n = len(fperim)
    k = np.full(n, -1, np.int64)
    k[faces] = key
    comp = lineage_components(k, fadj)[faces]
    _, comp = np.unique(comp, return_inverse=True)
    nr = int(comp.max()) + 1
    pos = np.full(n, -1, np.int64)
    pos[faces] = np.arange(len(faces))
    a, b, ln = fadj["a"].to_numpy(), fadj["b"].to_numpy(), fadj["length"].to_numpy()
    m = (pos[a] >= 0) & (pos[b] >= 0)
    m &= k[a] == k[b]
    inner = np.bincount(comp[pos[a[m]]], ln[m], nr)
    area = np.bincount(comp, farea[faces], nr)
    perim = np.bincount(comp, fperim[faces], nr) - 2 * inner
    keep = np.flatnonzero(~noise(area, perim))
    order = np.argsort(comp, kind="stable")
    bounds = np.searchsorted(comp[order], np.arange(nr + 1))
    return [faces[order[bounds[r]:bounds[r + 1]]] for r in keep]


def _communities(faces: Faces, inp: MergeInputs, fl: FaceLineage, noise: Callable[..., np.ndarray]) -> None:
    nf, fg, farea, fadj, fperim, qa_rows = len(fl.fg), fl.fg, fl.farea, fl.fadj, fl.fperim, fl.qa_rows
    comm_codes_u, comm_key = fl.comm_codes_u, fl.comm_key
    fcomm, comm_ov, comm_cand = _resolve(faces.members["communities"], nf, comm_key, farea, None)
    fl.fcomm = fcomm
    for fi in _regions(comm_ov["face"].to_numpy(), comm_ov["region"].to_numpy(), fadj, farea, fperim, noise):
        others = [str(comm_codes_u[k]) for k in _candidates(comm_cand, int(fi[0]))]
        qa_rows.append({"layer": "communities", "feature_id": ",".join(others), "issue": "overlap",
                        "detail": f"merge: {farea[fi].sum():.1f} m² in communities {' and '.join(others)}; "
                                  f"assigned to {comm_codes_u[fcomm[fi[0]]]} (larger community)",
                        "geometry": shapely.union_all(fg[fi])})
    if (fcomm < 0).any():
        lost = fcomm < 0
        owner, _ = eliminate_slivers(lost, np.zeros(nf, np.int64), farea, fadj)
        fixed = lost & (fcomm[owner] >= 0)
        fcomm[fixed] = fcomm[owner[fixed]]
        if (fcomm < 0).any():  # isolated: nearest community
            idx = np.flatnonzero(fcomm < 0)
            near = shapely.STRtree(np.asarray(inp.comm_gdf.geometry.array)).query_nearest(
                faces.points[idx], all_matches=False)
            fcomm[idx[near[0]]] = comm_key[near[1]]
        li = np.flatnonzero(lost)
        for fi in _regions(li, fcomm[li], fadj, farea, fperim, noise):
            qa_rows.append({"layer": "communities", "feature_id": "", "issue": "gap",
                            "detail": f"merge: {farea[fi].sum():.1f} m² of the city in no community; "
                                      f"assigned to {comm_codes_u[fcomm[fi[0]]]}",
                            "geometry": shapely.union_all(fg[fi])})


def _departments(faces: Faces, inp: MergeInputs, fl: FaceLineage, noise: Callable[..., np.ndarray]) -> None:
    nf, fg, farea, fadj, fperim, qa_rows = len(fl.fg), fl.fg, fl.farea, fl.fadj, fl.fperim, fl.qa_rows
    fcomm, comm_codes_u = fl.fcomm, fl.comm_codes_u
    for j, d in enumerate(inp.depts):
        ids = inp.dept_gdfs[d]["dept_grid_id"].astype(str).str.strip().to_numpy(dtype=object)
        uids, key = np.unique(ids, return_inverse=True)
        fl.dept_ids[d] = uids
        chosen, ov, cand = _resolve(faces.members[f"dept_{d}"], nf, key, farea, fcomm)
        fl.fdept[:, j] = chosen
        for fi in _regions(ov["face"].to_numpy(), ov["region"].to_numpy(), fadj, farea, fperim, noise):
            pair = ",".join(str(uids[k]) for k in _candidates(cand, int(fi[0])))
            qa_rows.append({
                "layer": f"dept_{d}", "feature_id": pair, "issue": "overlap",
                "detail": f"merge: {farea[fi].sum():.1f} m² in grids {pair.replace(',', ' and ')}; "
                          f"assigned to {uids[chosen[fi[0]]]} (larger share of the community)",
                "geometry": shapely.union_all(fg[fi])})
        gap = np.flatnonzero(chosen < 0)
        for fi in _regions(gap, fcomm[gap], fadj, farea, fperim, noise):
            c = comm_codes_u[fcomm[fi[0]]]
            qa_rows.append({
                "layer": f"dept_{d}", "feature_id": "", "issue": "gap",
                "detail": f"merge: {farea[fi].sum():.1f} m² of community {c} in no {d} grid "
                          f"(units there have an empty {d}_grid_id)",
                "geometry": shapely.union_all(fg[fi])})


def face_lineage(faces: Faces, inp: MergeInputs, *, min_area_m2: float, max_thinness: float,
                 max_width_m: float, n_pieces: int = 0, previous: FaceLineage | None = None,
                 fadj: pd.DataFrame | None = None) -> FaceLineage:
    """Community, department grids and split piece of every face (layer ``_pieces`` if present).

    *fadj* is the faces' adjacency when the caller has it.  Else, with *previous* (the lineage of
    the overlay *faces* was refined from), the face adjacency is updated around the new faces
    instead of computed again (:func:`refined_adjacency`).  The rest is computed for every face, as
    an overlap's choice weighs areas over the whole community.
    """
    fg = faces.geoms
    nf = len(fg)
    farea = shapely.area(fg)

    def noise(area: np.ndarray, perim: np.ndarray) -> np.ndarray:
        # digitising noise (thin strips, crumbs) gets no lineage note: validation reports it
        return sliver_mask(area, perim, min_area_m2=min_area_m2, max_thinness=max_thinness,
                           max_width_m=max_width_m)

    comm_codes_u, comm_key = np.unique(inp.comm_code, return_inverse=True)
    fl = FaceLineage(fg=fg, farea=farea, fperim=shapely.length(fg),
                     fadj=fadj if fadj is not None else (
                         face_adjacency(fg) if previous is None else refined_adjacency(faces, previous.fadj)),
                     fcomm=np.full(nf, -1, np.int64), fdept=np.zeros((nf, len(inp.depts)), np.int64),
                     fpiece=np.full(nf, -1, np.int64), comm_codes_u=comm_codes_u, comm_key=comm_key,
                     dept_ids={}, qa_rows=[])
    _communities(faces, inp, fl, noise)
    _departments(faces, inp, fl, noise)
    if n_pieces and "_pieces" in faces.members:
        fl.fpiece, _, _ = _resolve(faces.members["_pieces"], nf, np.arange(n_pieces), farea, None)
    return fl
