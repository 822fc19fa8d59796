/* report.html's charts, drawn with uPlot from the JSON payload in #sd-data.
 *
 * The timeline is a stack of charts on one time axis (seconds since the run started) with
 * cursors and zoom synced; faults are shaded bands, criterion flips vertical lines. Each session
 * group gets small multiples of its own columns and histograms of its trends. At the end the page
 * records how many charts drew and how much ink each put down (document.body.dataset), which the
 * browser test reads.
 */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("sd-data").textContent);
  var T = D.timeline.t;
  var COLS = D.timeline.columns;
  var UNITS = D.units || {};
  var TYPES = D.types || {};
  var SPANS = D.fault_spans || [];
  var FLIPS = D.flips || [];
  var FAULT_GROUPS = D.fault_groups || {};  // fault id -> the groups it reached
  var STEP = (D.sample_interval || 1) * (D.timeline.stride || 1);
  var PALETTE = ["#2d5bd7", "#e8590c", "#1f9d55", "#9c36b5", "#d6336c", "#0c8599", "#f08c00",
                 "#5c940d", "#495057", "#862e9c"];
  var SOURCE_COLOR = { schedule: "208,49,45", key: "156,54,181", api: "45,91,215",
                       replay: "12,133,153", observed: "232,89,12" };
  // Tick steps for the time axis, in seconds: round clock values at every zoom level.
  var TIME_INCRS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800,
                    3600, 7200, 10800, 21600, 43200, 86400];
  var charts = [];
  var timelineCharts = [];

  function parseName(name) {
    var p = name.split("|");
    return { name: name, scope: p[0], metric: p[1], stat: p[2] };
  }
  var NAMES = Object.keys(COLS).map(parseName);

  /* What a column shows and in which unit: counters become rates, fractions percentages. */
  function display(n) {
    var unit = UNITS[n.metric] || "";
    if (n.stat === "share") return { unit: "%", scale: 100 };
    if (n.stat === "rate" && TYPES[n.metric] === "rate") return { unit: "%", scale: 100 };
    if (n.stat === "rate") return { unit: (unit === "count" || unit === "" ? "" : unit) + "/s", scale: 1 };
    if (unit === "bytes") return { unit: "MB", scale: 1 / 1048576 };
    return { unit: unit, scale: 1 };
  }

  function fmt(v, unit) {
    if (v == null || isNaN(v)) return "-";
    var a = Math.abs(v);
    var s = a >= 1000 ? v.toFixed(0) : a >= 100 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toPrecision(3);
    return s + (unit ? " " + unit : "");
  }

  /* Axis ticks: short, so a small multiple's axis never clips them. */
  function compact(v) {
    if (v == null) return "";
    var a = Math.abs(v);
    if (a >= 1e9) return +(v / 1e9).toFixed(1) + "G";
    if (a >= 1e6) return +(v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return +(v / 1e3).toFixed(0) + "k";
    if (a >= 1e3) return +(v / 1e3).toFixed(1) + "k";
    return String(+v.toPrecision(3));
  }

  function clock(secs) {
    var s = Math.max(0, secs);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = Math.round(s % 60);
    var mm = (h ? String(m).padStart(2, "0") : String(m)) + ":" + String(r).padStart(2, "0");
    return h ? h + ":" + mm : mm;
  }

  /* A line needs two points: draw the dots of a column that has only a few values. */
  function sparse(values) {
    var n = 0;
    for (var i = 0; i < values.length && n < 4; i++) if (values[i] != null) n++;
    return n < 4;
  }

  function label(n) {
    var stat = n.stat === "rate" && TYPES[n.metric] !== "rate" ? "/s" : n.stat;
    if (n.stat === "value") stat = "";
    return n.metric + (stat ? " " + stat : "");
  }

  /* Fault bands behind the series, criterion flips over them; labels on the first chart only. */
  function overlay(showLabels, group) {
    // A group's small multiples show only the faults that reached that group.
    var spans = group == null ? SPANS : SPANS.filter(function (f) {
      return (FAULT_GROUPS[f.id] || []).indexOf(group) >= 0;
    });
    return {
      hooks: {
        drawClear: [function (u) {
          var ctx = u.ctx, b = u.bbox;
          ctx.save();
          ctx.beginPath();
          ctx.rect(b.left, b.top, b.width, b.height);
          ctx.clip();
          spans.forEach(function (f) {
            var x0 = u.valToPos(f.start, "x", true);
            var end = f.end == null ? f.start : f.end;
            var x1 = Math.max(u.valToPos(end, "x", true), x0 + 2 * devicePixelRatio);
            ctx.fillStyle = "rgba(" + (SOURCE_COLOR[f.source] || "208,49,45") + ",0.14)";
            ctx.fillRect(x0, b.top, x1 - x0, b.height);
            ctx.fillStyle = "rgba(" + (SOURCE_COLOR[f.source] || "208,49,45") + ",0.7)";
            ctx.fillRect(x0, b.top, Math.max(1, devicePixelRatio), b.height);
          });
          ctx.restore();
        }],
        draw: [function (u) {
          var ctx = u.ctx, b = u.bbox;
          ctx.save();
          ctx.beginPath();
          ctx.rect(b.left, b.top, b.width, b.height);
          ctx.clip();
          FLIPS.forEach(function (f) {
            var x = u.valToPos(f.t, "x", true);
            ctx.strokeStyle = f.state === "pass" ? "#1f9d55" : f.state === "fail" ? "#d0312d" : "#8a94a6";
            ctx.lineWidth = 1.5 * devicePixelRatio;
            ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
            ctx.beginPath();
            ctx.moveTo(x, b.top);
            ctx.lineTo(x, b.top + b.height);
            ctx.stroke();
          });
          if (showLabels && spans.length <= 40) {
            ctx.setLineDash([]);
            ctx.font = 10 * devicePixelRatio + "px system-ui, sans-serif";
            var lastX = -1e9, row = 0;
            spans.forEach(function (f) {
              var x = u.valToPos(f.start, "x", true) + 3 * devicePixelRatio;
              row = x - lastX < 90 * devicePixelRatio ? (row + 1) % 4 : 0;
              lastX = x;
              ctx.fillStyle = "rgba(" + (SOURCE_COLOR[f.source] || "208,49,45") + ",1)";
              ctx.fillText("#" + f.id + " " + f.action + " (" + f.source + " → " + f.target + ")",
                           x, b.top + (12 + 12 * row) * devicePixelRatio);
            });
          }
          ctx.restore();
        }],
        setCursor: [function (u) {
          if (u.cursor.left == null || u.cursor.left < 0) return;
          var x = u.posToVal(u.cursor.left, "x");
          var hits = spans.filter(function (f) {
            var end = f.end == null ? f.start + STEP : Math.max(f.end, f.start + STEP);
            return x >= f.start - STEP / 2 && x <= end;
          });
          var flips = FLIPS.filter(function (f) { return Math.abs(f.t - x) <= STEP; });
          var text = "at " + clock(x) + ": " + (hits.length ? hits.map(function (f) {
            return "#" + f.id + " " + f.action + " from " + f.source + " on " + f.target + " (" +
              clock(f.start) + "–" + (f.end == null ? "?" : clock(f.end)) + ")";
          }).join("; ") : "no fault");
          if (flips.length) text += " | " + flips.map(function (f) { return f.name + " → " + f.state; }).join("; ");
          var el = document.getElementById("fault-hover");
          if (el) el.textContent = text;
        }],
      },
    };
  }

  /* Zoom one timeline chart and the others follow. */
  var zooming = false;
  function syncZoom(u, key) {
    if (key !== "x" || zooming) return;
    zooming = true;
    var min = u.scales.x.min, max = u.scales.x.max;
    timelineCharts.concat(charts.filter(function (c) { return c.__small; })).forEach(function (o) {
      if (o !== u && o.scales.x) o.setScale("x", { min: min, max: max });
    });
    zooming = false;
  }

  function makeChart(target, title, names, opts) {
    opts = opts || {};
    if (!names.length) return null;
    var scales = {};
    var series = [{ value: function (u, v) { return v == null ? "-" : clock(v); } }];
    var data = [T];
    var units = [];
    names.forEach(function (n, i) {
      var d = display(n);
      if (units.indexOf(d.unit) < 0) units.push(d.unit);
      var side = units.indexOf(d.unit);
      var key = "y" + side;
      scales[key] = scales[key] || { auto: true, range: function (u, lo, hi) {
        return [Math.min(0, lo), hi > 0 ? hi * 1.08 : 1];
      } };
      series.push({
        label: opts.small ? (n.stat === "value" ? n.metric : n.stat) : label(n),
        scale: key,
        stroke: PALETTE[i % PALETTE.length],
        width: opts.small ? 1 : 1.5,
        dash: n.stat === "p99" ? [5, 3] : undefined,
        spanGaps: false,
        points: { show: sparse(COLS[n.name]), size: 4 },
        value: (function (unit) { return function (u, v) { return fmt(v, unit); }; })(d.unit),
      });
      data.push(COLS[n.name].map(function (v) { return v == null ? null : v * d.scale; }));
    });
    var axes = [{ values: function (u, vals, i, space, incr) {
                    return vals.map(function (v) { return incr < 1 ? v.toFixed(incr < 0.5 ? 2 : 1) + "s" : clock(v); });
                  },
                  incrs: TIME_INCRS, size: opts.small ? 24 : 40,
                  font: opts.small ? "10px system-ui" : "11px system-ui" }];
    units.slice(0, 2).forEach(function (unit, side) {
      axes.push({
        scale: "y" + side, side: side ? 1 : 3, size: opts.small ? 40 : 60,
        font: opts.small ? "10px system-ui" : "11px system-ui",
        grid: { show: side === 0 },
        values: function (u, vals) { return vals.map(compact); },
        label: opts.small ? undefined : unit, labelSize: 14,
      });
    });
    var wrap = document.createElement("div");
    wrap.className = "chart";
    var head = document.createElement("div");
    head.className = "chart-title";
    head.textContent = title;
    wrap.appendChild(head);
    target.appendChild(wrap);
    var u = new uPlot({
      width: opts.width || Math.min(1340, document.body.clientWidth - 40),
      height: opts.height || 200,
      scales: Object.assign({ x: { time: false } }, scales),
      series: series,
      axes: axes,
      legend: { show: !opts.small, live: true },
      cursor: { sync: { key: "sd", setSeries: false }, drag: { x: true, y: false } },
      plugins: [overlay(!!opts.labels, opts.group)],
      hooks: { setScale: [syncZoom] },
    }, data, wrap);
    u.__title = title;
    u.__small = !!opts.small;
    charts.push(u);
    return u;
  }

  function pick(test) { return NAMES.filter(test); }
  function run(n) { return n.scope === "run"; }
  var NOT_THROUGHPUT = /fail|err|lost|crash|restart|abnormal|fault|drop|reconnect|status|probe|bytes/;

  var TIMELINE = [
    ["Throughput", pick(function (n) {
      return run(n) && n.stat === "rate" && TYPES[n.metric] === "counter" &&
        UNITS[n.metric] === "count" && !NOT_THROUGHPUT.test(n.metric);
    })],
    ["Latency p95 / p99", pick(function (n) {
      return run(n) && (n.stat === "p95" || n.stat === "p99") && UNITS[n.metric] === "ms" &&
        n.metric !== "console_loop_lag";
    })],
    ["Error rate", pick(function (n) {
      return run(n) && n.stat === "rate" && TYPES[n.metric] === "rate" && /fail|loss|error/.test(n.metric);
    })],
    ["Sessions up and reconnects", pick(function (n) {
      return run(n) && (n.stat === "share" || (n.metric === "ssh_reconnect_attempts" && n.stat === "rate"));
    })],
    ["PTY output rate", pick(function (n) {
      return run(n) && n.stat === "rate" && (n.metric === "pty_bytes" || n.metric === "ssh_pty_bytes" ||
        n.metric === "pty_lines");
    })],
    ["Console CPU and RSS", pick(function (n) {
      return run(n) && (n.metric === "console_cpu" || n.metric === "console_rss");
    })],
  ];

  var box = document.getElementById("timeline-charts");
  var first = true;
  TIMELINE.forEach(function (spec) {
    var u = makeChart(box, spec[0], spec[1], { labels: first, height: first ? 240 : 180 });
    if (u) { timelineCharts.push(u); first = false; }
  });
  if (!timelineCharts.length) {
    box.innerHTML = '<p class="empty">No samples yet: the timeline starts after the first sample interval.</p>';
  }

  /* Per group: one small chart per metric (p95 and p99 together), then its histograms. */
  (D.groups || []).forEach(function (g) {
    var el = document.querySelector('.group[data-group="' + CSS.escape(g.name) + '"]');
    if (!el) return;
    var multiples = el.querySelector(".multiples");
    var byMetric = {};
    NAMES.forEach(function (n) {
      if (n.scope !== g.name) return;
      (byMetric[n.metric] = byMetric[n.metric] || []).push(n);
    });
    var metrics = Object.keys(byMetric).sort();
    metrics.forEach(function (m) {
      var names = byMetric[m];
      var d = display(names[0]);
      makeChart(multiples, m + (d.unit ? " (" + d.unit + ")" : ""), names,
                { small: true, width: 260, height: 120, group: g.name });
    });
    if (!metrics.length) multiples.innerHTML = '<p class="empty">No samples for this group yet.</p>';
    var hists = (D.histograms || {})[g.name] || {};
    var hbox = el.querySelector(".histograms");
    var hnames = Object.keys(hists).sort();
    hnames.forEach(function (m) { histogram(hbox, m, hists[m]); });
    if (!hnames.length) hbox.innerHTML = '<p class="empty">No latency samples in this group.</p>';
  });

  function histogram(target, metric, h) {
    var mids = [], counts = h.counts;
    for (var i = 0; i < counts.length; i++) mids.push(i);
    var unit = UNITS[metric] || "";
    var edge = function (i) { return fmt(h.edges[Math.max(0, Math.min(h.edges.length - 1, i))], unit); };
    var wrap = document.createElement("div");
    wrap.className = "chart";
    var head = document.createElement("div");
    head.className = "chart-title";
    var total = counts.reduce(function (a, b) { return a + b; }, 0);
    head.textContent = metric + " (" + total + " samples, log bins)";
    wrap.appendChild(head);
    target.appendChild(wrap);
    var u = new uPlot({
      width: 420, height: 160,
      scales: { x: { time: false, range: [-0.5, counts.length - 0.5] } },
      series: [
        { value: function (u, v) { return v == null ? "-" : edge(v) + "–" + edge(v + 1); } },
        { label: "samples", fill: "rgba(45,91,215,0.55)", stroke: "#2d5bd7", width: 1,
          paths: uPlot.paths.bars({ size: [0.92, Infinity] }), points: { show: false } },
      ],
      axes: [
        { values: function (u, vals) { return vals.map(function (v) { return Number.isInteger(v) ? edge(v) : ""; }); },
          font: "10px system-ui", size: 26 },
        { font: "10px system-ui", size: 44, values: function (u, vals) { return vals.map(compact); } },
      ],
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
    }, [mids, counts], wrap);
    u.__title = "histogram " + metric;
    charts.push(u);
  }

  /* What the browser test reads: charts drawn, and coloured pixels inside each plot area. */
  function ink(u) {
    var b = u.bbox, ctx = u.ctx;
    if (b.width <= 0 || b.height <= 0) return 0;
    var px = ctx.getImageData(b.left, b.top, b.width, b.height).data, n = 0;
    for (var i = 0; i < px.length; i += 4) {
      var r = px[i], g = px[i + 1], bl = px[i + 2], a = px[i + 3];
      if (a > 120 && Math.max(r, g, bl) - Math.min(r, g, bl) > 60) n++;
    }
    return n;
  }
  setTimeout(function () {
    var inkless = [];
    charts.forEach(function (u) { if (ink(u) < 20) inkless.push(u.__title); });
    document.body.dataset.charts = String(charts.length);
    document.body.dataset.timelineCharts = String(timelineCharts.length);
    document.body.dataset.inkless = inkless.join(";");
    document.body.dataset.errors = (window.__sdErrors || []).join(";");
    document.body.dataset.ready = "1";
    window.__sdCharts = { all: charts, timeline: timelineCharts };  // for the browser test
  }, 50);
})();
