"""Heatmaps and hot spots (PRODUCT §3.5).

* :mod:`~gridplan.hotspots.aggregate` — events assigned to grids and aggregated to grids,
  communities, towns or H3 cells (counts, rates, densities, by category and time step);
* :mod:`~gridplan.hotspots.gistar` — neighbourhoods, Getis-Ord Gi*, FDR bins: the ``hotspots`` layer;
* :mod:`~gridplan.hotspots.emerging` — space-time Gi*, Mann-Kendall, the 17 ArcGIS pattern labels;
* :mod:`~gridplan.hotspots.yoy` — year-on-year change tables;
* :mod:`~gridplan.hotspots.kde` — KDE heatmap rasters (Cloud-Optimized GeoTIFF, PNG);
* :mod:`~gridplan.hotspots.optimize` — the optimized default: H3 cells and k-ring chosen from the data.
"""

from gridplan.hotspots.aggregate import Areas, aggregate_events, analysis_units, assign_events, filter_events
from gridplan.hotspots.emerging import (
    PATTERNS,
    PATTERNS_ZH,
    TrendOptions,
    classify_pattern,
    classify_patterns,
    emerging_hotspots,
    mann_kendall,
    pattern_masks,
    space_time_cube,
    space_time_gi,
)
from gridplan.hotspots.gistar import (
    BatchOptions,
    fdr_bins,
    gi_star,
    gi_star_analytic,
    hotspot_analysis,
    neighbour_matrix,
    resolve_value,
    spatial_weights,
)
from gridplan.hotspots.kde import (
    DENSITY_UNITS,
    NODATA,
    cell_centres,
    kde_density,
    kde_exact,
    linear_bin,
    silverman_bandwidth_m,
    write_cog,
    write_png,
)
from gridplan.hotspots.optimize import Choice, grid_hotspot_share, optimized_areas
from gridplan.hotspots.yoy import ALL_CATEGORIES, year_on_year

__all__ = [
    "ALL_CATEGORIES",
    "DENSITY_UNITS",
    "NODATA",
    "PATTERNS",
    "PATTERNS_ZH",
    "Areas",
    "BatchOptions",
    "Choice",
    "TrendOptions",
    "aggregate_events",
    "analysis_units",
    "assign_events",
    "cell_centres",
    "classify_pattern",
    "classify_patterns",
    "emerging_hotspots",
    "fdr_bins",
    "filter_events",
    "gi_star",
    "gi_star_analytic",
    "grid_hotspot_share",
    "hotspot_analysis",
    "kde_density",
    "kde_exact",
    "linear_bin",
    "mann_kendall",
    "neighbour_matrix",
    "optimized_areas",
    "pattern_masks",
    "resolve_value",
    "silverman_bandwidth_m",
    "space_time_cube",
    "space_time_gi",
    "spatial_weights",
    "write_cog",
    "write_png",
    "year_on_year",
]
