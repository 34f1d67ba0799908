/*
 * deyehard front-end glue (no framework, no build step beyond a copy).
 *
 * Loaded from <head> without `defer`, so the theme is applied before the body is painted.
 * Everything else waits for the DOM. No inline script anywhere: the CSP is `script-src 'self'`.
 *
 * - Theme: DaisyUI `light`/`dark`. Without a stored choice, <html> has no data-theme and the
 *   CSS follows prefers-color-scheme; the toggle stores "light"/"dark" in localStorage.
 * - CSRF: every HTMX request carries <meta name="csrf-token"> as the X-CSRF-Token header.
 * - Charts: elements with data-chart="power" or data-chart="energy" are drawn with uPlot,
 *   from JSON fetched from data-series-url, from a <script type="application/json"> child, or
 *   from a data-chart-json attribute (for content HTMX swaps in, which loses its scripts):
 *     { "timestamps": [unix seconds, ...],
 *       "series": [{ "label": "AC power", "unit": "W", "values": [number|null, ...] }, ...],
 *       "stacked": false,            // optional: stack the series (summary over inverters)
 *       "bucket": "hour" }           // energy only, optional: hour | day | month
 *   Optional attributes: data-tz (IANA zone; else the nearest ancestor's data-tz, else the
 *   browser's), data-height (px, default 300), data-refresh (seconds, with data-series-url).
 *   A chart with both a JSON child and data-series-url is drawn from the child at once and
 *   then refreshed from the URL. A series with "total": true is drawn on top of a stacked
 *   chart without being stacked itself.
 * - Ranges: with data-range (seconds back from now), or data-from / data-to (dates or times),
 *   and data-metric, the URL is queried with from, to, metric and points (what the chart's
 *   width can show). [data-chart-controls="<chart id>"] groups hold [data-range] and
 *   [data-metric] buttons and a [data-range-form] with `from` / `to` date inputs.
 *   The chart element says how far it got in data-chart-state: loading, ready, empty, failed.
 */
(function () {
  "use strict";

  var root = document.documentElement;
  var THEME_KEY = "deyehard-theme";
  var charts = []; // { el, kind, json, u, timer }

  /* ---------- theme ---------- */

  function storedTheme() {
    try {
      var t = window.localStorage.getItem(THEME_KEY);
      return t === "light" || t === "dark" ? t : null;
    } catch (e) {
      return null; // storage disabled: follow the system
    }
  }

  function currentTheme() {
    var t = root.getAttribute("data-theme");
    if (t === "light" || t === "dark") return t;
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function toggleTheme() {
    var next = currentTheme() === "dark" ? "light" : "dark";
    root.setAttribute("data-theme", next);
    try {
      window.localStorage.setItem(THEME_KEY, next);
    } catch (e) {
      /* the choice then lasts for this page only */
    }
    redrawAll();
  }

  var initial = storedTheme();
  if (initial) root.setAttribute("data-theme", initial);

  /* ---------- CSRF header on HTMX requests ---------- */

  document.addEventListener("htmx:configRequest", function (evt) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && meta.content) evt.detail.headers["X-CSRF-Token"] = meta.content;
  });

  /* ---------- formatting ---------- */

  function lang() {
    return root.lang || "en";
  }

  var TEXT = {
    en: { failed: "The chart data could not be loaded.", empty: "No data for this period.", time: "Time", period: "Period" },
    de: {
      failed: "Die Diagrammdaten konnten nicht geladen werden.",
      empty: "Keine Daten für diesen Zeitraum.",
      time: "Zeit",
      period: "Zeitraum",
    },
  };

  function text(key) {
    return (TEXT[lang().slice(0, 2)] || TEXT.en)[key];
  }

  /** `digits` decimals; axis labels (`short`) drop trailing zeros: 1.25 kW, 1.5 kW, 2 kW. */
  function number(v, digits, short) {
    var min = short ? 0 : digits;
    return new Intl.NumberFormat(lang(), { maximumFractionDigits: digits, minimumFractionDigits: min }).format(v);
  }

  /** Formats a value with its unit, switching W→kW→MW and Wh→kWh→MWh. */
  function formatValue(v, unit, short) {
    if (v == null || !isFinite(v)) return "–";
    if (unit === "W" || unit === "Wh") {
      var a = Math.abs(v);
      if (a >= 1e6) return number(v / 1e6, 2, short) + " M" + unit;
      if (a >= 1e3) return number(v / 1e3, 2, short) + " k" + unit;
      return number(v, 0, short) + " " + unit;
    }
    return number(v, 1, short) + (unit ? " " + unit : "");
  }

  function validZone(tz) {
    if (!tz) return undefined;
    try {
      new Intl.DateTimeFormat("en", { timeZone: tz });
      return tz;
    } catch (e) {
      return undefined; // unknown zone: the browser's own
    }
  }

  function zoneOf(el) {
    var holder = el.closest("[data-tz]");
    return validZone(holder ? holder.getAttribute("data-tz") : null);
  }

  function dateFormat(tz, options) {
    options.timeZone = tz;
    var f = new Intl.DateTimeFormat(lang(), options);
    return function (ts) {
      return f.format(new Date(ts * 1000));
    };
  }

  /* ---------- colours from the DaisyUI theme ---------- */

  var probe = null;

  /** Any CSS colour (DaisyUI uses oklch) as rgba() with the given alpha, via a 1×1 canvas. */
  function withAlpha(color, alpha) {
    if (!probe) probe = document.createElement("canvas").getContext("2d", { willReadFrequently: true });
    probe.clearRect(0, 0, 1, 1);
    probe.fillStyle = "#000";
    probe.fillStyle = color;
    probe.fillRect(0, 0, 1, 1);
    var p = probe.getImageData(0, 0, 1, 1).data;
    return "rgba(" + p[0] + "," + p[1] + "," + p[2] + "," + alpha + ")";
  }

  var PALETTE = ["primary", "secondary", "accent", "info", "success", "warning", "error"];

  function themeColors(el) {
    var css = window.getComputedStyle(el);
    var pick = function (name) {
      return css.getPropertyValue("--color-" + name).trim() || "#888";
    };
    var text = pick("base-content");
    return {
      text: withAlpha(text, 0.8),
      grid: withAlpha(text, 0.1),
      series: PALETTE.map(pick),
    };
  }

  /* ---------- data ---------- */

  function isValues(a, n) {
    return Array.isArray(a) && a.length === n && a.every(function (v) {
      return v === null || (typeof v === "number" && isFinite(v));
    });
  }

  /** Checks the JSON shape; returns null when it is unusable. */
  function parseSeries(json) {
    if (!json || !Array.isArray(json.timestamps) || !Array.isArray(json.series)) return null;
    var n = json.timestamps.length;
    var ok = json.timestamps.every(function (t) {
      return typeof t === "number" && isFinite(t);
    });
    if (!ok || json.series.length === 0) return null;
    for (var i = 0; i < json.series.length; i++) {
      if (!isValues(json.series[i].values, n)) return null;
    }
    return json;
  }

  /** Running sums for stacking: a gap stays a gap only where every series is missing. Totals
   *  are drawn as they are. */
  function stackValues(series) {
    var n = series[0].values.length;
    var sum = new Array(n).fill(null);
    return series.map(function (s) {
      if (s.total) return s.values;
      return s.values.map(function (v, i) {
        if (v != null) sum[i] = (sum[i] || 0) + v;
        return sum[i];
      });
    });
  }

  function plotValues(json) {
    return json.stacked ? stackValues(json.series) : json.series.map(function (s) {
      return s.values;
    });
  }

  function stackBands(json) {
    if (!json.stacked) return [];
    var bands = [];
    var below = null;
    json.series.forEach(function (s, i) {
      if (s.total) return;
      if (below !== null) bands.push({ series: [i + 1, below + 1] }); // fill down to the one below
      below = i;
    });
    return bands;
  }

  /* ---------- uPlot options ---------- */

  function sizeOf(el) {
    var width = Math.max(el.clientWidth, 200);
    var height = parseInt(el.getAttribute("data-height"), 10) || 300;
    if (width < 500) height = Math.round(height * 0.75); // phones: keep the plot in view
    return { width: width, height: height };
  }

  function ySeries(json, colors, paths) {
    return json.series.map(function (s, i) {
      var color = colors.series[i % colors.series.length];
      var filled = (json.stacked && !s.total) || json.series.length === 1;
      if (s.total) color = colors.text;
      var opts = {
        label: s.label || "",
        stroke: color,
        width: 2,
        dash: s.total ? [6, 4] : undefined,
        fill: withAlpha(color, filled ? 0.2 : 0),
        spanGaps: false, // a null is a gap and is drawn as one
        // the read-out shows the series' own value, not the stacked sum
        value: function (u, v, si, idx) {
          return formatValue(idx == null ? null : s.values[idx], s.unit);
        },
      };
      if (paths && !s.total) {
        opts.paths = paths;
        opts.width = 1;
        opts.fill = withAlpha(color, 0.75);
        opts.points = { show: false };
      }
      return opts;
    });
  }

  function yAxis(json, colors) {
    var unit = json.series[0].unit;
    return {
      stroke: colors.text,
      grid: { stroke: colors.grid },
      ticks: { stroke: colors.grid },
      size: 70,
      values: function (u, splits) {
        return splits.map(function (v) {
          return formatValue(v, unit, true);
        });
      },
    };
  }

  function yRange(u, min, max) {
    if (min == null || max == null) return [0, 1];
    var lo = Math.min(0, min);
    var hi = max > lo ? max : lo + 1;
    return [lo, hi + (hi - lo) * 0.05];
  }

  var DAY = 86400;

  function zonedDate(tz) {
    return function (ts) {
      return tz ? uPlot.tzDate(new Date(ts * 1000), tz) : new Date(ts * 1000);
    };
  }

  function timeTicks(tz) {
    var local = zonedDate(tz);
    var time = dateFormat(tz, { hour: "2-digit", minute: "2-digit" });
    var day = dateFormat(tz, { day: "numeric", month: "short" });
    var month = dateFormat(tz, { month: "short", year: "numeric" });
    return function (u, splits, axisIdx, space, incr) {
      return splits.map(function (ts) {
        if (incr >= 28 * DAY) return month(ts);
        if (incr >= DAY) return day(ts);
        var d = local(ts);
        return d.getHours() === 0 && d.getMinutes() === 0 ? day(ts) : time(ts); // midnight: the day
      });
    };
  }

  function powerOpts(el, json) {
    var tz = zoneOf(el);
    var colors = themeColors(el);
    var size = sizeOf(el);
    var full = dateFormat(tz, { dateStyle: "medium", timeStyle: "short" });
    return {
      width: size.width,
      height: size.height,
      tzDate: zonedDate(tz), // ticks fall on the user's hours and midnights
      cursor: { drag: { x: true, y: false } }, // drag to zoom, double-click to reset
      scales: { x: { time: true }, y: { range: yRange } },
      bands: stackBands(json),
      series: [{
        label: text("time"),
        value: function (u, ts) { return ts == null ? "–" : full(ts); },
      }].concat(ySeries(json, colors)),
      axes: [
        {
          stroke: colors.text,
          grid: { stroke: colors.grid },
          ticks: { stroke: colors.grid },
          space: 70, // room for "06:00 AM"
          values: timeTicks(tz),
        },
        yAxis(json, colors),
      ],
    };
  }

  function bucketOf(json) {
    if (json.bucket === "hour" || json.bucket === "day" || json.bucket === "month") return json.bucket;
    var t = json.timestamps;
    var step = t.length > 1 ? t[1] - t[0] : DAY;
    return step < 2 * 3600 ? "hour" : step < 27 * DAY ? "day" : "month";
  }

  function energyOpts(el, json) {
    var tz = zoneOf(el);
    var colors = themeColors(el);
    var size = sizeOf(el);
    var bucket = bucketOf(json);
    var tick = dateFormat(tz, {
      hour: { hour: "2-digit", minute: "2-digit" },
      day: { day: "numeric", month: "short" },
      month: { month: "short", year: "2-digit" },
    }[bucket]);
    var full = dateFormat(tz, {
      hour: { dateStyle: "medium", timeStyle: "short" },
      day: { weekday: "short", day: "numeric", month: "short", year: "numeric" },
      month: { month: "long", year: "numeric" },
    }[bucket]);
    var stamps = json.timestamps;
    var n = stamps.length;
    return {
      width: size.width,
      height: size.height,
      cursor: { drag: { x: false, y: false } },
      // bars sit on bucket indices, so DST days and short months stay evenly spaced
      scales: { x: { time: false, range: function () { return [-0.5, n - 0.5]; } }, y: { range: yRange } },
      bands: stackBands(json),
      series: [{
        label: text("period"),
        value: function (u, i) { return i == null ? "–" : full(stamps[i]); },
      }].concat(ySeries(json, colors, uPlot.paths.bars({ size: [0.7, 80], align: 0 }))),
      axes: [
        {
          stroke: colors.text,
          grid: { show: false },
          ticks: { stroke: colors.grid },
          // every bucket, or every 2nd, 3rd… one when labels would collide
          space: 48,
          incrs: [1, 2, 3, 4, 6, 8, 12, 24],
          values: function (u, splits) {
            return splits.map(function (i) { return i >= 0 && i < n && i % 1 === 0 ? tick(stamps[i]) : ""; });
          },
        },
        yAxis(json, colors),
      ],
    };
  }

  function uplotData(kind, json) {
    var x = kind === "energy" ? json.timestamps.map(function (_, i) { return i; }) : json.timestamps;
    return [x].concat(plotValues(json));
  }

  /* ---------- chart lifecycle ---------- */

  // Charts follow their container's width (uPlot itself only sets a fixed size).
  var resizer = new ResizeObserver(function (entries) {
    entries.forEach(function (entry) {
      var rec = charts.filter(function (r) { return r.el === entry.target; })[0];
      if (!rec || !rec.u) return;
      var size = sizeOf(rec.el);
      if (size.width !== rec.u.width || size.height !== rec.u.height) rec.u.setSize(size);
    });
  });

  function showMessage(el, message) {
    var p = document.createElement("p");
    p.className = "chart-message text-sm opacity-70 py-8 text-center";
    p.textContent = message; // never innerHTML: labels may come from devices
    el.appendChild(p);
  }

  function clearChart(rec) {
    if (rec.u) rec.u.destroy();
    rec.u = null;
    rec.el.querySelectorAll(".chart-message").forEach(function (m) { m.remove(); });
  }

  function xZoom(rec) {
    var u = rec.u;
    var xs = rec.json && rec.json.timestamps;
    if (!u || rec.kind === "energy" || !xs || xs.length === 0) return null;
    var min = u.scales.x.min;
    var max = u.scales.x.max;
    return min > xs[0] || max < xs[xs.length - 1] ? { min: min, max: max } : null;
  }

  function setState(el, state) {
    el.setAttribute("data-chart-state", state);
  }

  function draw(rec) {
    var zoom = xZoom(rec);
    clearChart(rec);
    if (typeof window.uPlot !== "function") return failed(rec.el);
    var json = parseSeries(rec.json);
    if (!json) return failed(rec.el);
    if (json.timestamps.length === 0) {
      setState(rec.el, "empty");
      return showMessage(rec.el, text("empty"));
    }
    var opts = rec.kind === "energy" ? energyOpts(rec.el, json) : powerOpts(rec.el, json);
    rec.u = new uPlot(opts, uplotData(rec.kind, json), rec.el);
    if (zoom) rec.u.setScale("x", zoom);
    setState(rec.el, "ready");
  }

  function failed(el) {
    setState(el, "failed");
    showMessage(el, text("failed"));
  }

  /** New data for a live chart; keeps the user's zoom on power charts. */
  function update(rec, json) {
    var u = rec.u;
    var old = rec.json;
    if (!u || !parseSeries(json) || rec.kind === "energy" || json.timestamps.length === 0 ||
        json.series.length !== old.series.length) {
      rec.json = json;
      return draw(rec);
    }
    var zoomed = xZoom(rec) !== null;
    rec.json = json;
    u.setData(uplotData(rec.kind, json), !zoomed);
  }

  function redrawAll() {
    charts.forEach(function (rec) {
      if (rec.u) draw(rec);
    });
  }

  function fetchJson(url) {
    // live data: always ask the server (no heuristic caching of the JSON)
    var init = { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-cache" };
    return window.fetch(url, init)
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      });
  }

  /** The chart data in a <script type="application/json"> child, or in data-chart-json (content
   *  swapped in by HTMX loses its <script> elements). */
  function embeddedJson(el) {
    var block = el.querySelector('script[type="application/json"]');
    var text = block ? block.textContent : el.getAttribute("data-chart-json");
    if (!text) return null;
    try {
      return JSON.parse(text);
    } catch (e) {
      return null;
    }
  }

  /* ---------- series URLs: ranges, metrics, points ---------- */

  var DEVICE_CLOCK_AHEAD = 10 * 60 * 1000; // device clocks may run ahead of ours

  /** How many points the chart can show: about one per device pixel, within 100…2000. */
  function pointsFor(el) {
    var px = Math.round(Math.max(el.clientWidth, 200) * (window.devicePixelRatio || 1));
    return Math.min(2000, Math.max(100, px));
  }

  /** data-series-url with the chart's range, metric and points; the bare URL without them. */
  function seriesUrl(el) {
    var base = el.getAttribute("data-series-url");
    var from = el.getAttribute("data-from");
    var to = el.getAttribute("data-to");
    var range = parseInt(el.getAttribute("data-range"), 10);
    var metric = el.getAttribute("data-metric");
    var params = [];
    if (from && to) {
      params.push("from=" + encodeURIComponent(from), "to=" + encodeURIComponent(to));
    } else if (range > 0) {
      var now = Date.now();
      params.push("from=" + new Date(now - range * 1000).toISOString());
      params.push("to=" + new Date(now + DEVICE_CLOCK_AHEAD).toISOString());
    }
    if (metric) params.push("metric=" + encodeURIComponent(metric));
    if (params.length === 0) return base;
    params.push("points=" + pointsFor(el));
    return base + (base.indexOf("?") < 0 ? "?" : "&") + params.join("&");
  }

  function startRefresh(rec) {
    var seconds = parseInt(rec.el.getAttribute("data-refresh"), 10);
    if (!(seconds >= 5) || !rec.el.getAttribute("data-series-url")) return;
    rec.timer = window.setInterval(function () {
      if (!rec.el.isConnected) return forget(rec);
      if (document.visibilityState === "hidden" || rec.loading) return;
      if (rec.el.getAttribute("data-from")) return; // a fixed range: nothing new to see
      fetchJson(seriesUrl(rec.el)).then(function (json) { update(rec, json); }, function () { /* keep the old data */ });
    }, seconds * 1000);
  }

  /** Loads the chart again for its current range / metric (the zoom starts over). */
  function reload(el) {
    var rec = charts.filter(function (r) { return r.el === el; })[0];
    if (!rec) return;
    var ticket = (rec.ticket || 0) + 1;
    rec.ticket = ticket;
    rec.loading = true;
    setState(el, "loading");
    fetchJson(seriesUrl(el)).then(function (json) {
      if (rec.ticket !== ticket) return; // a newer request is on its way
      rec.loading = false;
      if (rec.u) rec.u.destroy();
      rec.u = null;
      rec.json = json;
      draw(rec);
    }, function () {
      if (rec.ticket !== ticket) return;
      rec.loading = false;
      setState(el, "failed");
    });
  }

  function forget(rec) {
    if (rec.timer) window.clearInterval(rec.timer);
    if (rec.u) rec.u.destroy();
    resizer.unobserve(rec.el);
    charts = charts.filter(function (r) { return r !== rec; });
  }

  /** Draws `json` into `el` (replacing an earlier chart there) and tracks it. */
  function create(el, kind, json) {
    var old = charts.filter(function (r) { return r.el === el; })[0];
    if (old) forget(old);
    var rec = { el: el, kind: kind, json: json, u: null, timer: null };
    charts.push(rec);
    draw(rec);
    resizer.observe(el);
    return rec;
  }

  function initChart(el) {
    if (el.hasAttribute("data-chart-ready")) return;
    el.setAttribute("data-chart-ready", "");
    var kind = el.getAttribute("data-chart") === "energy" ? "energy" : "power";
    var url = el.getAttribute("data-series-url");
    var embedded = embeddedJson(el);
    if (embedded || !url) return startRefresh(create(el, kind, embedded));
    setState(el, "loading");
    fetchJson(seriesUrl(el)).then(function (json) {
      startRefresh(create(el, kind, json));
    }, function () {
      failed(el);
    });
  }

  /* ---------- chart controls ---------- */

  function press(group, selector, button) {
    group.querySelectorAll(selector).forEach(function (b) {
      var on = b === button;
      b.classList.toggle("btn-active", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    });
  }

  /** The chart a control belongs to, and the controls groups of that chart. */
  function controlled(node) {
    var group = node.closest("[data-chart-controls]");
    if (!group) return null;
    var id = group.getAttribute("data-chart-controls");
    var chart = document.getElementById(id);
    if (!chart) return null;
    var groups = document.querySelectorAll('[data-chart-controls="' + id + '"]');
    return { chart: chart, groups: Array.prototype.slice.call(groups) };
  }

  function onControlClick(button) {
    var target = controlled(button);
    if (!target) return;
    if (button.hasAttribute("data-range")) {
      target.chart.setAttribute("data-range", button.getAttribute("data-range"));
      target.chart.removeAttribute("data-from");
      target.chart.removeAttribute("data-to");
      target.groups.forEach(function (g) { press(g, "[data-range]", button); });
    } else {
      target.chart.setAttribute("data-metric", button.getAttribute("data-metric"));
      target.groups.forEach(function (g) { press(g, "[data-metric]", button); });
    }
    reload(target.chart);
  }

  function onRangeForm(form) {
    var target = controlled(form);
    if (!target) return;
    var from = form.elements.from && form.elements.from.value;
    var to = form.elements.to && form.elements.to.value;
    if (!from || !to) return;
    if (to < from) { var t = from; from = to; to = t; }
    target.chart.setAttribute("data-from", from); // local dates: the server reads them in the user's zone
    target.chart.setAttribute("data-to", to);
    target.groups.forEach(function (g) { press(g, "[data-range]", null); });
    reload(target.chart);
  }

  function initCharts(scope) {
    if (scope.matches && scope.matches("[data-chart]")) initChart(scope);
    scope.querySelectorAll("[data-chart]").forEach(initChart);
  }

  /* ---------- wiring ---------- */

  document.addEventListener("click", function (evt) {
    if (!evt.target.closest) return;
    if (evt.target.closest("[data-theme-toggle]")) return toggleTheme();
    var button = evt.target.closest("[data-chart-controls] [data-range], [data-chart-controls] [data-metric]");
    if (button && button.tagName === "BUTTON") onControlClick(button);
  });

  document.addEventListener("submit", function (evt) {
    var form = evt.target.closest && evt.target.closest("[data-chart-controls] form[data-range-form]");
    if (!form) return;
    evt.preventDefault();
    onRangeForm(form);
  });

  document.addEventListener("DOMContentLoaded", function () {
    initCharts(document);
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () {
      if (!storedTheme()) redrawAll(); // the CSS already switched; the canvases follow
    });
  });

  document.addEventListener("htmx:load", function (evt) {
    initCharts(evt.detail.elt);
  });

  document.addEventListener("htmx:beforeCleanupElement", function (evt) {
    charts.filter(function (rec) { return evt.detail.elt.contains(rec.el); }).forEach(forget);
  });

  window.deyehard = {
    /** Draws a time-series line chart into `el` from `data` (the JSON shape above). */
    powerChart: function (el, data) { return create(el, "power", data).u; },
    /** Draws energy bars (one per hour/day/month bucket) into `el`. */
    energyBars: function (el, data) { return create(el, "energy", data).u; },
    /** Finds and draws every [data-chart] element under `scope`. */
    initCharts: initCharts,
    /** Loads the chart in `el` again for its data-range / data-from / data-to / data-metric. */
    reload: reload,
    formatValue: formatValue,
  };
})();
