"""gridplan.maps.escape: one escaping for HTML and JavaScript contexts, and builders that use it."""

from __future__ import annotations

import html
import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import box

from gridplan.maps.escape import escape_html, escape_values, js_json, js_string

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "${alert(1)}",
    "\\`${alert(2)}`\\",
    "\"quoted\" and 'single'",
    "</script><script>alert(4)</script>",
    "line\nbreak\u2028sep",
]
DANGEROUS = set("<>\"'`$\\{}\n\u2028")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_escape_html_neutralises_both_contexts(payload: str) -> None:
    out = escape_html(payload)
    assert not DANGEROUS & set(out)
    assert html.unescape(out) == payload
    assert "</" not in out
    assert "${" not in out


@given(st.text())
def test_escape_html_round_trips(text: str) -> None:
    out = escape_html(text)
    assert not DANGEROUS & set(out)
    assert html.unescape(out) == text.replace("\x00", "")


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(st.none() | st.text() | st.integers(), lambda c: st.lists(c) | st.dictionaries(st.text(), c))
)
def test_js_json_is_script_safe_and_round_trips(obj: object) -> None:
    out = js_json(obj)
    assert not set("<>&'`$\u2028\u2029") & set(out)
    assert json.loads(out) == obj


def test_missing_values_and_vector_form() -> None:
    assert escape_html(None) == escape_html(float("nan")) == escape_html(pd.NA) == ""
    assert escape_values(["<b>", None, 3]) == ["&lt;b&gt;", "", "3"]
    assert js_string("</script>") == '"\\u003c/script\\u003e"'


def test_builders_never_emit_raw_payloads() -> None:
    from gridplan import maps

    geoms = [box(500000 + i * 300, 2550000, 500300 + i * 300, 2550300) for i in range(len(PAYLOADS))]
    grids = gpd.GeoDataFrame(
        {
            "grid_code": PAYLOADS,
            "community_name": PAYLOADS,
            "town_name": PAYLOADS,
            "households": 300 + np.arange(7),
        },
        geometry=geoms,
        crs=4547,
    )
    towns = gpd.GeoDataFrame(
        {"town_name": PAYLOADS[:1]}, geometry=[box(500000, 2550000, 502100, 2550300)], crs=4547
    )
    cases = pd.DataFrame(
        {"lon": 114.0, "lat": 23.05, "address": PAYLOADS, "category": PAYLOADS, "case_id": PAYLOADS}
    )
    qa = gpd.GeoDataFrame(
        {"layer": PAYLOADS, "feature_id": PAYLOADS, "issue": PAYLOADS, "detail": PAYLOADS},
        geometry=geoms,
        crs=4547,
    )
    built = [
        maps.base_grid_map(grids, background={"towns": towns}, title=PAYLOADS[0], subtitle=PAYLOADS[2]),
        maps.cases_map(cases, base_grids=grids, title=PAYLOADS[5]),
        maps.qa_map(qa, base_grids=grids),
        maps.dept_grid_map({"dept_x": grids.assign(dept_grid_id=PAYLOADS, dept_grid_name=PAYLOADS)}),
        maps.dual_grid_map(grids, grids, changes=pd.DataFrame({"grid_code": PAYLOADS, "change": PAYLOADS})),
    ]
    for m in built:
        page = maps.render_html(m)
        body = re.sub(r"<(script|style) data-gridplan-asset=\"[a-z]+\">.*?</\1>", "", page, flags=re.S)
        for needle in ("<img src=x", "<script>alert", "${alert", "onerror=alert(1)>", "`${"):
            assert needle not in body, needle
        # exactly one closing script tag per opened script element: no break-out
        assert body.count("<script") == body.count("</script>")


def test_urls_in_user_data_do_not_block_publishing() -> None:
    from gridplan import maps
    from gridplan.maps.publish import check_offline

    cases = pd.DataFrame({"lon": [114.0], "lat": [23.05], "address": ["见 http://evil.example.com/x.js"]})
    html = maps.render_html(maps.cases_map(cases))
    assert check_offline(html) == []
    assert "evil.example.com" in html  # shown as text, not as a reference
