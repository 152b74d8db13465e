"""The sample city: a deterministic Dongguan-like city with every layer of PRODUCT §4.

* :mod:`~gridplan.sample.city` — :func:`write_sample` / :func:`build_sample`, scales;
* :mod:`~gridplan.sample.names` — towns, name pools, numerals;
* :mod:`~gridplan.sample.geo` — outline, partitions, streets, buildings;
* :mod:`~gridplan.sample.dept` — departmental layers with the defects of hand-drawn data;
* :mod:`~gridplan.sample.events` — cases and hazards with planted hotspots, trends, messy addresses.
"""

from gridplan.sample._frames import CRS
from gridplan.sample.city import (
    DEPARTMENTS,
    LAYER_ORDER,
    SCALES,
    SampleCity,
    Scale,
    ScaleSpec,
    build_sample,
    write_sample,
)

__all__ = [
    "CRS",
    "DEPARTMENTS",
    "LAYER_ORDER",
    "SCALES",
    "SampleCity",
    "Scale",
    "ScaleSpec",
    "build_sample",
    "write_sample",
]
