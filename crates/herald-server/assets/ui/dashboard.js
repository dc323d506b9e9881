// The dashboard (`/ui/dashboard`): reads `GET /ui/stats` (one JSON `stats`
// event a second, admin grant only) through herald.js, and plots the last
// ten minutes with uPlot (vendored: /ui/assets/vendor/, loaded by the page
// as the global `uPlot`).

import { HeraldEventSource } from "/herald.js";
import { $, el, observedFetch } from "/ui/assets/common.js";

/** Points kept per series: ten minutes at one document a second. */
const WINDOW = 600;
const STATS_PATH = "/ui/stats";

const REASONS = [
  ["client_gone", "the client went away", "#5a6372"],
  ["lagging", "cut off for falling behind", "#c0392b"],
  ["token_expired", "its token expired", "#8e44ad"],
  ["shutdown", "the hub shut down", "#2c3e50"],
  ["resync", "retention trimmed what it still needed", "#d35400"],
];

const state = { source: null, prev: null, data: emptyData(), plots: [] };

function emptyData() {
  return {
    t: [],
    subscribers: [],
    connections: [],
    publishes: [],
    deliveries: [],
    bytes: [],
    p50: [],
    p99: [],
    mean: [],
    gaps: [],
    ...Object.fromEntries(REASONS.map(([name]) => [name, []])),
  };
}

// ---------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------

function si(n, digits = 1) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${(n / 1e9).toFixed(digits)}G`;
  if (abs >= 1e6) return `${(n / 1e6).toFixed(digits)}M`;
  if (abs >= 1e4) return `${(n / 1e3).toFixed(digits)}k`;
  if (abs >= 100 || Number.isInteger(n)) return String(Math.round(n));
  return n.toFixed(digits);
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

/** A byte count short enough for an axis label: 0, 512, 20K, 1.5M (binary units). */
function shortBytes(n) {
  if (!n) return "0";
  const units = ["", "K", "M", "G"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n >= 10 || i === 0 ? Math.round(n) : n.toFixed(1)}${units[i]}`;
}

/** A duration in whole seconds, in its largest exact unit: 90 s, 15 min, 2 h, 7 d. */
function duration(secs) {
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60]]) {
    if (secs >= size && secs % size === 0) return `${secs / size} ${unit}`;
  }
  return `${secs} s`;
}

/** `si` without a trailing ".0": 100k, 1.5M, 42. */
function compact(n) {
  return si(n).replace(/\.0(?=[kMG]?$)/, "");
}

/** A count with thousands separators: 1,234,567. */
function count(n) {
  return n === null || n === undefined ? "–" : n.toLocaleString("en-US");
}

function ms(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const m = seconds * 1000;
  return m >= 100 ? `${Math.round(m)} ms` : `${m.toFixed(m >= 10 ? 1 : 2)} ms`;
}

/** The q-quantile of a histogram's counts in an interval, interpolated in its bucket (as PromQL's histogram_quantile). */
function quantile(q, buckets) {
  if (!buckets.length) return null;
  const total = buckets[buckets.length - 1][1];
  if (!(total > 0)) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === null) return lower; // past the last bound: its value is unknown
      const inBucket = count - below;
      return lower + (le - lower) * (inBucket > 0 ? (rank - below) / inBucket : 1);
    }
    if (le !== null) lower = le;
    below = count;
  }
  return lower;
}

// ---------------------------------------------------------------------------
// A document
// ---------------------------------------------------------------------------

function onStats(doc) {
  const d = state.data;
  const prev = state.prev;
  const dt = prev ? (doc.time - prev.time) / 1000 : 0;
  // A counter that went down: another hub process (a restart). No rate across it.
  const fresh = !prev || dt <= 0 || doc.published_total < prev.published_total || doc.subscriptions_total < prev.subscriptions_total;
  const rate = (a, b) => (fresh ? null : Math.max(0, (a - b) / dt));
  d.t.push(doc.time / 1000);
  d.subscribers.push(doc.subscribers);
  d.connections.push(doc.connections);
  d.publishes.push(rate(doc.published_total, prev?.published_total));
  d.deliveries.push(rate(doc.delivered_total, prev?.delivered_total));
  d.bytes.push(rate(doc.bytes_written_total, prev?.bytes_written_total));
  d.gaps.push(rate(doc.gaps_total, prev?.gaps_total));
  for (const [name] of REASONS) d[name].push(rate(doc.disconnects_total[name], prev?.disconnects_total[name]));
  let p50 = null;
  let p99 = null;
  let mean = null;
  if (!fresh) {
    const now = doc.publish_duration_seconds;
    const then = prev.publish_duration_seconds;
    const interval = now.buckets.map(([le, count], i) => [le, count - (then.buckets[i]?.[1] ?? 0)]);
    p50 = quantile(0.5, interval);
    p99 = quantile(0.99, interval);
    const n = now.count - then.count;
    mean = n > 0 ? (now.sum - then.sum) / n : null;
  }
  d.p50.push(p50 === null ? null : p50 * 1000);
  d.p99.push(p99 === null ? null : p99 * 1000);
  d.mean.push(mean === null ? null : mean * 1000);
  for (const series of Object.values(d)) if (series.length > WINDOW) series.splice(0, series.length - WINDOW);
  state.prev = doc;
  if (p99 !== null) state.lastP99 = p99;
  tiles(doc, d);
  plots();
}

function last(series) {
  return series.length ? series[series.length - 1] : null;
}

function tiles(doc, d) {
  const set = (id, text) => {
    $(id).textContent = text;
  };
  set("tile-subscribers", si(doc.subscribers));
  set("tile-connections", si(doc.connections));
  set("tile-publishes", si(last(d.publishes)));
  set("tile-deliveries", si(last(d.deliveries)));
  set("tile-bytes", last(d.bytes) === null ? "–" : `${bytes(last(d.bytes))}/s`);
  set("tile-latency", state.lastP99 === undefined ? "–" : ms(state.lastP99));
  set("tile-published", si(doc.published_total));
  set("tile-subscriptions", si(doc.subscriptions_total));
  set("tile-gaps", si(doc.gaps_total));
  set("tile-lagged", si(doc.lagged_total));
  const errors = doc.store_errors_total;
  set("tile-store-errors", si(errors.append + errors.read + errors.follow));
  store(doc.store);
  const body = $("reasons");
  body.replaceChildren(
    ...REASONS.map(([name, meaning]) =>
      el("tr", {}, el("td", {}, el("code", {}, name)), el("td", {}, meaning), el("td", { class: "n" }, si(doc.disconnects_total[name]))),
    ),
  );
  const limits = doc.limits;
  const cap = (n) => (n ? String(n) : "unlimited");
  $("meta").textContent =
    `Hub ${doc.hub} · Herald ${doc.version} · subscriptions: ${cap(limits.max_subscriptions)} in all, ` +
    `${cap(limits.max_subscriptions_per_ip)} per address · heartbeat ${limits.heartbeat_secs ? `${limits.heartbeat_secs} s` : "off"} · ` +
    `a subscriber is cut off past ${bytes(limits.max_pending_bytes)} behind · this page counts as one subscriber`;
}

/** The store tiles: its retained range as the hub last read it, and the retention the hub applies. */
function store(s) {
  if (!s) return;
  const retained = $("tile-retained");
  retained.textContent = compact(s.events);
  // The exact figure, for tests and the curious (the tile rounds: 12.3k).
  retained.dataset.value = s.events === null ? "" : String(s.events);
  $("tile-retained-note").textContent =
    s.head === null ? "not read yet" : s.oldest === null ? `none (last position ${count(s.head)})` : `positions ${count(s.oldest)}–${count(s.head)}`;
  // The first limit as the figure, the rest in words below it.
  const r = s.retention;
  const [figure, note] =
    r.max_events !== null
      ? [compact(r.max_events), r.max_age_secs === null ? "events, any age" : `events, at most ${duration(r.max_age_secs)} old`]
      : r.max_age_secs !== null
        ? [duration(r.max_age_secs), "old at most, any count"]
        : ["no limit", "keeps everything"];
  $("tile-retention").textContent = figure;
  $("tile-retention-note").textContent = note;
}

// ---------------------------------------------------------------------------
// Plots
// ---------------------------------------------------------------------------

const PLOTS = [
  { id: "plot-clients", series: [["subscribers", "Subscribers", "#1f5fbf"], ["connections", "Connections", "#17a589"]], fmt: si },
  { id: "plot-publishes", series: [["publishes", "Publishes/s", "#1f5fbf"]], fmt: si },
  { id: "plot-deliveries", series: [["deliveries", "Deliveries/s", "#17a589"]], fmt: si },
  { id: "plot-bytes", series: [["bytes", "Bytes/s", "#6a2aa8"]], fmt: (n) => (n === null ? "–" : bytes(n)), axis: shortBytes },
  {
    id: "plot-latency",
    series: [["p50", "p50", "#17a589"], ["p99", "p99", "#c0392b"], ["mean", "mean", "#5a6372"]],
    fmt: (n) => (n === null ? "–" : n === 0 ? "0" : `${n >= 10 ? Math.round(n) : n.toFixed(2)}`),
  },
  { id: "plot-ends", series: [["gaps", "gaps/s", "#c98a00"], ...REASONS.map(([name, , color]) => [name, name, color])], fmt: si },
];

function makePlot(spec) {
  const target = $(spec.id);
  const opts = {
    width: Math.max(200, target.clientWidth),
    height: 180,
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
    series: [
      { value: (u, v) => (v === null ? "–" : new Date(v * 1000).toLocaleTimeString()) },
      ...spec.series.map(([, label, stroke]) => ({ label, stroke, width: 2, spanGaps: false, value: (u, v) => spec.fmt(v) })),
    ],
    axes: [{ stroke: "#5a6372", grid: { stroke: "#e6e9ee" } }, { stroke: "#5a6372", grid: { stroke: "#e6e9ee" }, size: 56, values: (u, ticks) => ticks.map(spec.axis || spec.fmt) }],
    legend: { show: true, live: true },
    cursor: { drag: { x: false, y: false } },
  };
  // eslint-disable-next-line no-undef
  const plot = new uPlot(opts, [[], ...spec.series.map(() => [])], target);
  return { spec, plot, target };
}

function plots() {
  const d = state.data;
  for (const { spec, plot, target } of state.plots) {
    plot.setData([d.t.slice(), ...spec.series.map(([key]) => d[key].slice())]);
    target.classList.toggle("empty", d.t.length === 0);
    // For tests and the curious: how many points, and the largest value
    // of the first series in the window.
    target.dataset.points = String(d.t.length);
    target.dataset.max = String(Math.max(0, ...d[spec.series[0][0]].filter((v) => v !== null)));
  }
}

function resize() {
  for (const { plot, target } of state.plots) {
    const width = Math.max(200, target.clientWidth);
    if (Math.abs(plot.width - width) > 1) plot.setSize({ width, height: 180 });
  }
}

// ---------------------------------------------------------------------------
// Connecting
// ---------------------------------------------------------------------------

function setState(name, text) {
  const node = $("state");
  node.dataset.state = name;
  node.textContent = text;
}

function showError(message) {
  const node = $("error");
  node.textContent = message;
  node.hidden = !message;
}

const HINTS = {
  401: "Paste a token with the admin grant (herald token --admin) and connect again.",
  403: "This token lacks the admin grant: it needs subscribe on the topic /.well-known/mercure/admin (herald token --admin mints one).",
};

function connect(event) {
  event?.preventDefault();
  disconnect(true);
  const token = $("token").value.trim();
  let refusal = "";
  const watch = {
    request: () => {},
    response: () => {},
    refused: ({ status, message }) => {
      refusal = `${message}${HINTS[status] ? `. ${HINTS[status]}` : ""}`;
      showError(refusal);
    },
    failed: ({ message }) => showError(message),
    retry: () => {},
    event: () => {},
  };
  const options = { share: "none", fetch: observedFetch(watch) };
  if (token) options.headers = { Authorization: `Bearer ${token}` };
  const source = new HeraldEventSource(STATS_PATH, options);
  state.source = source;
  setState("connecting", "Connecting…");
  source.addEventListener("open", () => {
    if (state.source !== source) return;
    showError("");
    setState("open", "Live: one update a second.");
  });
  source.addEventListener("stats", (e) => {
    if (state.source !== source) return;
    try {
      onStats(JSON.parse(e.data));
    } catch (error) {
      showError(`A statistics document could not be read: ${error.message}`);
    }
  });
  source.addEventListener("error", (e) => {
    if (state.source !== source) return;
    if (e.fatal) {
      setState("closed", `Stopped${e.status ? ` (HTTP ${e.status})` : ""}.`);
      if (!refusal) showError(`The hub refused the statistics stream (HTTP ${e.status}).`);
      state.source = null;
      $("disconnect").disabled = true;
      return;
    }
    const delay = e.delay != null ? ` in ${(e.delay / 1000).toFixed(1)} s` : "";
    setState("connecting", `Connection lost; reconnecting${delay}.`);
  });
  $("disconnect").disabled = false;
}

function disconnect(quiet) {
  if (state.source) {
    state.source.close();
    state.source = null;
    if (!quiet) setState("idle", "Not connected.");
  }
  $("disconnect").disabled = true;
}

function init() {
  state.plots = PLOTS.map(makePlot);
  new ResizeObserver(() => resize()).observe(document.querySelector(".plots"));
  $("dash-form").addEventListener("submit", connect);
  $("disconnect").addEventListener("click", () => disconnect(false));
  document.documentElement.dataset.ready = "true";
}

init();
