/* Draws the console's charts with the vendored uPlot from the JSON the server embedded in
   <script id="chart-data" type="application/json">. Values are written for people (grouped
   thousands, compact k/M on axes, never scientific notation) and each y axis is as wide as its
   widest label, so no label is clipped. Each chart container gets data-rendered="true" once
   drawn, with data-points set to the number of plotted values; charts redraw on resize. */
(function () {
  "use strict";
  var node = document.getElementById("chart-data");
  if (!node || typeof uPlot === "undefined") { return; }
  var specs = JSON.parse(node.textContent);
  var FONT = "12px system-ui, sans-serif";
  var measure = document.createElement("canvas").getContext("2d");
  measure.font = FONT;

  function grouped(v, digits) {
    return v.toLocaleString("en-US", {maximumFractionDigits: digits, minimumFractionDigits: 0});
  }

  function compact(v) {
    var a = Math.abs(v);
    if (a >= 1e9) { return grouped(v / 1e9, 1) + "B"; }
    if (a >= 1e6) { return grouped(v / 1e6, 1) + "M"; }
    if (a >= 1e4) { return grouped(v / 1e3, 1) + "k"; }
    return grouped(v, a < 10 ? 2 : 0);
  }

  // Full precision for the legend (the value under the cursor), compact for axis ticks.
  function formatter(kind, currency, forAxis) {
    return function (v) {
      if (v === null || v === undefined || isNaN(v)) { return "–"; }
      if (kind === "money") { return currency + " " + (forAxis ? compact(v) : grouped(v, 0)); }
      if (kind === "percent") { return grouped(v * 100, 1) + "%"; }
      if (kind === "count") { return forAxis ? compact(v) : grouped(v, 0); }
      return forAxis ? compact(v) : grouped(v, 2);
    };
  }

  function axisSize(fmt) {
    return function (u, values) {
      if (!values) { return 50; }
      var widest = 0;
      values.forEach(function (v) { widest = Math.max(widest, measure.measureText(String(v)).width); });
      return Math.ceil(widest) + 18;  // tick length, gap and padding
    };
  }

  // A chart with observed points beside its lines (a response curve and the periods it was
  // fitted to) sends them apart, as their own x and y: uPlot shares one x array among series,
  // so both x arrays are merged in order and each series is empty at the other's x.
  function withPoints(spec) {
    var p = spec.points;
    if (!p) { return {x: spec.x, series: spec.series}; }
    var rows = [];
    spec.x.forEach(function (x, i) { rows.push([x, 0, i]); });
    p.x.forEach(function (x, i) { rows.push([x, 1, i]); });
    rows.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; });
    var series = spec.series.map(function (s) {
      return {label: s.label, color: s.color, kind: s.kind, values: rows.map(function (r) { return r[1] === 0 ? s.values[r[2]] : null; })};
    });
    series.push({label: p.label, color: p.color, kind: "points", values: rows.map(function (r) { return r[1] === 1 ? p.y[r[2]] : null; })});
    return {x: rows.map(function (r) { return r[0]; }), series: series};
  }

  function draw(spec, el) {
    el.textContent = "";
    var points = 0;
    var merged = withPoints(spec);
    var data = [merged.x];
    var series = [{label: spec.x_kind === "month" ? "Month" : "", value: xValue(spec)}];
    var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({size: [0.6, 48]}) : null;
    var valueFmt = formatter(spec.format, spec.currency, false);
    var axisFmt = formatter(spec.format, spec.currency, true);
    merged.series.forEach(function (s) {
      data.push(s.values);
      s.values.forEach(function (v) { if (v !== null) { points += 1; } });
      var opts = {label: s.label, stroke: s.color, width: 2, value: function (u, v) { return valueFmt(v); }};
      if (s.kind === "bars" && bars) { opts.paths = bars; opts.fill = s.color; opts.width = 0; }
      if (s.kind === "dash") { opts.dash = [6, 4]; }
      if (s.kind === "band") { opts.dash = [2, 3]; opts.width = 1; }
      // Beside observed points, the lines span the x values that belong to the points.
      if (spec.points && s.kind !== "points") { opts.spanGaps = true; }
      if (s.kind === "points") { opts.width = 0; opts.paths = function () { return null; }; opts.points = {show: true, size: spec.points ? 5 : 9, fill: s.color}; }
      series.push(opts);
    });
    var width = Math.max(Math.min(el.clientWidth || 0, 1200), 260);
    var yAxis = {
      font: FONT,
      values: function (u, vals) { return vals.map(axisFmt); },
      size: axisSize(axisFmt)
    };
    var xAxis = {font: FONT};
    var scales = {x: {time: spec.x_kind === "month"}};
    // Bars are read from zero: their axis always includes it (with a little room).
    if (spec.series.some(function (s) { return s.kind === "bars"; })) {
      scales.y = {range: function (u, min, max) {
        var lo = Math.min(0, min), hi = Math.max(0, max);
        var pad = (hi - lo) * 0.08 || 1;
        return [lo < 0 ? lo - pad : 0, hi > 0 ? hi + pad : 0];
      }};
    }
    if (spec.x_kind === "category") {
      var n = spec.x_labels.length;
      scales.x = {time: false, range: function () { return [-0.6, n - 0.4]; }};
      xAxis.values = function (u, vals) { return vals.map(function (v) { return Number.isInteger(v) && spec.x_labels[v] !== undefined ? spec.x_labels[v] : ""; }); };
      xAxis.splits = function () { return spec.x.slice(); };
      xAxis.rotate = 0;
    } else if (spec.x_kind === "number") {
      xAxis.values = function (u, vals) { return vals.map(function (v) { return compact(v); }); };
    }
    new uPlot({
      title: spec.title,
      width: width,
      height: 240,
      series: series,
      scales: scales,
      axes: [xAxis, yAxis]
    }, data, el);
    el.setAttribute("data-rendered", "true");
    el.setAttribute("data-points", String(points));
  }

  function xValue(spec) {
    if (spec.x_kind === "month") {
      return function (u, v) { return v === null ? "–" : new Date(v * 1000).toISOString().slice(0, 7); };
    }
    if (spec.x_kind === "category") {
      return function (u, v) { return v === null ? "–" : (spec.x_labels[v] || ""); };
    }
    return function (u, v) { return v === null ? "–" : compact(v); };
  }

  function drawAll() {
    specs.forEach(function (spec) {
      var el = document.getElementById(spec.id);
      if (el) { draw(spec, el); }
    });
  }

  drawAll();
  var timer = null;
  var lastWidth = window.innerWidth;
  window.addEventListener("resize", function () {
    if (window.innerWidth === lastWidth) { return; }
    lastWidth = window.innerWidth;
    clearTimeout(timer);
    timer = setTimeout(drawAll, 150);
  });
})();
