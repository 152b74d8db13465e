// gridplan grid editor: the page keeps the list of operations; the server (one engine,
// gridplan.balance.edit) answers their consequences for the whole list each time, so undo/redo
// are list operations and the page never computes a rule itself.  A vertex move's new unit shapes
// come back with the answer (changed_units); the version history opens a side-by-side diff of a
// version against its parent (two synchronised maps, from GET /plans/{id}/diff?against=parent).
(function () {
  "use strict";
  var cfg = window.GRIDPLAN_EDITOR;
  var base = "/plans/" + encodeURIComponent(cfg.plan_id);
  var state = { ops: [], undone: [], selected: new Set(), mode: "reassign", line: [], result: null,
                busy: 0, saved: null, unitGrid: {}, byId: {}, hidden: new Set(), vertexFrom: null,
                vertices: 0, diffShown: null, diff: null };
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
  function unitLayer(register) {
    return L.geoJSON(null, {
      style: styleOf,
      onEachFeature: function (f, layer) {
        if (register) { state.byId[f.properties.unit_id] = layer; }
        layer.on("click", function (e) { onUnitClick(f.properties, e); });
        layer.bindTooltip(function () {
          return f.properties.unit_id + " · " + (grid(f.properties.unit_id) || "") + " · " +
            f.properties.households + " 户";
        });
      }
    }).addTo(map);
  }
  var units = unitLayer(true);       // the plan's units, as loaded
  var reshaped = unitLayer(false);   // units whose shape the edits changed (vertex moves)
  state.map = map; state.units = units; state.reshaped = reshaped;
  var lineLayer = L.polyline([], { color: "#c00", weight: 3, dashArray: "6 4" }).addTo(map);
  var vertexLayer = L.layerGroup().addTo(map);

  function onUnitClick(p, e) {
    if (state.mode !== "reassign") { return; }
    if (state.selected.has(p.unit_id)) { state.selected.delete(p.unit_id); }
    else { state.selected.add(p.unit_id); }
    text(el("selected-count"), String(state.selected.size));
    units.setStyle(styleOf);
    if (e && e.originalEvent) { L.DomEvent.stopPropagation(e); }
  }
  map.on("click", function (e) {
    if (state.mode === "vertex") { return placeVertex(e.latlng); }
    if (state.mode !== "split") { return; }
    state.line.push([e.latlng.lng, e.latlng.lat]);
    lineLayer.addLatLng(e.latlng);
    text(el("split-points"), String(state.line.length));
  });

  function setMode(mode) {
    state.mode = mode;
    ["reassign", "split", "vertex"].forEach(function (m) { el("mode-" + m).classList.toggle("on", mode === m); });
    if (mode !== "vertex") { clearVertices(); }
  }
  el("mode-reassign").onclick = function () { setMode("reassign"); };
  el("mode-vertex").onclick = function () { setMode("vertex"); };
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
  // move a vertex: show the grid's outline vertices (after the edits so far), click one, click its place
  function clearVertices() {
    vertexLayer.clearLayers(); state.vertexFrom = null; state.vertices = 0; text(el("vertex-state"), "");
  }
  function rings(geom) {
    if (geom.type === "Polygon") { return geom.coordinates; }
    if (geom.type === "MultiPolygon") { return [].concat.apply([], geom.coordinates); }
    return [];
  }
  el("show-vertices").onclick = function () {
    var g = el("vertex-grid").value.trim();
    if (!g) { status("填写网格编码 (grid code)"); return; }
    setMode("vertex"); clearVertices();
    state.busy += 1;
    post(base + "/edits/outline", { grid: g, operations: state.ops }).then(function (r) {
      state.busy -= 1;
      if (r.status !== 200) { status("无法显示顶点 (no outline): " + detail(r.body)); return; }
      rings(r.body.geometry).forEach(function (ring) {
        ring.slice(0, -1).forEach(function (c) {
          var m = L.circleMarker([c[1], c[0]], { radius: 6, color: "#08519c", weight: 2, fillColor: "#fff",
                                                 fillOpacity: 1 });
          m.on("click", function (e) {
            L.DomEvent.stopPropagation(e);
            vertexLayer.eachLayer(function (o) { o.setStyle({ fillColor: "#fff" }); });
            m.setStyle({ fillColor: "#c00" });
            state.vertexFrom = [c[0], c[1]];
            text(el("vertex-state"), "点击新位置 (click the new place)");
          });
          vertexLayer.addLayer(m);
          state.vertices += 1;
        });
      });
      text(el("vertex-state"), state.vertices + " 个顶点：点一个 (pick one)");
    });
  };
  function placeVertex(latlng) {
    if (!state.vertexFrom) { return; }
    var g = el("vertex-grid").value.trim();
    push({ op: "move_vertex", grid: g, from: state.vertexFrom, to: [latlng.lng, latlng.lat], crs: "EPSG:4326" });
    clearVertices();
  }

  el("undo").onclick = function () { if (state.ops.length) { state.undone.push(state.ops.pop()); preview(); } };
  el("redo").onclick = function () { if (state.undone.length) { state.ops.push(state.undone.pop()); preview(); } };

  function status(msg) { text(el("status"), msg); }
  function csrf() {  // the double-submit token of a browser session (sign-in page); none with a bearer token
    var m = document.cookie.match(/(?:^|;\s*)gp_csrf=([^;]*)/);
    return m ? decodeURIComponent(m[1]) : "";
  }
  function post(url, body) {
    var headers = { "Content-Type": "application/json" };
    if (csrf()) { headers["X-CSRF-Token"] = csrf(); }
    return fetch(url, { method: "POST", credentials: "same-origin", headers: headers, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (j) { return { status: r.status, body: j }; }); });
  }
  function detail(j) {
    var d = j && j.detail;
    if (typeof d === "string") { return d; }
    return JSON.stringify(d || j);
  }

  // units reshaped by vertex moves: the plan's shape is hidden, the edited one drawn instead
  function reshape(fc) {
    var ids = new Set(fc.features.map(function (f) { return f.properties.unit_id; }));
    state.hidden.forEach(function (id) { if (!ids.has(id)) { units.addLayer(state.byId[id]); } });
    state.hidden = new Set(Array.from(ids).filter(function (id) { return state.byId[id]; }));
    state.hidden.forEach(function (id) { units.removeLayer(state.byId[id]); });
    reshaped.clearLayers();
    reshaped.addData(fc);
    fc.features.forEach(function (f) { state.unitGrid[f.properties.unit_id] = f.properties.grid_code; });
  }

  function show(res) {
    state.result = res;
    state.unitGrid = Object.assign({}, state.baseGrid);
    (res.moved || []).forEach(function (m) { state.unitGrid[m.unit_id] = m.to_grid; });
    reshape(res.changed_units || { type: "FeatureCollection", features: [] });
    units.setStyle(styleOf); reshaped.setStyle(styleOf);
    text(el("hh-moved"), String(res.households_moved));
    text(el("units-moved"), String(res.units_moved));
    text(el("dept-cut"), String((res.dept_grids_newly_cut || []).length));
    var addr = res.addresses_moved, bldg = res.buildings_moved;
    text(el("addr-moved"), addr ? String(addr.count) : "0");
    text(el("bldg-moved"), bldg ? String(bldg.count) : "–");
    text(el("units-reshaped"), String(res.units_reshaped || 0));
    text(el("addr-ids"), addr && addr.ids.length ? "地址 " + addr.ids.join(", ") + (addr.count > addr.ids.length ? " …" : "") : "");
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
             dept_grids_newly_cut: [], changed_units: { type: "FeatureCollection", features: [] } });
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

  // version history: this plan's ancestors, itself and its descendants; each version with a parent
  // opens side by side against it
  function loadHistory() {
    return fetch("/plans", { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (rows) {
        var byId = {}, keep = new Set([cfg.plan_id]);
        rows.forEach(function (p) { byId[p.plan_id] = p; });
        for (var up = byId[cfg.plan_id]; up && up.parent_id && !keep.has(up.parent_id); up = byId[up.parent_id]) {
          keep.add(up.parent_id);
        }
        function descends(p) {  // a version made from this plan, directly or not
          for (var q = p, n = 0; q && q.parent_id && n < rows.length; q = byId[q.parent_id], n++) {
            if (q.parent_id === cfg.plan_id) { return true; }
          }
          return false;
        }
        rows.forEach(function (p) { if (descends(p)) { keep.add(p.plan_id); } });
        var ul = el("history"); ul.textContent = "";
        rows.filter(function (p) { return keep.has(p.plan_id); }).forEach(function (p) {
          var li = document.createElement("li");
          li.dataset.plan = p.plan_id;
          li.appendChild(document.createTextNode(p.plan_id + (p.parent_id ? " ← " + p.parent_id : "") + " · " +
                                                 p.kind + " · " + p.created_at));
          if (p.parent_id) {
            var b = document.createElement("button");
            b.className = "compare"; b.dataset.plan = p.plan_id;
            b.textContent = "对比上一版 (diff)";
            b.onclick = function () { openDiff(p.plan_id); };
            li.appendChild(b);
          }
          ul.appendChild(li);
        });
      });
  }

  function diffStyle(f) {
    return f.properties.changed
      ? { color: "#b30000", weight: 2.5, fillColor: "#fc8d59", fillOpacity: 0.55 }
      : { color: "#777", weight: 0.8, fillColor: "#ccc", fillOpacity: 0.12 };
  }
  function diffLayer(fc) {
    return L.geoJSON(fc, {
      style: diffStyle,
      onEachFeature: function (f, layer) {
        var p = f.properties;
        layer.bindTooltip(p.grid_code + " · " + p.change + " · " + p.households_old + " → " + p.households_new + " 户");
      }
    });
  }
  function diffMaps() {
    if (state.diff) { return state.diff; }
    var before = L.map("diff-before", { zoomControl: true }).setView([0, 0], 2);
    var after = L.map("diff-after", { zoomControl: false }).setView([0, 0], 2);
    var syncing = false;
    function follow(src, dst) {
      src.on("move", function () {
        if (syncing) { return; }
        syncing = true;
        dst.setView(src.getCenter(), src.getZoom(), { animate: false });
        syncing = false;
      });
    }
    follow(before, after); follow(after, before);
    state.diff = { before: before, after: after, layers: [] };
    return state.diff;
  }
  function openDiff(planId) {
    state.busy += 1;
    return fetch("/plans/" + encodeURIComponent(planId) + "/diff?against=parent", { credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (j) { return { status: r.status, body: j }; }); })
      .then(function (r) {
        state.busy -= 1;
        if (r.status !== 200) { status("无法对比 (no diff): " + detail(r.body)); return; }
        var d = r.body;
        el("diff").hidden = false;
        var m = diffMaps();
        m.before.invalidateSize(); m.after.invalidateSize();
        m.layers.forEach(function (l) { l.remove(); });
        var lb = diffLayer(d.before).addTo(m.before), la = diffLayer(d.after).addTo(m.after);
        m.layers = [lb, la];
        var changed = L.featureGroup();
        [lb, la].forEach(function (g) { g.eachLayer(function (l) { if (l.feature.properties.changed) { changed.addLayer(l); } }); });
        var bounds = changed.getLayers().length ? changed.getBounds() : lb.getBounds();
        if (bounds.isValid()) { m.before.fitBounds(bounds.pad(0.3)); }
        text(el("diff-new"), d.new_plan_id); text(el("diff-old"), d.old_plan_id);
        text(el("diff-hh-moved"), String(d.summary.households_moved));
        text(el("diff-units-moved"), String(d.summary.units_moved));
        text(el("diff-changed"), String(d.changed_grids.length));
        var tb = el("diff-grids").querySelector("tbody"); tb.textContent = "";
        d.changed_grids.forEach(function (g) {
          var tr = document.createElement("tr"); tr.dataset.grid = g.grid_code;
          [g.grid_code, g.change, g.households_old, g.households_new].forEach(function (v) {
            var td = document.createElement("td"); td.textContent = String(v); tr.appendChild(td);
          });
          tb.appendChild(tr);
        });
        state.diffShown = d.new_plan_id;
      });
  }
  el("diff-close").onclick = function () { el("diff").hidden = true; state.diffShown = null; };

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
