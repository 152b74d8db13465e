"""Tables for people (issue 19): UTF-8 BOM, formula neutralisation, Chinese headers, Excel formats."""

from __future__ import annotations

import codecs
import os

import geopandas as gpd
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook
from shapely import Point

from gridplan.errors import InputError
from gridplan.layers import write_table, write_table_csv
from gridplan.layers.catalog import load_catalog
from gridplan.layers.excel import FORMULA_PREFIXES, labelled_frame, neutralize_formulas, write_workbook
from gridplan.layers.labels import field_label, format_value, value_color, value_label

EVIL = '=HYPERLINK("http://evil","点我")'


def _cases() -> pd.DataFrame:
    return pd.DataFrame({
        "case_id": ["C1", "C2", "C3", "C4", "C5", "C6"],
        "address": [EVIL, "+1 东莞", "-2+3", "@SUM(A1)", "\tcmd", "长安镇"],
        "note": ["\rx", "-12.5", "3", None, "ok", "a=b"],
        "gi_z": [-1.5, 2.0, 0.0, 1.0, -3.0, 0.5],
        "status": ["M", "T", "U", "M", "M", "M"],
    })


def test_csv_has_bom_and_no_live_formula(tmp_path):
    path = write_table_csv(_cases(), tmp_path / "cases.csv")
    raw = path.read_bytes()
    assert raw.startswith(codecs.BOM_UTF8)
    back = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    assert back["address"].tolist() == [f"'{EVIL}", "'+1 东莞", "'-2+3", "'@SUM(A1)", "'\tcmd", "长安镇"]
    assert back["note"].tolist() == ["'\rx", "-12.5", "3", "", "ok", "a=b"]  # a plain number stays
    assert back["gi_z"].tolist()[0] == "-1.5"  # numbers untouched
    assert list(back.columns) == ["case_id", "address", "note", "gi_z", "status"]  # machines read it


def test_csv_for_machines(tmp_path):
    path = write_table_csv(_cases(), tmp_path / "m.csv", bom=False, neutralize=False)
    assert not path.read_bytes().startswith(codecs.BOM_UTF8)
    assert pd.read_csv(path, dtype=str)["address"][0] == EVIL


def test_write_table_csv_is_chinese(tmp_path):
    path = write_table(_cases(), tmp_path / "people.csv")
    assert path.read_bytes().startswith(codecs.BOM_UTF8)
    back = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
    assert list(back.columns) == ["案件编号", "地址", "note", "Gi* Z 得分", "匹配状态"]
    assert back["匹配状态"].tolist() == ["已匹配", "多个候选", "未匹配", "已匹配", "已匹配", "已匹配"]
    assert back["地址"][0] == f"'{EVIL}"
    assert not path.with_name(path.name + ".tmp").exists()


def test_neutralize_keeps_input_and_geometry():
    gdf = gpd.GeoDataFrame({"a": ["=1", "b"]}, geometry=[Point(0, 0), Point(1, 1)], crs=4547)
    out = neutralize_formulas(gdf)
    assert out["a"].tolist() == ["'=1", "b"]
    assert gdf["a"].tolist() == ["=1", "b"]
    assert out.geometry.equals(gdf.geometry)


@given(st.lists(st.one_of(st.none(), st.text(max_size=8)), min_size=1, max_size=20))
def test_neutralized_text_never_starts_a_formula(texts):
    out = neutralize_formulas(pd.DataFrame({"t": pd.Series(texts, dtype=object)}))["t"]
    for before, after in zip(texts, out, strict=True):
        if before is None:
            assert after is None or pd.isna(after)
            continue
        assert after in (before, "'" + before)
        if after and after[0] in FORMULA_PREFIXES:
            float(after)  # only a plain number may start with + or -


def _yoy() -> pd.DataFrame:
    return pd.DataFrame({
        "level": ["town", "community", "grid"],
        "code": ["441900003", "441900003001", "441900003001002"],
        "name": ["东城街道", EVIL, "网格"],
        "category": ["治安", "消防", "全部"],
        "year": [2024, 2025, 2025],
        "count": [305, 40, 7],
        "count_prev": [float("nan"), 50.0, 7.0],
        "change_pct": [float("nan"), -20.0, 0.0],
        "area_share": [0.5, 0.25, 1.0],
        "load_ratio": [1.2, float("inf"), 0.8],  # a grid without staff: no number for Excel
    })


def test_xlsx_headers_formats_frozen_filter_widths(tmp_path):
    path = write_table(_yoy(), tmp_path / "yoy.xlsx")
    ws = load_workbook(path)["yoy"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == ("统计层级", "编码", "名称", "类别", "年份", "事件数（件）", "上年事件数（件）",
                       "同比变化", "面积占比", "负荷系数（相对全市人均）")
    assert [r[0] for r in rows[1:]] == ["镇街", "村（社区）", "基础网格"]
    assert rows[2][1] == "441900003001"
    assert ws["B4"].data_type == "s"
    assert ws["H3"].value == pytest.approx(-0.2)
    assert ws["H3"].number_format == "0.0%"
    assert ws["I3"].number_format == "0.0%"
    assert ws["F2"].number_format == "#,##0"
    assert ws["E2"].value == 2024
    assert ws["E2"].number_format == "General"
    assert ws["G2"].value is None
    assert ws["J3"].value is None
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:J4"
    assert ws["A1"].font.b
    assert ws.column_dimensions["C"].width >= 2 * len("东城街道")
    for row in ws.iter_rows():
        for cell in row:
            assert cell.data_type != "f"
            assert not (isinstance(cell.value, str) and cell.value[:1] in FORMULA_PREFIXES)
    assert ws["C3"].value == f"'{EVIL}"


def test_workbook_of_several_sheets_and_errors(tmp_path):
    gdf = gpd.GeoDataFrame({"site_id": ["C1"], "covered_points": [3]}, geometry=[Point(0, 0)], crs=4547)
    path = write_table({"布点": gdf, "指标": pd.DataFrame({"metric": ["posts"], "value": ["10"]})},
                       tmp_path / "cover.xlsx")
    wb = load_workbook(path)
    assert wb.sheetnames == ["布点", "指标"]
    assert [c.value for c in wb["布点"][1]] == ["候选点编号", "覆盖需求点数（个）"]
    assert wb["指标"]["A2"].value == "布点数"
    with pytest.raises(InputError, match="sheet name"):
        write_workbook({"a/b": gdf}, tmp_path / "bad.xlsx")
    with pytest.raises(InputError, match="xlsx workbook"):
        write_table({"a": gdf}, tmp_path / "bad.csv")
    with pytest.raises(InputError, match=r"\.csv or \.xlsx"):
        write_table(gdf, tmp_path / "bad.txt")
    assert sorted(os.listdir(tmp_path)) == ["cover.xlsx"]


def test_raw_xlsx_keeps_names_but_still_neutralizes(tmp_path):
    path = write_table(_yoy(), tmp_path / "raw.xlsx", labels=False)
    ws = load_workbook(path).active
    assert ws["A1"].value == "level"
    assert ws["A2"].value == "town"
    assert ws["C3"].value == f"'{EVIL}"


def test_labels_table():
    cat = load_catalog()
    # unit_id is a business unit in the input layers but an atomic unit in every output we write
    assert all(field_label(name) == spec.zh for name, spec in cat.fields.items() if name != "unit_id")
    assert field_label("unit_id") == "最小单元编号"
    assert field_label("in_lon") == "原经度"
    assert field_label("unknown_col") == "unknown_col"
    assert field_label("fire_grid_id") == "消防网格编码"
    assert field_label("xyz_grid_id") == "xyz网格编码"
    assert value_label("layer", "dept_police") == "公安网格"
    assert value_label("layer", "communities") == "村（社区）"
    assert value_label("band_status", "ok") == "在范围内"
    assert value_label("status", "Q") == "Q"
    assert value_label("gi_bin", -2.0) == "冷点 - 95% 置信度"
    assert value_color("gi_bin", 0) == "#ffffbf"
    assert format_value("households", 320) == "320 户"
    assert format_value("gi_p", 0.0004) == "< 0.001"
    assert format_value("gi_p", 0.0412) == "0.041"
    assert format_value("reported_at", "2024-01-02T08:00:00") == "2024-01-02 08:00"
    assert format_value("grid_code", "441900003001002") == "441900003001002"
    assert format_value("workload", float("nan")) == "—"
    assert format_value("edge", True) == "是"
    assert labelled_frame(pd.DataFrame({"level": ["grid"]})).columns.tolist() == ["统计层级"]


def test_cli_outputs_for_people_end_to_end(small_city, small_plan, tmp_path):
    """The geocoder's CSV and the year-on-year workbook, written by the CLI on the small sample."""
    from typer.testing import CliRunner

    from gridplan.cli import app

    cases = pd.read_csv(small_city / "cases.csv", dtype=str, encoding="utf-8-sig").head(40)
    cases.loc[0, "address"] = EVIL
    cases.loc[1, "address"] = "@cmd|' /C calc'!A0"
    src = tmp_path / "cases.csv"
    cases.to_csv(src, index=False)
    out = tmp_path / "geo.csv"
    runner = CliRunner()
    res = runner.invoke(app, ["geocode", str(src), "--layers", str(small_city / "layers.gpkg"),
                              "--plan", str(small_plan), "--out", str(out)])
    assert res.exit_code == 0, res.output
    back = pd.read_csv(out, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    assert back["address"][0] == f"'{EVIL}"
    assert back["address"][1] == "'@cmd|' /C calc'!A0"
    for col in back.columns:  # no cell starts a live formula
        live = back[col].str[:1].isin(FORMULA_PREFIXES) & ~back[col].str.fullmatch(r"[+-]?[\d.]+")
        assert not live.any(), col
    yoy = tmp_path / "yoy.xlsx"
    full = small_city / "cases.csv"
    located = tmp_path / "located.csv"
    res = runner.invoke(app, ["geocode", str(full), "--layers", str(small_city / "layers.gpkg"),
                              "--plan", str(small_plan), "--out", str(located)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["hotspots", str(located), "--plan", str(small_plan), "--out",
                              str(tmp_path / "hot.gpkg"), "--yoy-out", str(yoy)])
    assert res.exit_code == 0, res.output
    ws = load_workbook(yoy).active
    header = [c.value for c in ws[1]]
    assert header[:4] == ["统计层级", "编码", "名称", "类别"]
    assert "同比变化" in header
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref.startswith("A1:")
    levels = {ws.cell(row=r, column=1).value for r in range(2, ws.max_row + 1)}
    assert levels <= {"镇街", "村（社区）", "基础网格"}
    pct = header.index("同比变化") + 1
    assert any(ws.cell(row=r, column=pct).number_format == "0.0%" for r in range(2, min(ws.max_row, 50)))
