/* Draws the dashboard charts with the vendored uPlot from the JSON the server embedded in
   <script id="chart-data" type="application/json">. Each chart container gets
   data-rendered="true" once drawn, with data-points set to the number of plotted values. */
(function () {
  "use strict";
  var node = document.getElementById("chart-data");
  if (!node || typeof uPlot === "undefined") { return; }
  var charts = JSON.parse(node.textContent);

  function fmt(kind, currency) {
    return function (u, v) {
      if (v === null || v === undefined) { return "–"; }
      if (kind === "money") { return currency + " " + v.toLocaleString(undefined, {maximumFractionDigits: 0}); }
      if (kind === "percent") { return (v * 100).toFixed(1) + "%"; }
      return v.toLocaleString();
    };
  }

  charts.forEach(function (spec) {
    var el = document.getElementById(spec.id);
    if (!el) { return; }
    var points = 0;
    var data = [spec.x];
    var series = [{}];
    var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({size: [0.6, 40]}) : null;
    spec.series.forEach(function (s) {
      data.push(s.values);
      s.values.forEach(function (v) { if (v !== null) { points += 1; } });
      var opts = {label: s.label, stroke: s.color, width: 2, value: fmt(spec.format, spec.currency)};
      if (s.kind === "bars" && bars) { opts.paths = bars; opts.fill = s.color; }
      if (s.kind === "dash") { opts.dash = [6, 4]; }
      if (s.kind === "band") { opts.dash = [2, 3]; opts.width = 1; }
      series.push(opts);
    });
    var width = Math.max(el.clientWidth || 0, 320);
    new uPlot({
      title: spec.title,
      width: width,
      height: 240,
      series: series,
      scales: {x: {time: true}},
      axes: [{}, {values: function (u, vals) { return vals.map(function (v) { return fmt(spec.format, spec.currency)(u, v); }); }, size: 80}]
    }, data, el);
    el.setAttribute("data-rendered", "true");
    el.setAttribute("data-points", String(points));
  });
})();
