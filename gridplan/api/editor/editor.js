// gridplan grid editor: the page keeps the list of operations; the server (one engine,
// gridplan.balance.edit) answers their consequences for the whole list each time, so undo/redo
// are list operations and the page never computes a rule itself.
(function () {
  "use strict";
  var cfg = window.GRIDPLAN_EDITOR;
  var base = "/plans/" + encodeURIComponent(cfg.plan_id);
  var state = { ops: [], undone: [], selected: new Set(), mode: "reassign", line: [], result: null,
                busy: 0, saved: null, unitGrid: {} };
  window.gridplanEditor = state;

  // a view first: Leaflet cannot draw vector layers on a map without one
  var map = L.map("map", { preferCanvas: false }).setView([0, 0], 2);
  var palette = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
                 "#1f78b4", "#b2df8a", "#fb9a99", "#cab2d6", "#ffff99"];
  function colour(code) {
    var h = 0;
    for (var i = 0; i < code.length; i++) { h = (h * 31 + code.charCodeAt(i)) >>> 0; }
    return palette[h % palette.length];
  }
  function el(id) { return document.getElementById(id); }
  function text(node, value) { node.textContent = value; }
  function grid(unitId) { return state.unitGrid[unitId]; }

  function styleOf(f) {
    var id = f.properties.unit_id, sel = state.selected.has(id);
    return { color: sel ? "#000" : "#555", weight: sel ? 3 : 0.6, fillColor: colour(grid(id) || ""),
             fillOpacity: sel ? 0.75 : 0.45 };
  }
  var units = L.geoJSON(null, {
    style: styleOf,
    onEachFeature: function (f, layer) {
      layer.on("click", function (e) { onUnitClick(f.properties, e); });
      layer.bindTooltip(function () {
        return f.properties.unit_id + " · " + (grid(f.properties.unit_id) || "") + " · " +
          f.properties.households + " 户";
      });
    }
  }).addTo(map);
  state.map = map; state.units = units;
  var lineLayer = L.polyline([], { color: "#c00", weight: 3, dashArray: "6 4" }).addTo(map);

  function onUnitClick(p, e) {
    if (state.mode !== "reassign") { return; }
    if (state.selected.has(p.unit_id)) { state.selected.delete(p.unit_id); }
    else { state.selected.add(p.unit_id); }
    text(el("selected-count"), String(state.selected.size));
    units.setStyle(styleOf);
    if (e && e.originalEvent) { L.DomEvent.stopPropagation(e); }
  }
  map.on("click", function (e) {
    if (state.mode !== "split") { return; }
    state.line.push([e.latlng.lng, e.latlng.lat]);
    lineLayer.addLatLng(e.latlng);
    text(el("split-points"), String(state.line.length));
  });

  function setMode(mode) {
    state.mode = mode;
    el("mode-reassign").classList.toggle("on", mode === "reassign");
    el("mode-split").classList.toggle("on", mode === "split");
  }
  el("mode-reassign").onclick = function () { setMode("reassign"); };
  el("mode-split").onclick = function () { setMode("split"); state.line = []; lineLayer.setLatLngs([]);
                                           text(el("split-points"), "0"); };

  function push(op) { state.ops.push(op); state.undone = []; preview(); }
  el("do-reassign").onclick = function () {
    var to = el("target").value.trim();
    if (!to || !state.selected.size) { status("先选单元并填写目标网格 (select units and a target grid)"); return; }
    push({ op: "reassign", units: Array.from(state.selected), to_grid: to });
    state.selected.clear(); text(el("selected-count"), "0");
  };
  el("do-split").onclick = function () {
    var g = el("split-grid").value.trim();
    if (!g || state.line.length < 2) { status("填写网格编码并在地图上点至少两点 (grid code and two points)"); return; }
    push({ op: "split", grid: g, line: state.line.slice(), line_crs: "EPSG:4326" });
    state.line = []; lineLayer.setLatLngs([]); text(el("split-points"), "0"); setMode("reassign");
  };
  el("do-merge").onclick = function () {
    var keep = el("merge-keep").value.trim(), absorb = el("merge-absorb").value.trim();
    if (!keep || !absorb) { status("填写两个网格编码 (two grid codes)"); return; }
    push({ op: "merge", keep: keep, absorb: absorb });
  };
  el("undo").onclick = function () { if (state.ops.length) { state.undone.push(state.ops.pop()); preview(); } };
  el("redo").onclick = function () { if (state.undone.length) { state.ops.push(state.undone.pop()); preview(); } };

  function status(msg) { text(el("status"), msg); }
  function post(url, body) {
    return fetch(url, { method: "POST", credentials: "same-origin",
                        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (j) { return { status: r.status, body: j }; }); });
  }
  function detail(j) {
    var d = j && j.detail;
    if (typeof d === "string") { return d; }
    return JSON.stringify(d || j);
  }

  function show(res) {
    state.result = res;
    state.unitGrid = Object.assign({}, state.baseGrid);
    (res.moved || []).forEach(function (m) { state.unitGrid[m.unit_id] = m.to_grid; });
    units.setStyle(styleOf);
    text(el("hh-moved"), String(res.households_moved));
    text(el("units-moved"), String(res.units_moved));
    text(el("dept-cut"), String((res.dept_grids_newly_cut || []).length));
    var tb = el("grids").querySelector("tbody");
    tb.textContent = "";
    (res.grids || []).forEach(function (g) {
      var tr = document.createElement("tr");
      tr.dataset.grid = g.grid_code;
      [g.grid_code, g.households, g.residents, g.units,
       { ok: "范围内", below: "偏少", above: "偏多" }[g.band_status] || g.band_status, g.parts]
        .forEach(function (v, i) {
          var td = document.createElement("td");
          td.textContent = String(v);
          if (i === 4) { td.className = g.band_status; }
          tr.appendChild(td);
        });
      tb.appendChild(tr);
    });
    var ul = el("violations");
    ul.textContent = "";
    (res.violations || []).forEach(function (v) {
      var li = document.createElement("li"); li.textContent = "不可保存：" + v; ul.appendChild(li);
    });
    el("save").disabled = !(res.legal && state.ops.length);
    text(el("op-count"), String(state.ops.length));
  }

  function preview() {
    text(el("op-count"), String(state.ops.length));
    if (!state.ops.length) {
      show({ legal: true, violations: [], households_moved: 0, units_moved: 0, grids: [], moved: [],
             dept_grids_newly_cut: [] });
      return Promise.resolve();
    }
    state.busy += 1;
    return post(base + "/edits/preview", { operations: state.ops }).then(function (r) {
      state.busy -= 1;
      if (r.status !== 200) {
        status("操作无效 (refused): " + detail(r.body));
        state.undone = []; state.ops.pop();
        return preview();
      }
      status("");
      show(r.body);
    });
  }

  el("save").onclick = function () {
    state.busy += 1;
    post(base + "/edits", { operations: state.ops, message: el("message").value }).then(function (r) {
      state.busy -= 1;
      if (r.status === 201) {
        state.saved = r.body.plan_id;
        status("已保存为新版本 (saved as) " + r.body.plan_id);
        el("save").disabled = true;
        loadHistory();
      } else {
        status("未保存 (not saved, " + r.status + "): " + detail(r.body));
      }
    });
  };

  function loadHistory() {
    return fetch("/plans", { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (rows) {
        var ul = el("history"); ul.textContent = "";
        rows.filter(function (p) { return p.plan_id === cfg.plan_id || p.parent_id === cfg.plan_id; })
          .forEach(function (p) {
            var li = document.createElement("li");
            li.dataset.plan = p.plan_id;
            li.textContent = p.plan_id + (p.parent_id ? " ← " + p.parent_id : "") + " · " + p.kind +
              " · " + p.created_at;
            ul.appendChild(li);
          });
      });
  }

  function loadUnits() {
    state.busy += 1;
    var q = cfg.community ? "?community=" + encodeURIComponent(cfg.community) : "";
    return fetch(base + "/units" + q, { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (fc) {
        state.baseGrid = {};
        fc.features.forEach(function (f) { state.baseGrid[f.properties.unit_id] = f.properties.grid_code; });
        state.unitGrid = Object.assign({}, state.baseGrid);
        units.addData(fc);
        if (fc.features.length) { map.fitBounds(units.getBounds()); }
        state.busy -= 1;
        state.loaded = fc.features.length;
      });
  }
  text(el("band"), cfg.band[0] + "–" + cfg.band[1] + " 户");
  loadUnits().then(loadHistory);
})();
