"""The layer catalog: canonical layers and fields of PRODUCT §4, aliases, field coercion."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import yaml

from gridplan.errors import InputError
from gridplan.layers import formats as _readers
from gridplan.layers.formats import parse_datetimes

#: The one layer catalog (``layers/catalog.yml`` in the source tree is a link to it).
CATALOG_PATH: Path = Path(__file__).resolve().with_name("catalog.yml")

#: Catalog geometry kind → geometry types a feature of that layer may have.
GEOMETRY_TYPES: dict[str, frozenset[str]] = {
    "polygon": frozenset({"Polygon", "MultiPolygon"}),
    "line": frozenset({"LineString", "MultiLineString", "LinearRing"}),
    "point": frozenset({"Point", "MultiPoint"}),
    "none": frozenset({"Point", "MultiPoint"}),
}

@dataclass(frozen=True)
class FieldSpec:
    """One canonical field: type (``code``, ``id``, ``str``, ``int``, ``float``, ``datetime``)."""

    name: str
    type: str
    digits: int | None = None
    zh: str = ""
    en: str = ""
    aliases: tuple[str, ...] = ()

@dataclass(frozen=True)
class LayerSpec:
    """One canonical layer (or layer kind such as ``dept``)."""

    name: str
    geometry: str
    required: tuple[str, ...]
    id_field: str | None = None
    nullable: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    zh: str = ""
    en: str = ""
    aliases: tuple[str, ...] = ()
    rename: Mapping[str, str] = field(default_factory=dict)
    coverage: bool = False

@dataclass(frozen=True, eq=False)
class Catalog:
    """The parsed ``layers/catalog.yml``.

    Examples
    --------
    >>> cat = load_catalog()
    >>> cat.kind_for("dept_police"), cat.kind_for("communities"), cat.kind_for("社区")
    ('dept', 'communities', 'communities')
    >>> cat.field_for("网格编码", "dept"), cat.field_for("户数")
    ('dept_grid_id', 'households')

    """

    fields: Mapping[str, FieldSpec]
    layers: Mapping[str, LayerSpec]
    kinds: tuple[tuple[str, str], ...]
    path: Path | None = None

    def kind_for(self, layer_name: str) -> str | None:
        """Return the catalog layer (kind) that *layer_name* is, or ``None`` if unrecognised."""
        name = layer_name.strip()
        if name in self.layers:
            return name
        folded = name.casefold()
        for spec in self.layers.values():
            if folded == spec.name.casefold() or folded in (a.casefold() for a in spec.aliases):
                return spec.name
        for pattern, kind in self.kinds:
            if fnmatch.fnmatchcase(folded, pattern.casefold()):
                return kind
        return None

    def suggest(self, layer_name: str) -> str | None:
        """Return the catalog layer an unrecognised *layer_name* is probably a misspelling of.

        Examples
        --------
        >>> load_catalog().suggest("comunities"), load_catalog().suggest("dept-police")
        ('communities', 'dept_police')
        >>> load_catalog().suggest("layer_styles") is None
        True

        """
        folded = layer_name.strip().casefold()
        if folded.replace("-", "_").startswith("dept_") and self.kind_for(folded.replace("-", "_")) == "dept":
            return folded.replace("-", "_")
        names = [n for n in self.layers if n != "dept"]
        hit = difflib.get_close_matches(folded, names, n=1, cutoff=0.8)
        return hit[0] if hit else None

    def known_names(self) -> str:
        """Return the layer names a file may hold, for messages: ``city, towns, …, dept_<name>``."""
        return ", ".join([*(n for n in self.layers if n != "dept"), "dept_<name>"])

    def field_for(self, column: str, kind: str | None = None) -> str | None:
        """Return the canonical field a column name stands for (in layer *kind*), or ``None``."""
        key = _fold(column)
        if kind is not None and kind in self.layers:
            target = _layer_renames(self, kind).get(key)
            if target is not None:
                return target
        return _alias_index(self).get(key)

    def spec(self, kind: str) -> LayerSpec:
        """Return the :class:`LayerSpec` of *kind*; unknown kinds are an :class:`InputError`."""
        try:
            return self.layers[kind]
        except KeyError:
            raise InputError(
                f"unknown layer kind {kind!r}; use one of {', '.join(self.layers)}"
            ) from None

def _fold(name: str) -> str:
    return str(name).strip().casefold()

@lru_cache(maxsize=8)
def _alias_index(cat: Catalog) -> dict[str, str]:
    index: dict[str, str] = {}
    truncated: dict[str, list[str]] = {}
    for spec in cat.fields.values():
        index[_fold(spec.name)] = spec.name
        for alias in spec.aliases:
            index.setdefault(_fold(alias), spec.name)
        if len(spec.name) > 10:
            truncated.setdefault(_fold(spec.name[:10]), []).append(spec.name)
    for short, names in truncated.items():  # Shapefile's 10-character field names, when unambiguous
        if len(names) == 1:
            index.setdefault(short, names[0])
    return index

@lru_cache(maxsize=64)
def _layer_renames(cat: Catalog, kind: str) -> dict[str, str]:
    return {_fold(k): v for k, v in cat.layers[kind].rename.items()}

def _tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)

@lru_cache(maxsize=4)
def _load_catalog_cached(path: str) -> Catalog:
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    fields = {
        name: FieldSpec(
            name=name,
            type=str(spec["type"]),
            digits=spec.get("digits"),
            zh=str(spec.get("zh", "")),
            en=str(spec.get("en", "")),
            aliases=_tuple(spec.get("aliases")),
        )
        for name, spec in raw["fields"].items()
    }
    layers = {
        name: LayerSpec(
            name=name,
            geometry=str(spec["geometry"]),
            required=_tuple(spec.get("required")),
            id_field=spec.get("id_field"),
            nullable=_tuple(spec.get("nullable")),
            optional=_tuple(spec.get("optional")),
            zh=str(spec.get("zh", "")),
            en=str(spec.get("en", "")),
            aliases=_tuple(spec.get("aliases")),
            rename={str(k): str(v) for k, v in (spec.get("rename") or {}).items()},
            coverage=bool(spec.get("coverage", False)),
        )
        for name, spec in raw["layers"].items()
    }
    kinds = tuple((str(k["pattern"]), str(k["kind"])) for k in raw.get("kinds", ()))
    return Catalog(fields=fields, layers=layers, kinds=kinds, path=Path(path))

def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load the layer catalog (cached).

    Parameters
    ----------
    path
        A catalog YAML file; default :data:`CATALOG_PATH` (``gridplan/layers/catalog.yml``).

    """
    if path is None:
        path = CATALOG_PATH
    return _load_catalog_cached(str(Path(path).resolve()))

def map_fields(df: pd.DataFrame, kind: str | None, *, catalog: Catalog | None = None) -> pd.DataFrame:
    """Rename columns to canonical names through the catalog (returns a renamed copy).

    A column is renamed only when its canonical name is not taken already; the geometry column is
    never renamed.

    Examples
    --------
    >>> df = pd.DataFrame({"网格编码": ["A1"], "名称": ["一网格"], "other": [1]})
    >>> list(map_fields(df, "dept").columns)
    ['dept_grid_id', 'dept_grid_name', 'other']

    """
    cat = catalog or load_catalog()
    geom_name = df.geometry.name if isinstance(df, gpd.GeoDataFrame) else None
    taken = {c for c in df.columns if c in cat.fields}
    renames: dict[str, str] = {}
    for col in df.columns:
        if col == geom_name or col in cat.fields:
            continue
        target = cat.field_for(str(col), kind)
        if target is not None and target not in taken:
            renames[col] = target
            taken.add(target)
    return df.rename(columns=renames) if renames else df.copy()

def coerce_fields(df: pd.DataFrame, *, catalog: Catalog | None = None) -> pd.DataFrame:
    """Cast every canonical column to its catalog type (returns a copy).

    ``code`` → zero-padded text, ``id``/``str`` → text (blank → missing), ``int`` → int64 (float64
    when there are missing values), ``float`` → float64, ``datetime`` → datetime64 (ISO 8601).

    Examples
    --------
    >>> df = pd.DataFrame({"county_code": [441900], "community_code": [441900119001.0],
    ...                    "town_code": ["41900119"], "households": ["12"]})
    >>> out = coerce_fields(df)
    >>> out.loc[0, "county_code"], out.loc[0, "community_code"], out.loc[0, "town_code"]
    ('441900', '441900119001', '041900119')
    >>> out["households"].dtype
    dtype('int64')

    """
    cat = catalog or load_catalog()
    out = df.copy()
    for col in out.columns:
        spec = cat.fields.get(col)
        if spec is None or (isinstance(out, gpd.GeoDataFrame) and col == out.geometry.name):
            continue
        s = out[col]
        if spec.type in ("code", "id"):
            out[col] = _readers.to_code_text(s, spec.digits if spec.type == "code" else None)
        elif spec.type == "str":
            out[col] = _readers.blank_to_na(s)
        elif spec.type in ("int", "float"):
            num = pd.to_numeric(s, errors="coerce") if not pd.api.types.is_numeric_dtype(s) else s
            num = num.astype("float64")
            if spec.type == "int" and num.notna().all() and np.all(np.mod(num.to_numpy(), 1) == 0):
                out[col] = num.astype("int64")
            else:
                out[col] = num
        elif spec.type == "datetime":
            out[col] = parse_datetimes(s)
    return out

def required_fields(kind: str, *, catalog: Catalog | None = None) -> tuple[str, ...]:
    """Return the required fields of layer *kind* (e.g. ``required_fields("dept")``)."""
    return (catalog or load_catalog()).spec(kind).required

def layer_kinds(names: Iterable[str], *, catalog: Catalog | None = None) -> dict[str, str | None]:
    """Map layer names to their catalog kinds (``None`` when unrecognised)."""
    cat = catalog or load_catalog()
    return {name: cat.kind_for(name) for name in names}
