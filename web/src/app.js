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
 *   from JSON fetched from data-series-url or from a <script type="application/json"> child:
 *     { "timestamps": [unix seconds, ...],
 *       "series": [{ "label": "AC power", "unit": "W", "values": [number|null, ...] }, ...],
 *       "stacked": false,            // optional: stack the series (summary over inverters)
 *       "bucket": "hour" }           // energy only, optional: hour | day | month
 *   Optional attributes: data-tz (IANA zone; else the nearest ancestor's data-tz, else the
 *   browser's), data-height (px, default 300), data-refresh (seconds, with data-series-url).
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

  /** Running sums for stacking: a gap stays a gap only where every series is missing. */
  function stackValues(series) {
    var n = series[0].values.length;
    var sum = new Array(n).fill(null);
    return series.map(function (s) {
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
    return json.series.slice(1).map(function (_, i) {
      return { series: [i + 2, i + 1] }; // fill each series down to the one below it
    });
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
      var filled = json.stacked || json.series.length === 1;
      var opts = {
        label: s.label || "",
        stroke: color,
        width: 2,
        fill: withAlpha(color, filled ? 0.2 : 0),
        spanGaps: false, // a null is a gap and is drawn as one
        // the read-out shows the series' own value, not the stacked sum
        value: function (u, v, si, idx) {
          return formatValue(idx == null ? null : s.values[idx], s.unit);
        },
      };
      if (paths) {
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

  function draw(rec) {
    var zoom = xZoom(rec);
    clearChart(rec);
    if (typeof window.uPlot !== "function") return showMessage(rec.el, text("failed"));
    var json = parseSeries(rec.json);
    if (!json) return showMessage(rec.el, text("failed"));
    if (json.timestamps.length === 0) return showMessage(rec.el, text("empty"));
    var opts = rec.kind === "energy" ? energyOpts(rec.el, json) : powerOpts(rec.el, json);
    rec.u = new uPlot(opts, uplotData(rec.kind, json), rec.el);
    if (zoom) rec.u.setScale("x", zoom);
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

  function embeddedJson(el) {
    var block = el.querySelector('script[type="application/json"]');
    if (!block) return null;
    try {
      return JSON.parse(block.textContent);
    } catch (e) {
      return null;
    }
  }

  function startRefresh(rec, url) {
    var seconds = parseInt(rec.el.getAttribute("data-refresh"), 10);
    if (!(seconds >= 5)) return;
    rec.timer = window.setInterval(function () {
      if (!rec.el.isConnected) return forget(rec);
      if (document.visibilityState === "hidden") return;
      fetchJson(url).then(function (json) { update(rec, json); }, function () { /* keep the old data */ });
    }, seconds * 1000);
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
    if (!url) return create(el, kind, embeddedJson(el));
    fetchJson(url).then(function (json) {
      startRefresh(create(el, kind, json), url);
    }, function () {
      showMessage(el, text("failed"));
    });
  }

  function initCharts(scope) {
    if (scope.matches && scope.matches("[data-chart]")) initChart(scope);
    scope.querySelectorAll("[data-chart]").forEach(initChart);
  }

  /* ---------- wiring ---------- */

  document.addEventListener("click", function (evt) {
    if (evt.target.closest && evt.target.closest("[data-theme-toggle]")) toggleTheme();
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
    formatValue: formatValue,
  };
})();
