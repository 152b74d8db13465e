"""Tests of the private n-way overlay, sliver and districting helpers behind gridplan.merge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import box

from gridplan.merge.basegrids import _choose_k, grid_sequence, partition_units
from gridplan.merge.overlay import face_adjacency, overlay_faces
from gridplan.merge.slivers import eliminate_slivers, lineage_components, sliver_mask


def _voronoi(seed: int, n: int, frame: shapely.Geometry) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = frame.bounds
    pts = shapely.multipoints(np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)]))
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=frame)), frame)
    # hand-digitised: every vertex moved by up to 3 mm (same vertex, same move), so layers disagree
    return shapely.transform(cells, lambda c: c + 0.003 * np.sin(c[:, ::-1] * 7.3 + seed))


def test_near_coincident_outlines_node_robustly() -> None:
    # two layers whose shared lines differ by millimetres: snap rounding must not throw
    city = box(0, 0, 1000, 1000)
    layers = {f"l{k}": _voronoi(k % 2, 40, city) for k in range(4)}
    faces = overlay_faces(city, layers)
    assert abs(shapely.area(faces.geoms).sum() - 1e6) < 1e-6
    for name, arr in layers.items():
        assert faces.members[name].shape[0] == 2
        assert set(faces.members[name][1]) <= set(range(len(arr)))


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_tiled_noding_equals_single_pass(seed: int) -> None:
    city = box(0, 0, 2000, 1500)
    layers = {f"l{k}": _voronoi(seed + k, 30, city) for k in range(3)}
    one = overlay_faces(city, layers, tile_coords=10**9)
    tiled = overlay_faces(city, layers, tile_coords=300, workers=2)
    a1, a2 = shapely.area(one.geoms).sum(), shapely.area(tiled.geoms).sum()
    assert abs(a1 - 3e6) / 3e6 < 1e-9
    assert abs(a2 - 3e6) / 3e6 < 1e-9
    # same lineage at random points
    rng = np.random.default_rng(seed)
    pts = shapely.points(rng.uniform(1, 1999, 300), rng.uniform(1, 1499, 300))

    def lineage(f: object) -> list[tuple[int, ...]]:
        face_of = shapely.STRtree(f.geoms).query(pts, predicate="within")  # type: ignore[attr-defined]
        fmap = dict(zip(face_of[0].tolist(), face_of[1].tolist(), strict=True))
        out = []
        for i in range(len(pts)):
            fi = fmap.get(i, -1)
            out.append(tuple(int(np.max(m[1][m[0] == fi], initial=-1))
                             for m in f.members.values()))  # type: ignore[attr-defined]
        return out

    l1, l2 = lineage(one), lineage(tiled)
    same = np.mean([x == y for x, y in zip(l1, l2, strict=True)])
    assert same >= 0.99


def test_face_adjacency_needs_shared_vertices() -> None:
    faces = np.array([box(0, 0, 1, 1), box(1, 0, 2, 1), box(0, 1, 2, 2)])
    adj = face_adjacency(faces)
    # the top box was not noded with the bottom ones: only the bottom pair is found
    assert adj[["a", "b"]].values.tolist() == [[0, 1]]
    noded = shapely.get_parts(shapely.polygonize(shapely.get_parts(
        shapely.union_all(shapely.get_exterior_ring(faces)))))
    assert len(face_adjacency(noded)) == 3


def test_sliver_mask_thresholds() -> None:
    area = np.array([49.0, 51.0, 400.0, 2000.0])
    per = np.array([28.0, 30.0, 202.0, 2010.0])  # 49 m² square-ish, 51 m² compact, 2 x 200 strip, 2 x 1000
    got = sliver_mask(area, per, min_area_m2=50, max_thinness=0.3, max_width_m=5)
    assert got.tolist() == [True, False, True, True]


def test_sliver_cluster_without_any_big_neighbour_is_kept_as_one() -> None:
    adj = pd.DataFrame({"a": [0, 1], "b": [1, 2], "length": [5.0, 5.0]})
    owner, kept = eliminate_slivers(np.array([True, True, True]), np.zeros(3, int), np.array([3.0, 9.0, 1.0]),
                                    adj)
    assert owner.tolist() == [1, 1, 1]
    assert kept.tolist() == [False, True, False]


def test_sliver_prefers_the_longest_edge() -> None:
    adj = pd.DataFrame({"a": [0, 0], "b": [1, 2], "length": [3.0, 7.0]})
    owner, _ = eliminate_slivers(np.array([True, False, False]), np.zeros(3, int), np.ones(3), adj)
    assert owner[0] == 2


def test_lineage_components_split_disconnected_equal_keys() -> None:
    adj = pd.DataFrame({"a": [0, 2], "b": [1, 3]})
    assert lineage_components(np.array([1, 1, 1, 1]), adj).tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize(("h", "k"), [(0, 1), (250, 1), (400, 1), (800, 2), (550, 1), (1200, 3), (4000, 10)])
def test_choose_k(h: float, k: int) -> None:
    assert _choose_k(h, 300, 500) == k


def test_partition_keeps_grids_contiguous_and_in_band() -> None:
    # a 6 x 6 lattice of 40-household units: 1,440 households → 4 grids of ~360
    n = 6
    idx = np.arange(n * n).reshape(n, n)
    a = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    b = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    adj = pd.DataFrame({"a": a, "b": b, "length": 1.0, "cost": 1.0})
    xs, ys = np.meshgrid(np.arange(n, dtype=float), np.arange(n, dtype=float))
    lab, notes = partition_units(np.zeros(n * n, int), np.full(n * n, 40), np.full(n * n, 100), xs.ravel(),
                                 ys.ravel(), adj, np.ones(n * n), households_min=300, households_max=500)
    assert len(notes) == 4
    assert all(v.status == "ok" for v in notes.values())
    for g in range(4):
        members = set(np.flatnonzero(lab == g).tolist())
        # connected
        seen, stack = {min(members)}, [min(members)]
        while stack:
            u = stack.pop()
            for x, y in zip(a, b, strict=True):
                for p, q in ((x, y), (y, x)):
                    if p == u and q in members and q not in seen:
                        seen.add(q)
                        stack.append(q)
        assert seen == members


def test_grid_sequence_rows() -> None:
    # three grids in one row and one below: reading order
    seq = grid_sequence(np.zeros(4, int), np.array([5.0, 1.0, 3.0, 1.0]), np.array([9.5, 9.4, 9.6, 5.0]),
                        np.full(4, 10.0), np.full(4, 4.0))
    assert seq.tolist() == [3, 1, 2, 4]


def test_tiled_noding_in_worker_processes_matches_one_pass() -> None:
    """Many tiles noded in spawned processes give the same area per lineage as one pass."""
    import numpy as np
    import shapely

    from gridplan.merge.overlay import overlay_faces

    rng = np.random.default_rng(7)
    city = shapely.box(0, 0, 2000, 1000)
    layers = {}
    for name, n in (("a", 12), ("b", 9)):
        pts = shapely.multipoints(rng.uniform([0, 0], [2000, 1000], size=(n, 2)))
        cells = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=city))
        layers[name] = shapely.intersection(cells, city)

    def area_by_lineage(tile_coords: int, workers: int) -> dict[tuple[int, int], float]:
        f = overlay_faces(city, layers, tile_coords=tile_coords, workers=workers)
        a = dict(zip(f.members["a"][0], f.members["a"][1], strict=True))
        b = dict(zip(f.members["b"][0], f.members["b"][1], strict=True))
        out: dict[tuple[int, int], float] = {}
        for i, area in enumerate(f.area):
            key = (a[i], b[i])
            out[key] = out.get(key, 0.0) + area
        return out

    one = area_by_lineage(10**9, 1)
    tiled = area_by_lineage(20, 2)  # ~dozens of tiles, process pool
    assert one.keys() == tiled.keys()
    # a line crossing a tile edge is cut at a point snapped to the 1 cm grid: millimetre shifts
    assert sum(tiled.values()) == pytest.approx(sum(one.values()), rel=1e-9)
    for key, area in one.items():
        assert tiled[key] == pytest.approx(area, rel=1e-4)


def _adjacency_by_brute_force(faces: np.ndarray) -> dict[tuple[int, int], float]:
    out = {}
    for i in range(len(faces)):
        for j in range(i + 1, len(faces)):
            shared = shapely.length(shapely.intersection(faces[i].boundary, faces[j].boundary))
            if shared > 1e-9:
                out[(i, j)] = float(shared)
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(3, 40), st.booleans())
def test_face_adjacency_is_the_shared_edge_length_even_when_keys_collide(seed, n, collide):
    """Voronoi cells (a noded coverage) against pairwise boundary intersections; with *collide*
    the segment keys are made to collide (one key per integer x), which takes the exact path."""
    import gridplan.merge.overlay as ov

    rng = np.random.default_rng(seed)
    pts = shapely.multipoints(np.round(rng.uniform(0, 100, (n, 2)), 2))
    frame = box(0, 0, 100, 100)
    cells = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=frame))
    faces = shapely.set_precision(shapely.intersection(cells, frame), 0.01)
    faces = faces[shapely.area(faces) > 0]
    real = ov._segment_keys
    if collide:
        ov._segment_keys = lambda seg: np.floor(seg[:, 0]).astype(np.uint64)  # type: ignore[assignment]
    try:
        adj = face_adjacency(faces)
    finally:
        ov._segment_keys = real
    want = _adjacency_by_brute_force(faces)
    got = {(int(a), int(b)): float(x) for a, b, x in adj[["a", "b", "length"]].itertuples(index=False)}
    assert got.keys() == want.keys()
    for k, length in want.items():
        assert abs(got[k] - length) < 1e-6
