"""Geocoding against the standard address library and work map ("二标", PRODUCT §3.4).

One module per step: :mod:`~gridplan.geocode.normalize` (text rules), :mod:`~gridplan.geocode.parse`
(vocabulary-driven parsing), :mod:`~gridplan.geocode.match` (candidates, score, fallback),
:mod:`~gridplan.geocode.assign` (coordinates, grid assignment), :mod:`~gridplan.geocode.reverse`
(point → nearest address), :mod:`~gridplan.geocode.geocoder` (the batch :class:`Geocoder`) and
:mod:`~gridplan.geocode._dask` (the same batch on a Dask cluster).

Examples
--------
>>> import geopandas as gpd, pandas as pd
>>> from shapely import points
>>> std = gpd.GeoDataFrame({"address_id": ["A1"], "town_name": ["长安镇"], "community_name": ["乌沙社区"],
...     "road_name": ["兴发路"], "house_number": ["23号"], "building_no": [""],
...     "full_address": ["长安镇乌沙社区兴发路23号"]}, geometry=points([440000.0], [2540000.0]), crs=4547)
>>> g = Geocoder.from_layers({"std_addresses": std})
>>> r = g.geocode(pd.DataFrame({"address": ["东莞市长安乌沙村兴发路二十三号附近"]}))
>>> r.loc[0, ["status", "match_level", "address_id", "address_extra"]].tolist()
['M', 'house', 'A1', '东莞市 附近']

"""

from __future__ import annotations

from gridplan.geocode._dask import dask_client, geocode_dask
from gridplan.geocode.assign import DISAGREE_M, check_coordinates, choose_position
from gridplan.geocode.geocoder import OUTPUT_COLUMNS, Geocoder, rematch
from gridplan.geocode.match import AddressIndex, match_parsed
from gridplan.geocode.normalize import TextRules, cn_to_int, normalize_addresses
from gridplan.geocode.parse import Vocabulary, parse_addresses
from gridplan.geocode.reverse import reverse_geocode, reverse_geocode_xy

__all__ = [
    "DISAGREE_M",
    "OUTPUT_COLUMNS",
    "AddressIndex",
    "Geocoder",
    "TextRules",
    "Vocabulary",
    "check_coordinates",
    "choose_position",
    "cn_to_int",
    "dask_client",
    "geocode_dask",
    "match_parsed",
    "normalize_addresses",
    "parse_addresses",
    "rematch",
    "reverse_geocode",
    "reverse_geocode_xy",
]
