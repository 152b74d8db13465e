"""The :class:`Geocoder`: a standard address library and work map, indexed once, applied in batches.

This module owns the batch path of geocoding (PRODUCT §3.4, §4): the geocoder is built once from
the layers (vocabulary, matching tables, city outline, community polygons) and a plan (its
:class:`~gridplan.hexindex.GridLookup`); :meth:`Geocoder.geocode` then runs normalise → parse →
match on the *distinct* address strings of a table (real data repeats them), maps the answers back
to the rows, checks and converts coordinates, chooses between address and coordinates, and
assigns grid, community and town codes.  Every step is column-wise; the output of a row depends
only on that row, so any partitioning of a table (see :mod:`gridplan.geocode._dask`) gives the
same answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridplan import crs
from gridplan.errors import InputError
from gridplan.geocode._frames import obj_frame
from gridplan.geocode.assign import DISAGREE_M, NO_ADDRESS, AreaCodes, check_coordinates, choose_position
from gridplan.geocode.match import AddressIndex, match_parsed
from gridplan.geocode.normalize import normalize_addresses, normalize_names
from gridplan.geocode.parse import Vocabulary, building_key, house_key, parse_addresses
from gridplan.plans import Plan

logger = logging.getLogger(__name__)

#: Columns the geocoder adds (PRODUCT §4), in output order.
OUTPUT_COLUMNS = (
    "status",
    "score",
    "match_level",
    "address_id",
    "matched_address",
    "lon",
    "lat",
    "coord_sys",
    "grid_code",
    "community_code",
    "town_code",
    "candidates",
    "reason",
    "located_by",
    "address_extra",
)
#: Input columns the output replaces; their original values are kept under an ``in_`` prefix.
REPLACED_COLUMNS = ("lon", "lat", "coord_sys")
STD_FIELDS = (
    "address_id",
    "town_name",
    "community_name",
    "road_name",
    "house_number",
    "building_no",
    "full_address",
)


def _area_codes(
    towns: gpd.GeoDataFrame | None, comms: gpd.GeoDataFrame | None, plan: Plan | None
) -> AreaCodes:
    """Town and community codes by name, community polygons, and the plan's grid lookup."""
    town_code_of: dict[str, str] = {}
    community_code_of: dict[str, str] = {}
    if towns is not None and len(towns):
        tn = normalize_names(towns["town_name"])
        town_code_of = dict(zip(tn, towns["town_code"].astype(str), strict=True))
        if comms is not None and len(comms):
            code_to_town = dict(zip(towns["town_code"].astype(str), tn, strict=True))
            cn = normalize_names(comms["community_name"])
            for tc, c, cc in zip(
                comms["town_code"].astype(str), cn, comms["community_code"].astype(str), strict=True
            ):
                community_code_of[f"{code_to_town.get(tc, '')}/{c}"] = cc
    grid_lookup = None
    grid_comm: dict[str, str] = {}
    grid_town: dict[str, str] = {}
    if plan is not None:
        from gridplan.hexindex import GridLookup

        grid_lookup = GridLookup.from_plan(plan)
        if len(plan.base_grids):  # build the lookup's lazy tables now: index cost is build cost
            c = plan.base_grids.geometry.iloc[0].representative_point()
            grid_lookup.assign_xy(np.array([c.x]), np.array([c.y]))
        bg = plan.base_grids
        grid_comm = dict(zip(bg["grid_code"].astype(str), bg["community_code"].astype(str), strict=True))
        grid_town = dict(zip(bg["grid_code"].astype(str), bg["town_code"].astype(str), strict=True))
    comm_polys = None
    if comms is not None and len(comms):
        comm_polys = gpd.GeoDataFrame(
            comms[["community_code", "town_code"]].astype(str),
            geometry=comms.geometry.to_numpy(),
            crs=comms.crs,
        )
    return AreaCodes(grid_lookup, grid_comm, grid_town, comm_polys, community_code_of, town_code_of)


def _city_extent(
    layers: dict[str, gpd.GeoDataFrame], std: gpd.GeoDataFrame, to_crs: int
) -> tuple[Any, tuple[float, float, float, float]]:
    """Return the city polygon (prepared; ``None`` without a city layer) and a lon/lat box 0.2° around it."""
    city_geom = None
    if "city" in layers and len(layers["city"]):
        city_geom = shapely.make_valid(layers["city"].geometry.union_all())
        shapely.prepare(city_geom)
    x0, y0, x1, y1 = city_geom.bounds if city_geom is not None else tuple(std.total_bounds)
    lon, lat = crs.xy_to_lonlat(np.array([x0, x1, x0, x1]), np.array([y0, y0, y1, y1]), from_crs=to_crs)
    bbox = (float(lon.min()) - 0.2, float(lat.min()) - 0.2, float(lon.max()) + 0.2, float(lat.max()) + 0.2)
    return city_geom, bbox


def _flag_unreadable(res: pd.DataFrame, unreadable: np.ndarray) -> None:
    """Say in ``reason`` that the row's lon/lat are not numbers (the row is not placed by them)."""
    if not unreadable.any():
        return
    reason = res["reason"].to_numpy(dtype=object).copy()
    reason[unreadable] = [
        f"{r}; lon/lat are not numbers; not placed" if r else "lon/lat are not numbers; not placed"
        for r in reason[unreadable]
    ]
    res["reason"] = pd.Series(reason, index=res.index, dtype=object)


@dataclass
class Geocoder:
    """Standard address library + work map, ready to geocode tables.

    Build with :meth:`from_layers` (or :meth:`from_files`); pickles cheaply enough to broadcast to
    Dask workers once.

    Attributes
    ----------
    vocab
        Names and alias forms of the library (:class:`~gridplan.geocode.parse.Vocabulary`).
    index
        Matching tables (:class:`~gridplan.geocode.match.AddressIndex`).
    areas
        Grid/community/town code lookups (:class:`~gridplan.geocode.assign.AreaCodes`).
    city
        City polygon in the compute CRS (``None``: no outside check).
    bbox_lonlat
        City extent in CGCS2000 degrees, buffered, for the swapped lon/lat check.
    to_crs
        The compute CRS (EPSG code) of the library, grids and returned x/y.
    build_s
        Seconds spent building (reported apart from geocoding time).

    """

    vocab: Vocabulary
    index: AddressIndex
    areas: AreaCodes
    city: shapely.Geometry | None = None
    bbox_lonlat: tuple[float, float, float, float] | None = None
    to_crs: int = crs.COMPUTE_EPSG
    build_s: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_layers(
        cls, layers: dict[str, gpd.GeoDataFrame], *, plan: Plan | None = None, to_crs: int = crs.COMPUTE_EPSG
    ) -> Geocoder:
        """Build from canonical layers and an optional plan.

        ``std_addresses`` is required; ``towns``, ``communities`` and ``city`` are used when present;
        the plan's base grids give grid codes.

        Raises
        ------
        InputError
            ``std_addresses`` missing or lacking a required field.

        """
        t0 = time.perf_counter()
        if "std_addresses" not in layers:
            raise InputError(
                "no std_addresses layer; the geocoder needs the standard address library",
                layer="std_addresses",
            )
        std = layers["std_addresses"]
        missing = [f for f in STD_FIELDS if f not in std.columns]
        if missing:
            raise InputError(
                f"missing field(s) {', '.join(missing)}", layer="std_addresses", field=missing[0]
            )
        crs.require_projected(std, what="layer std_addresses")
        towns = layers.get("towns")
        comms = layers.get("communities")
        vocab = Vocabulary.from_library(std, towns=towns, communities=comms)
        lib = _library_table(std)
        index = AddressIndex.from_table(lib)
        index.road_names("community_key", "")  # build the lookup tables now: index cost is build cost
        index.road_names("town", "")
        index.house_hits(
            np.array([""], dtype=object), np.array([""], dtype=object), np.array([""], dtype=object)
        )
        areas = _area_codes(towns, comms, plan)
        city_geom, bbox = _city_extent(layers, std, to_crs)
        build_s = time.perf_counter() - t0
        logger.info(
            "geocoder built from %d std addresses, %d roads, %d community forms in %.2f s",
            len(lib),
            len(vocab.roads),
            len(vocab.communities),
            build_s,
        )
        return cls(vocab, index, areas, city_geom, bbox, to_crs, build_s)

    @classmethod
    def from_files(cls, layers_path: Any, plan_path: Any = None) -> Geocoder:
        """Build from a layers GeoPackage and an optional plan GeoPackage."""
        from gridplan.layers import list_layers, read_layer

        present = set(list_layers(layers_path))
        if "std_addresses" not in present:
            raise InputError(
                "no std_addresses layer; the geocoder needs the standard address library",
                file=layers_path,
                layer="std_addresses",
            )
        layers: dict[str, gpd.GeoDataFrame] = {
            name: read_layer(layers_path, name)
            for name in ("std_addresses", "towns", "communities", "city")
            if name in present
        }
        plan = None
        if plan_path is not None:
            from gridplan.plans import read_plan

            plan = read_plan(plan_path)
        return cls.from_layers(layers, plan=plan)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without caches (they are rebuilt on first use where needed)."""
        state = self.__dict__.copy()
        state["stats"] = {k: v for k, v in self.stats.items() if not k.startswith("_")}
        return state

    # ------------------------------------------------------------------------------------------
    def match_addresses(self, addresses: pd.Series, *, min_score: float = 80.0) -> pd.DataFrame:
        """Address-only matching of a column (no coordinates, no codes); one row per input row."""
        arr = addresses.to_numpy(dtype=object)
        inverse, uniq = pd.factorize(arr, use_na_sentinel=False)
        u = pd.Series([v if isinstance(v, str) else "" for v in uniq], dtype=object)
        norm = normalize_addresses(u, rules=self.vocab.rules)
        parsed = parse_addresses(norm["key"], self.vocab)
        res = match_parsed(parsed, self.index, min_score=min_score)
        res["address_extra"] = _join_cols(norm["address_extra"], parsed["parse_extra"])
        empty = u.str.strip() == ""
        if empty.any():
            res.loc[empty.to_numpy(), "reason"] = NO_ADDRESS
        out = res.take(inverse).reset_index(drop=True)
        out.index = addresses.index
        return out

    def geocode(
        self,
        table: pd.DataFrame,
        *,
        min_score: float = 80.0,
        address_col: str = "address",
        disagree_m: float = DISAGREE_M,
    ) -> pd.DataFrame:
        """Geocode a table of records (cases, hazards …).

        Parameters
        ----------
        table
            Rows with an ``address`` column (free text; may be empty) and optionally ``lon``,
            ``lat``, ``coord_sys`` (cgcs2000|wgs84|gcj02|bd09; empty = cgcs2000).
        min_score
            Minimum score (0–100) of an address match; below it the row is ``U``.
        address_col
            Name of the address column.
        disagree_m
            Address/coordinate distance (metres) flagged as disagreement.

        Returns
        -------
        pandas.DataFrame
            The input columns (``lon``, ``lat``, ``coord_sys`` renamed ``in_lon`` …) followed by
            :data:`OUTPUT_COLUMNS`; ``lon``/``lat`` in CGCS2000, ``coord_sys`` ``cgcs2000``.

        Raises
        ------
        InputError
            Neither an address column nor lon/lat columns; an unknown ``coord_sys`` value.

        """
        t0 = time.perf_counter()
        has_addr = address_col in table.columns
        has_xy = "lon" in table.columns and "lat" in table.columns
        if not has_addr and not has_xy:
            raise InputError(f"needs an '{address_col}' column or 'lon' and 'lat' columns", field=address_col)
        n = len(table)
        addresses = table[address_col] if has_addr else pd.Series([""] * n, index=table.index, dtype=object)
        res = self.match_addresses(addresses, min_score=min_score)
        if has_xy:
            lon = pd.to_numeric(table["lon"], errors="coerce").to_numpy(dtype=float)
            lat = pd.to_numeric(table["lat"], errors="coerce").to_numpy(dtype=float)
            cs = table["coord_sys"].to_numpy(dtype=object) if "coord_sys" in table.columns else np.full(n, "")
        else:
            lon = lat = np.full(n, np.nan)
            cs = np.full(n, "", dtype=object)
        try:
            coords = check_coordinates(
                lon, lat, cs, city=self.city, bbox_lonlat=self.bbox_lonlat, to_crs=self.to_crs
            )
        except InputError as exc:
            raise InputError(exc.reason, field="coord_sys") from None
        res = choose_position(res, coords, disagree_m=disagree_m)
        if has_xy:
            _flag_unreadable(res, _unreadable_coordinates(table["lon"], table["lat"], lon, lat))
        x = res["x"].to_numpy(dtype=float)
        y = res["y"].to_numpy(dtype=float)
        grid, comm, town = self._area_codes(res, x, y)
        lon_o, lat_o = np.full(n, np.nan), np.full(n, np.nan)
        fin = np.isfinite(x)
        if fin.any():
            lon_o[fin], lat_o[fin] = crs.xy_to_lonlat(x[fin], y[fin], from_crs=self.to_crs)
        by_coord = res["located_by"].to_numpy(dtype=object) == "coordinates"
        lon_o[by_coord], lat_o[by_coord] = coords.lon[by_coord], coords.lat[by_coord]
        out = table.rename(columns={c: f"in_{c}" for c in REPLACED_COLUMNS if c in table.columns}).copy()
        out = out.drop(columns=[c for c in OUTPUT_COLUMNS if c in out.columns])
        res_cols = {
            "status": res["status"].to_numpy(dtype=object),
            "score": res["score"].to_numpy(dtype=float).round(1),
            "match_level": res["match_level"].to_numpy(dtype=object),
            "address_id": res["address_id"].to_numpy(dtype=object),
            "matched_address": res["matched_address"].to_numpy(dtype=object),
            "lon": np.round(lon_o, 8),
            "lat": np.round(lat_o, 8),
            "coord_sys": np.full(n, "cgcs2000", dtype=object),
            "grid_code": grid,
            "community_code": comm,
            "town_code": town,
            "candidates": res["candidates"].to_numpy(dtype=object),
            "reason": res["reason"].to_numpy(dtype=object),
            "located_by": res["located_by"].to_numpy(dtype=object),
            "address_extra": res["address_extra"].to_numpy(dtype=object),
        }
        for k, v in res_cols.items():
            out[k] = pd.Series(v, index=out.index, dtype=float if v.dtype.kind == "f" else object)
        dt = time.perf_counter() - t0
        counts = pd.Series(res_cols["status"]).value_counts()
        logger.info(
            "geocoded %d rows (%d distinct addresses): %d M, %d T, %d U in %.2f s",
            n,
            addresses.nunique(),
            counts.get("M", 0),
            counts.get("T", 0),
            counts.get("U", 0),
            dt,
        )
        return out

    def _area_codes(self, res: pd.DataFrame, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        """Grid, community and town codes at the points; by name for matches without a point."""
        grid, comm, town = self.areas.codes_at(x, y)
        ck = res["community_key"].to_numpy(dtype=object)
        tk = res["town"].to_numpy(dtype=object)
        no_pt = ~np.isfinite(x) & (res["status"].to_numpy(dtype=object) == "M")
        comm[no_pt] = [self.areas.community_code_of.get(k, "") for k in ck[no_pt]]
        town[no_pt] = [
            self.areas.town_code_of.get(t, "") or (c[:9] if c else "")
            for t, c in zip(tk[no_pt], comm[no_pt], strict=True)
        ]
        return grid, comm, town

    def geocode_chunks(
        self,
        table: pd.DataFrame,
        *,
        chunk_rows: int = 200_000,
        on_progress: Callable[[int], None] | None = None,
        **kwargs: Any,
    ) -> pd.DataFrame:
        """:meth:`geocode` in chunks of *chunk_rows* rows, calling ``on_progress(rows_done)``."""
        parts = []
        for s in range(0, len(table), chunk_rows):
            parts.append(self.geocode(table.iloc[s : s + chunk_rows], **kwargs))
            if on_progress is not None:
                on_progress(min(s + chunk_rows, len(table)))
        if not parts:
            return self.geocode(table, **kwargs)
        return pd.concat(parts)


def rematch(
    previous: pd.DataFrame,
    geocoder: Geocoder,
    *,
    min_score: float = 80.0,
    statuses: tuple[str, ...] = ("U",),
    address_col: str = "address",
) -> pd.DataFrame:
    """Re-run the rows of a previous geocoder output whose status is in *statuses*.

    The other rows are kept as they were; re-run rows use their (possibly edited) address and
    their original coordinates (``in_lon``, ``in_lat``, ``in_coord_sys``).

    Raises
    ------
    InputError
        *previous* is not a geocoder output (no ``status`` column).

    """
    if "status" not in previous.columns:
        raise InputError("not a geocoder output (no 'status' column); run geocode first", field="status")
    redo = previous["status"].isin(list(statuses)).to_numpy()
    if not redo.any():
        return previous.copy()
    sub = previous[redo].drop(columns=[c for c in OUTPUT_COLUMNS if c in previous.columns])
    sub = sub.rename(columns={f"in_{c}": c for c in REPLACED_COLUMNS if f"in_{c}" in sub.columns})
    again = geocoder.geocode(sub, min_score=min_score, address_col=address_col)
    out = previous.copy()
    for c in again.columns:
        if c not in out.columns:
            out[c] = ""
    out = out.astype({c: object for c in again.columns if out[c].dtype != again[c].dtype})
    out.loc[redo, again.columns] = again.to_numpy()
    return out


def summary_counts(result: pd.DataFrame) -> dict[str, int]:
    """Count the rows of a geocoder output by status, level and source (what ``gridplan geocode`` prints).

    Keys: ``rows``, ``status M`` / ``T`` / ``U``, ``level house`` … ``coordinate``, ``by address`` /
    ``coordinates`` / ``both``, ``flagged`` (M rows with a reason), ``in grid``.  Counts of parts
    add up to the counts of the whole.

    Examples
    --------
    >>> counts = summary_counts(pd.DataFrame({"status": ["M", "U"], "match_level": ["house", ""],
    ...     "located_by": ["address", ""], "reason": ["", "no address"], "grid_code": ["G1", ""]}))
    >>> counts["rows"], counts["status M"], counts["level house"], counts["in grid"]
    (2, 1, 1, 1)

    """
    status = result["status"].astype(str)
    level = result["match_level"].astype(str)
    by = result["located_by"].astype(str)
    out = {"rows": len(result)}
    out.update({f"status {s}": int((status == s).sum()) for s in ("M", "T", "U")})
    levels = ("house", "road", "community", "town", "coordinate")
    out.update({f"level {lv}": int((level == lv).sum()) for lv in levels})
    out.update({f"by {b}": int((by == b).sum()) for b in ("address", "coordinates", "both")})
    out["flagged"] = int(((status == "M") & (result["reason"].astype(str) != "")).sum())
    out["in grid"] = int((result["grid_code"].astype(str) != "").sum())
    return out


def _library_table(std: gpd.GeoDataFrame) -> pd.DataFrame:
    """Build the library's matching table (normalised components, digit keys, x/y)."""
    geom = std.geometry
    pts = geom if (geom.geom_type == "Point").all() else geom.representative_point()
    town = normalize_names(std["town_name"])
    comm = normalize_names(std["community_name"])
    road = normalize_names(std["road_name"])
    house = house_key(std["house_number"]).to_numpy(dtype=object)
    bldg = building_key(std["building_no"]).to_numpy(dtype=object)
    house_num = _leading_int(house, r"^(\d+)")
    bnum = _leading_int(bldg, r"(\d+)")
    return obj_frame(
        {
            "address_id": std["address_id"].astype(str).to_numpy(dtype=object),
            "town": town,
            "community_key": np.char.add(np.char.add(town.astype(str), "/"), comm.astype(str)).astype(object),
            "road": road,
            "house": house,
            "building": bldg,
            "house_num": house_num.fillna(-1).to_numpy(dtype=np.int64),
            "bnum": bnum.fillna(0).to_numpy(dtype=np.int64),
            "x": shapely.get_x(pts.to_numpy()),
            "y": shapely.get_y(pts.to_numpy()),
            "full_address": std["full_address"].astype(str).to_numpy(dtype=object),
        }
    )


def _leading_int(values: np.ndarray, pattern: str) -> pd.Series:
    """First integer matched by *pattern* in each value (NaN where none), computed per distinct value."""
    codes, uniq = pd.factorize(values)
    nums = pd.to_numeric(pd.Series(uniq, dtype=object).str.extract(pattern, expand=False), errors="coerce")
    return pd.Series(np.append(nums.to_numpy(dtype=float), np.nan)[codes])


def _unreadable_coordinates(
    lon_in: pd.Series, lat_in: pd.Series, lon: np.ndarray, lat: np.ndarray
) -> np.ndarray:
    """Rows whose lon/lat cells hold text that is not a number (empty cells are just missing)."""
    given = np.zeros(len(lon), dtype=bool)
    for col in (lon_in, lat_in):
        if not pd.api.types.is_numeric_dtype(col.dtype):
            given |= (col.fillna("").astype(str).str.strip() != "").to_numpy(dtype=bool)
    return given & ~(np.isfinite(lon) & np.isfinite(lat))


def _join_cols(a: pd.Series, b: pd.Series) -> pd.Series:
    a = a.to_numpy(dtype=object)
    b = b.to_numpy(dtype=object)
    return pd.Series(
        np.array(
            [f"{x} {y}".strip() if x and y else (x or y) for x, y in zip(a, b, strict=True)], dtype=object
        ),
        dtype=object,
    )


__all__ = ["OUTPUT_COLUMNS", "Geocoder", "rematch", "summary_counts"]
