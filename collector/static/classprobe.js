/* classprobe pages: draws a room's school-day timeline with uPlot (served from
   /static/vendor/uplot/, no CDN) and opens every <details> for printing.

   The page carries no inline script: an element with data-timeline="<JSON URL>" holds
   one <div class="chart" data-chart="latency|bandwidth|wifi"> per chart. Every chart has
   a text summary and a data table in the page itself, so nothing is lost without
   JavaScript or to a screen reader. Colours and their contrast: see classprobe.css. */
(function () {
  "use strict";

  var ROOM_COLOURS = ["#0b3d91", "#b00020", "#1b5e20", "#6a1b9a", "#8a4b00"];
  var DEVICE_COLOUR = "#595959";
  var PERIOD_FILL = "#e8eefc";
  var PERIOD_TEXT = "#1b1b1b";
  var HEIGHT = 300;
  var PAD_S = 30 * 60;

  function say(el, text) {
    var p = document.createElement("p");
    p.className = "nojs-note";
    p.setAttribute("role", "status");
    p.textContent = text;
    el.replaceChildren(p);
  }

  function fmt(v, unit) {
    if (v === null || v === undefined) { return "–"; }
    var n = Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
    return unit === "count" ? n : n + " " + unit;
  }

  /* One x axis for every line of the chart: the union of their bin times. */
  function align(lines) {
    var seen = {};
    lines.forEach(function (line) {
      line.pairs.forEach(function (p) { seen[p[0]] = true; });
    });
    var xs = Object.keys(seen).map(Number).sort(function (a, b) { return a - b; });
    var data = [xs];
    lines.forEach(function (line) {
      var at = {};
      line.pairs.forEach(function (p) { at[p[0]] = p[1]; });
      data.push(xs.map(function (x) { return x in at ? at[x] : null; }));
    });
    return data;
  }

  function xRange(day, xs) {
    var lo = day.end_ts, hi = day.start_ts;
    day.periods.forEach(function (p) { lo = Math.min(lo, p.start_ts); hi = Math.max(hi, p.end_ts); });
    if (xs.length) { lo = Math.min(lo, xs[0]); hi = Math.max(hi, xs[xs.length - 1] + day.bin_s); }
    if (lo >= hi) { return [day.start_ts, day.end_ts]; }
    return [Math.max(day.start_ts, lo - PAD_S), Math.min(day.end_ts, hi + PAD_S)];
  }

  function shadePeriods(day) {
    return function (u) {
      var ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
      ctx.save();
      ctx.font = Math.round(12 * devicePixelRatio) + "px system-ui, sans-serif";
      ctx.textBaseline = "top";
      day.periods.forEach(function (p) {
        var x0 = u.valToPos(p.start_ts, "x", true), x1 = u.valToPos(p.end_ts, "x", true);
        var left = Math.max(x0, u.bbox.left), right = Math.min(x1, u.bbox.left + u.bbox.width);
        if (right <= left) { return; }
        ctx.fillStyle = PERIOD_FILL;
        ctx.fillRect(left, top, right - left, height);
        ctx.fillStyle = PERIOD_TEXT;
        ctx.fillText(p.name, left + 3 * devicePixelRatio, top + 3 * devicePixelRatio);
      });
      ctx.restore();
    };
  }

  function chartLines(day, chart) {
    var lines = [];
    var colour = 0;
    day.series.forEach(function (s) {
      if (s.chart !== chart) { return; }
      lines.push({ label: s.label + " (room median)", unit: s.unit, pairs: s.room,
                   stroke: ROOM_COLOURS[colour++ % ROOM_COLOURS.length], width: 3, show: true });
      Object.keys(s.devices).forEach(function (agent) {
        lines.push({ label: s.key + " " + agent.slice(0, 8), unit: s.unit,
                     pairs: s.devices[agent], stroke: DEVICE_COLOUR, width: 1,
                     dash: [4, 4], show: chart !== "wifi" });
      });
    });
    return lines;
  }

  function draw(el, day) {
    var chart = el.getAttribute("data-chart");
    var lines = chartLines(day, chart).filter(function (l) { return l.pairs.length; });
    if (!lines.length) { say(el, "Nothing measured for this chart on this day."); return null; }
    var units = [];
    lines.forEach(function (l) { if (units.indexOf(l.unit) < 0) { units.push(l.unit); } });
    var data = align(lines);
    var range = xRange(day, data[0]);
    var scales = { x: { time: true, range: function () { return range; } } };
    var clock = uPlot.fmtDate("{HH}:{mm}");
    var local = function (ts) { return clock(uPlot.tzDate(new Date(ts * 1e3), day.timezone)); };
    var axes = [{ stroke: "#1b1b1b", grid: { stroke: "#dddddd" },
                  values: function (u, splits) { return splits.map(local); } }];
    units.forEach(function (unit, i) {
      scales[unit] = { auto: true, range: function (u, lo, hi) { return [0, hi > 0 ? hi * 1.1 : 1]; } };
      axes.push({ scale: unit, label: unit, side: i === 0 ? 3 : 1, stroke: "#1b1b1b",
                  grid: { show: i === 0, stroke: "#dddddd" }, size: 60 });
    });
    var series = [{ label: "Time (" + day.timezone + ")",
                    value: function (u, v) { return v === null ? "–" : local(v); } }].concat(lines.map(function (l) {
      return { label: l.label, scale: l.unit, stroke: l.stroke, width: l.width, dash: l.dash,
               show: l.show, spanGaps: false, points: { show: true, size: l.width + 4 },
               value: function (u, v) { return fmt(v, l.unit); } };
    }));
    var opts = {
      width: Math.max(320, el.clientWidth), height: HEIGHT, series: series,
      scales: scales, axes: axes, legend: { live: true },
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), day.timezone); },
      hooks: { drawClear: [shadePeriods(day)] }
    };
    el.replaceChildren();
    var plot = new uPlot(opts, data, el);
    keyboardLegend(plot);
    return plot;
  }

  /* The legend toggles a line on click; make each entry a button for the keyboard too. */
  function keyboardLegend(plot) {
    var rows = plot.root.querySelectorAll(".u-legend .u-series");
    Array.prototype.forEach.call(rows, function (row, i) {
      if (i === 0) { return; }  /* the time column */
      row.setAttribute("tabindex", "0");
      row.setAttribute("role", "button");
      row.setAttribute("aria-pressed", String(plot.series[i].show));
      row.addEventListener("keydown", function (ev) {
        if (ev.key !== "Enter" && ev.key !== " ") { return; }
        ev.preventDefault();
        plot.setSeries(i, { show: !plot.series[i].show });
      });
    });
    plot.hooks.setSeries = (plot.hooks.setSeries || []).concat([function (u, i) {
      if (i !== null && rows[i]) { rows[i].setAttribute("aria-pressed", String(u.series[i].show)); }
    }]);
  }

  function timelines() {
    var holder = document.querySelector("[data-timeline]");
    if (!holder) { return; }
    var charts = Array.prototype.slice.call(holder.querySelectorAll(".chart[data-chart]"));
    if (typeof uPlot === "undefined") {
      charts.forEach(function (el) { say(el, "The chart library did not load; the table below has every value."); });
      return;
    }
    fetch(holder.getAttribute("data-timeline"), { credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) { throw new Error("the collector answered " + r.status); }
        return r.json();
      })
      .then(function (day) {
        var plots = charts.map(function (el) { return draw(el, day); });
        var resize = null;
        window.addEventListener("resize", function () {
          clearTimeout(resize);
          resize = setTimeout(function () {
            plots.forEach(function (p, i) {
              if (p) { p.setSize({ width: Math.max(320, charts[i].clientWidth), height: HEIGHT }); }
            });
          }, 150);
        });
      })
      .catch(function (err) {
        charts.forEach(function (el) { say(el, "The chart could not be drawn (" + err.message + "); the table below has every value."); });
      });
  }

  /* Printing: open every <details> so its table is on paper, then restore. */
  var opened = [];
  window.addEventListener("beforeprint", function () {
    opened = Array.prototype.filter.call(document.querySelectorAll("details:not([open])"),
      function (d) { d.open = true; return true; });
  });
  window.addEventListener("afterprint", function () {
    opened.forEach(function (d) { d.open = false; });
    opened = [];
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", timelines);
  } else {
    timelines();
  }
}());
