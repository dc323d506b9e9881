// The tester (`/ui`): subscribe to topics on this hub or to any SSE URL,
// watch every event and every connection change, publish to the hub.

import { HeraldEventSource } from "/herald.js";
import { $, el, clock, copyText, observedFetch, shellQuote, HUB_PATH } from "/ui/assets/common.js";

/** Entries kept in the log (the oldest go first). */
const MAX_ENTRIES = 2000;

const state = {
  source: null,
  /** What the current connection was opened with (for curl / tail). */
  target: null,
  entries: [], // {kind: "event"|"info"|"gap"|"error", time, type, id, data, text, node}
  paused: false,
  held: [], // entries that arrived while paused
  events: 0,
  lastId: "",
};

// ---------------------------------------------------------------------------
// Subscribing
// ---------------------------------------------------------------------------

function mode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

function showMode() {
  const url = mode() === "url";
  $("hub-fields").hidden = url;
  $("url-fields").hidden = !url;
}

/** What to connect to, from the form; throws an Error with a message in words. */
function readTarget() {
  const token = $("sub-token").value.trim();
  const lastEventId = $("last-id").value;
  const withCredentials = $("cookies").checked;
  if (mode() === "url") {
    const raw = $("url").value.trim();
    if (!raw) throw new Error("enter the SSE URL to watch");
    let url;
    try {
      url = new URL(raw, location.href);
    } catch {
      throw new Error(`not a URL: ${raw}`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("the URL must be http: or https:");
    return { kind: "url", url: url.href, token, lastEventId, withCredentials };
  }
  const topics = lines($("topics").value);
  if (topics.length === 0) throw new Error("enter at least one topic (or * for every topic)");
  const param = $("match-type").value;
  const query = new URLSearchParams();
  for (const topic of topics) query.append(param, topic);
  const url = `${location.origin}${HUB_PATH}?${query}`;
  return { kind: "hub", url, topics, param, token, lastEventId, withCredentials };
}

function lines(text) {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "");
}

function connect(event) {
  event?.preventDefault();
  disconnect(true);
  let target;
  try {
    target = readTarget();
  } catch (error) {
    showError(error.message);
    return;
  }
  showError("");
  state.target = target;
  state.attempt = 0;
  state.open = false;
  setState("connecting", "Connecting…");
  const watch = {
    request: ({ url, attempt, lastEventId }) => {
      state.attempt = attempt;
      const resume = lastEventId ? ` with Last-Event-ID: ${lastEventId}` : "";
      info(attempt === 1 ? `Connecting to ${url}${resume}` : `Reconnecting (attempt ${attempt})${resume}`, {
        resumeFrom: lastEventId,
      });
    },
    response: ({ status, statusText, headers }) => showHeaders(status, statusText, headers),
    refused: ({ message }) => {
      showError(message);
      info(`Refused: ${message}`, { error: true });
    },
    failed: ({ message }) => {
      showError(message);
      info(`Failed: ${message}`, { error: true });
    },
    retry: (ms) => {
      addHeader("retry:", `${ms} ms`);
      info(`retry: ${ms} ms (the server's reconnection delay)`);
    },
    event: (ev) => onEvent(ev),
  };
  const options = {
    share: "none",
    withCredentials: target.withCredentials,
    fetch: observedFetch(watch),
  };
  if (target.token) options.headers = { Authorization: `Bearer ${target.token}` };
  if (target.lastEventId) options.lastEventId = target.lastEventId;
  const source = new HeraldEventSource(target.url, options);
  state.source = source;
  source.addEventListener("open", () => {
    if (state.source !== source) return;
    state.open = true;
    showError("");
    let resumed = "";
    if (state.resumeFrom === "earliest") {
      resumed = ", replaying everything retained";
    } else if (state.resumeFrom && state.mercureLastId && state.mercureLastId !== state.resumeFrom) {
      // The hub did not have it (unknown, trimmed, or private to others).
      resumed = `; the hub did not have ${state.resumeFrom} and replays from ${state.mercureLastId}`;
    } else if (state.resumeFrom) {
      resumed = `, resumed after ${state.resumeFrom}`;
    }
    setState("open", `Open${resumed}.`);
    info(`Open${resumed}${state.mercureLastId ? ` (Mercure-Last-Event-ID: ${state.mercureLastId})` : ""}`);
  });
  source.addEventListener("error", (e) => {
    if (state.source !== source) return;
    if (e.fatal) {
      setState("closed", `Stopped${e.status ? ` (HTTP ${e.status})` : ""}: not reconnecting.`);
      info(`Stopped${e.status ? ` after HTTP ${e.status}` : ""}: herald.js does not retry this.`, { error: true });
      $("disconnect").disabled = true;
      state.source = null;
      return;
    }
    const delay = e.delay != null ? ` in ${(e.delay / 1000).toFixed(1)} s` : "";
    const from = source.lastEventId ? ` from ${source.lastEventId}` : "";
    if (!state.open) {
      // This attempt never opened: its failure is already in the log.
      setState("connecting", `Retrying${delay}.`);
      info(`Retrying${delay}${from}.`);
      return;
    }
    state.open = false;
    const why = { end: "the server ended the stream", network: "the connection was lost", status: `HTTP ${e.status}` }[e.reason] || e.reason;
    setState("connecting", `Reconnecting${delay}: ${why}.`);
    info(`Disconnected: ${why}; reconnecting${delay}${from}.`);
  });
  $("disconnect").disabled = false;
}

function disconnect(quiet) {
  if (state.source) {
    state.source.close();
    state.source = null;
    if (!quiet) {
      info("Disconnected by you.");
      setState("idle", "Not connected.");
    }
  }
  $("disconnect").disabled = true;
}

function setState(name, text) {
  const node = $("state");
  node.dataset.state = name;
  node.textContent = text;
}

function showError(message) {
  const node = $("sub-error");
  node.textContent = message;
  node.hidden = !message;
}

function showHeaders(status, statusText, headers) {
  const list = $("headers");
  list.replaceChildren();
  addHeader("Status", `${status} ${statusText}`.trim());
  state.mercureLastId = "";
  for (const [name, value] of headers) {
    addHeader(name, value);
    if (name === "mercure-last-event-id") state.mercureLastId = value;
  }
}

function addHeader(name, value) {
  $("headers").append(el("dt", {}, name), el("dd", {}, value));
}

// ---------------------------------------------------------------------------
// The log
// ---------------------------------------------------------------------------

function onEvent(ev) {
  state.events += 1;
  state.lastId = ev.lastEventId;
  let kind = "event";
  let report = null;
  if (ev.type === "mercure") {
    try {
      report = JSON.parse(ev.data);
    } catch {
      report = null;
    }
    if (report?.type === "gap") kind = "gap";
  }
  add({ kind, time: new Date(), type: ev.type, id: ev.id, lastEventId: ev.lastEventId, data: ev.data, report });
}

function info(text, { error = false, resumeFrom } = {}) {
  if (resumeFrom !== undefined) state.resumeFrom = resumeFrom || "";
  add({ kind: error ? "error" : "info", time: new Date(), text });
}

function add(entry) {
  state.entries.push(entry);
  if (state.entries.length > MAX_ENTRIES) {
    const gone = state.entries.splice(0, state.entries.length - MAX_ENTRIES);
    for (const old of gone) old.node?.remove();
    state.held = state.held.filter((e) => !gone.includes(e));
  }
  if (state.paused) {
    state.held.push(entry);
  } else {
    render(entry);
  }
  counts();
}

function render(entry) {
  entry.node = entryNode(entry);
  applyFilter(entry);
  $("events").prepend(entry.node);
}

function entryNode(entry) {
  const time = el("time", { datetime: entry.time.toISOString() }, clock(entry.time));
  if (entry.kind === "info" || entry.kind === "error") {
    return el("li", { class: `entry ${entry.kind}` }, el("div", { class: "meta" }, time, el("span", { class: "text" }, entry.text)));
  }
  const meta = el(
    "div",
    { class: "meta" },
    time,
    el("span", { class: "type" }, entry.type),
    entry.id !== null && entry.id !== undefined
      ? el("span", { class: "id" }, el("span", { class: "sr" }, "id "), `#${entry.id}`)
      : el("span", { class: "id none" }, "no id"),
  );
  const node = el("li", { class: `entry ${entry.kind}`, "data-type": entry.type, "data-id": entry.id ?? "" }, meta);
  if (entry.kind === "gap") {
    node.append(
      el(
        "p",
        { class: "gap-text" },
        `Gap: the hub no longer had ${entry.report.last_event_id ?? "the id"}, so events after it may be lost; the replay starts from ${entry.report.resumed_from ?? "earliest"}.`,
      ),
    );
  }
  node.append(dataNode(entry.data));
  return node;
}

/** The data: pretty JSON in a collapsible block, else the text as sent. */
function dataNode(data) {
  let parsed;
  try {
    parsed = /^\s*[[{]/.test(data) ? JSON.parse(data) : undefined;
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || parsed === null || typeof parsed !== "object") {
    return el("pre", { class: "data" }, data);
  }
  const keys = Array.isArray(parsed) ? `${parsed.length} items` : `${Object.keys(parsed).length} keys`;
  const details = el("details", { class: "json", open: data.length < 600 }, el("summary", {}, `JSON, ${keys}`), el("pre", { class: "data" }, JSON.stringify(parsed, null, 2)));
  return details;
}

function filters() {
  return {
    type: $("filter-type").value.trim().toLowerCase(),
    text: $("filter-text").value.toLowerCase(),
  };
}

function matchesFilter(entry, f = filters()) {
  if (entry.kind === "info" || entry.kind === "error") return !f.type && (!f.text || entry.text.toLowerCase().includes(f.text));
  if (f.type && !entry.type.toLowerCase().includes(f.type)) return false;
  if (f.text && !`${entry.id ?? ""}\n${entry.data}`.toLowerCase().includes(f.text)) return false;
  return true;
}

function applyFilter(entry, f) {
  if (entry.node) entry.node.hidden = !matchesFilter(entry, f);
}

function refilter() {
  const f = filters();
  for (const entry of state.entries) applyFilter(entry, f);
  counts();
}

function counts() {
  const shown = state.entries.filter((e) => e.node && !e.node.hidden && e.kind !== "info" && e.kind !== "error").length;
  const total = state.entries.filter((e) => e.kind === "event" || e.kind === "gap").length;
  let text = total === 0 ? "No events yet." : `${total} event${total === 1 ? "" : "s"}, ${shown} shown`;
  if (state.lastId) text += `; last id ${state.lastId}`;
  if (state.paused) text += `; paused, ${state.held.length} waiting`;
  $("counts").textContent = text;
}

function togglePause() {
  state.paused = !state.paused;
  const button = $("pause");
  button.setAttribute("aria-pressed", String(state.paused));
  button.textContent = state.paused ? "Resume" : "Pause";
  if (!state.paused) {
    for (const entry of state.held) render(entry);
    state.held = [];
  }
  counts();
}

function clearLog() {
  state.entries = [];
  state.held = [];
  $("events").replaceChildren();
  counts();
}

function exportLog() {
  const text = state.entries
    .map((e) =>
      JSON.stringify(
        e.kind === "info" || e.kind === "error"
          ? { time: e.time.toISOString(), kind: e.kind, text: e.text }
          : { time: e.time.toISOString(), kind: e.kind, type: e.type, id: e.id, last_event_id: e.lastEventId, data: e.data },
      ),
    )
    .join("\n");
  const blob = new Blob([text ? `${text}\n` : ""], { type: "application/x-ndjson" });
  const link = el("a", { href: URL.createObjectURL(blob), download: `herald-events-${new Date().toISOString().replaceAll(":", "-")}.ndjson` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// ---------------------------------------------------------------------------
// Copy as a command
// ---------------------------------------------------------------------------

function currentTarget() {
  try {
    return readTarget();
  } catch (error) {
    showCopied(error.message);
    return null;
  }
}

function curlCommand(t) {
  const parts = ["curl", "-N"];
  if (t.token) parts.push("-H", shellQuote(`Authorization: Bearer ${t.token}`));
  if (t.lastEventId) parts.push("-H", shellQuote(`Last-Event-ID: ${t.lastEventId}`));
  parts.push(shellQuote(t.url));
  return parts.join(" ");
}

function tailCommand(t) {
  const parts = ["herald", "tail"];
  if (t.kind === "hub") {
    parts.push("--hub", shellQuote(`${location.origin}${HUB_PATH}`));
    for (const topic of t.topics) parts.push(t.param === "match" ? "--topic" : "--pattern", shellQuote(topic));
    if (t.token) parts.push("--token", shellQuote(t.token));
  } else {
    parts.push(shellQuote(t.url));
    if (t.token) parts.push("-H", shellQuote(`Authorization: Bearer ${t.token}`));
  }
  if (t.lastEventId) parts.push("--last-event-id", shellQuote(t.lastEventId));
  return parts.join(" ");
}

async function copyCommand(build) {
  const t = currentTarget();
  if (!t) return;
  const command = build(t);
  const box = $("command");
  box.textContent = command;
  box.hidden = false;
  const ok = await copyText(command);
  showCopied(ok ? "Copied to the clipboard:" : "The browser did not allow copying here: select the command below.");
}

function showCopied(text) {
  const node = $("copied");
  node.textContent = text;
  node.hidden = false;
}

// ---------------------------------------------------------------------------
// Publishing
// ---------------------------------------------------------------------------

async function publish(event) {
  event.preventDefault();
  const result = $("pub-result");
  const topics = lines($("pub-topics").value);
  if (topics.length === 0) {
    showResult("error", "Enter at least one topic.");
    return;
  }
  const body = new URLSearchParams();
  for (const topic of topics) body.append("topic", topic);
  body.append("data", $("pub-data").value);
  const type = $("pub-type").value;
  const id = $("pub-id").value;
  if (type) body.append("type", type);
  if (id) body.append("id", id);
  if ($("pub-private").checked) body.append("private", "on");
  const headers = { "Content-Type": "application/x-www-form-urlencoded" };
  const token = $("pub-token").value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  $("publish").disabled = true;
  result.textContent = "Publishing…";
  try {
    const response = await fetch(HUB_PATH, { method: "POST", headers, body, credentials: "same-origin" });
    const text = (await response.text()).trim();
    if (response.ok) {
      showResult("ok", `Published: id ${text}`);
    } else {
      const challenge = response.headers.get("www-authenticate");
      let hint = "";
      if (response.status === 401) hint = " (paste a publisher token above)";
      if (response.status === 403 && challenge) hint = " (the token does not grant publishing to every topic)";
      showResult("error", `HTTP ${response.status} ${response.statusText}${hint}: ${text}${challenge ? ` [WWW-Authenticate: ${challenge}]` : ""}`);
    }
  } catch {
    showResult("error", "Network error: the hub did not answer (stopped, or the connection was cut).");
  } finally {
    $("publish").disabled = false;
  }
}

function showResult(kind, text) {
  const node = $("pub-result");
  node.dataset.kind = kind;
  node.textContent = text;
}

// ---------------------------------------------------------------------------

function init() {
  for (const radio of document.querySelectorAll('input[name="mode"]')) radio.addEventListener("change", showMode);
  $("sub-form").addEventListener("submit", connect);
  $("disconnect").addEventListener("click", () => disconnect(false));
  $("pub-form").addEventListener("submit", publish);
  $("filter-type").addEventListener("input", refilter);
  $("filter-text").addEventListener("input", refilter);
  $("pause").addEventListener("click", togglePause);
  $("clear").addEventListener("click", clearLog);
  $("export").addEventListener("click", exportLog);
  $("copy-curl").addEventListener("click", () => copyCommand(curlCommand));
  $("copy-tail").addEventListener("click", () => copyCommand(tailCommand));
  // A link can fill the form: /ui?topic=a&topic=b or /ui?url=https://…
  const params = new URLSearchParams(location.search);
  if (params.getAll("topic").length) $("topics").value = params.getAll("topic").join("\n");
  if (params.get("url")) {
    document.querySelector('input[name="mode"][value="url"]').checked = true;
    $("url").value = params.get("url");
  }
  showMode();
  document.documentElement.dataset.ready = "true";
}

init();
