// herald.js: an EventSource that sends headers, refreshes its token,
// backs off with jitter, reports Herald's gaps, and shares one connection
// per hub among all the tabs of an origin.
//
// One file, no dependencies, no build step: the hub serves it at
// /herald.js and the npm package `@herald/client` is this same file.
// Read README.md beside it for the API; the comments here say why.
//
// The parts, top to bottom:
// - Parser: the WHATWG "interpret an event stream" algorithm, fed bytes.
// - Stream: one logical stream over fetch, reconnecting with Last-Event-ID.
// - Group / Coordinator: the shared streams, run by a SharedWorker or by the
//   leader tab, one stream per (endpoint, credentials) for all subscribers.
// - TabClient: a tab's side of sharing (SharedWorker port, or
//   BroadcastChannel plus Web Locks for leader election).
// - HeraldEventSource: the EventSource API in front of either.

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 2;

/** The defaults of the reconnection options, in milliseconds. */
export const defaults = Object.freeze({
  /** First reconnection delay until the server sends `retry:`. */
  retry: 3000,
  /** No reconnection waits longer than this (before jitter). */
  maxRetry: 30000,
  /** Each failed attempt in a row multiplies the delay by this. */
  backoffFactor: 2,
  /** A delay is drawn uniformly from [d * (1 - jitter), d]. */
  jitter: 0.5,
});

// Query parameters that select topics: a shared stream carries the union
// of its subscribers' matchers, several of them on one request.
const MATCHER_PARAMS = new Set(["match", "match_exact", "match_urlpattern", "topic"]);
// Cursors in the URL belong to one subscriber, never to a shared stream.
const CURSOR_PARAMS = new Set(["last_event_id", "lastEventID"]);

// How many recent event ids are remembered to drop a duplicate, and how
// many recent events a shared stream keeps to catch up a tab that is
// behind when a new leader takes over.
const RECENT_IDS = 1024;
const RING = 256;

// ---------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------

/**
 * The WHATWG event-stream parser, incremental: `feed(bytes)` as chunks
 * arrive (any split: inside CRLF, inside a UTF-8 sequence), `finish()` at
 * the end of the body (an unterminated event is discarded).
 *
 * `onEvent({type, data, lastEventId, id})` is called for each dispatched
 * event; `id` is the event's own `id:` field, or null when it had none
 * (then `lastEventId` is the one carried over). `onRetry(ms)` for each
 * valid `retry:` field.
 */
export class Parser {
  constructor({ onEvent = () => {}, onRetry = () => {}, lastEventId = "" } = {}) {
    // UTF-8 decode with BOM sniffing as the spec says: TextDecoder strips one
    // leading BOM (ignoreBOM: false) and, in streaming mode, keeps a
    // sequence split across chunks for the next one.
    this.decoder = new TextDecoder("utf-8");
    this.onEvent = onEvent;
    this.onRetry = onRetry;
    this.pending = ""; // the current line, not yet ended
    this.afterCR = false; // the last character seen was a CR: skip one LF
    this.data = "";
    this.eventType = "";
    this.idBuffer = lastEventId;
    this.ownId = null;
    /** The last event ID string: set at each dispatch, kept across events. */
    this.lastEventId = lastEventId;
  }

  /** Feeds bytes (a Uint8Array) or, for tests, a string. */
  feed(chunk) {
    this.text(typeof chunk === "string" ? chunk : this.decoder.decode(chunk, { stream: true }));
  }

  /** The end of the stream: flushes the decoder, drops the unfinished event. */
  finish() {
    this.text(this.decoder.decode());
    this.pending = "";
    this.data = "";
    this.eventType = "";
    this.ownId = null;
  }

  text(s) {
    let i = 0;
    if (this.afterCR && s.length > 0) {
      // A CR ended the previous chunk: an LF opening this one is the rest of
      // that CRLF, not a blank line.
      if (s.charCodeAt(0) === 10) i = 1;
      this.afterCR = false;
    }
    let start = i;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const line = this.pending + s.slice(start, i);
      this.pending = "";
      if (c === 13) {
        if (i + 1 < s.length) {
          if (s.charCodeAt(i + 1) === 10) i++;
        } else {
          this.afterCR = true;
        }
      }
      start = i + 1;
      this.line(line);
    }
    if (start < s.length) this.pending += s.slice(start);
  }

  line(line) {
    if (line === "") return this.dispatch();
    if (line.charCodeAt(0) === 58) return; // ':' a comment
    const colon = line.indexOf(":");
    let field = line;
    let value = "";
    if (colon !== -1) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.charCodeAt(0) === 32) value = value.slice(1);
    }
    switch (field) {
      case "event":
        this.eventType = value;
        break;
      case "data":
        this.data += value + "\n";
        break;
      case "id":
        if (!value.includes("\0")) {
          this.idBuffer = value;
          this.ownId = value;
        }
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) this.onRetry(Number(value));
        break;
      default:
      // unknown fields are ignored
    }
  }

  dispatch() {
    // Step 1 runs even when no event fires: an id-only block still moves
    // the last event ID (used to reconnect).
    this.lastEventId = this.idBuffer;
    const ownId = this.ownId;
    const type = this.eventType || "message";
    let data = this.data;
    this.data = "";
    this.eventType = "";
    this.ownId = null;
    if (data === "") return;
    if (data.endsWith("\n")) data = data.slice(0, -1);
    this.onEvent({ type, data, lastEventId: this.lastEventId, id: ownId });
  }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/** Remembers the last `cap` ids seen, to drop repeated events. */
class Recent {
  constructor(cap = RECENT_IDS) {
    this.cap = cap;
    this.set = new Set();
    this.order = [];
  }
  /** True the first time `id` is seen (and remembers it). */
  add(id) {
    if (this.set.has(id)) return false;
    this.set.add(id);
    this.order.push(id);
    if (this.order.length > this.cap) this.set.delete(this.order.shift());
    return true;
  }
}

/** A stream's position and recent past: what a new leader resumes from. */
class Position {
  constructor(lastId = "") {
    this.lastId = lastId;
    this.recent = new Recent();
    this.ring = [];
  }
  /** Records `ev`; false when it is a repeat (same own id) to drop. */
  take(ev) {
    if (ev.id != null && ev.id !== "" && !this.recent.add(ev.id)) return false;
    this.lastId = ev.lastEventId;
    this.ring.push(ev);
    if (this.ring.length > RING) this.ring.shift();
    return true;
  }
  /** The events after `id`, or null when the ring does not hold `id`. */
  after(id) {
    if (id === this.lastId) return [];
    for (let i = this.ring.length - 1; i >= 0; i--) {
      if (this.ring[i].id === id) return this.ring.slice(i + 1);
    }
    return null;
  }
}

/** The `exp` claim of a JWT in ms since the epoch, unverified; or null. */
export function tokenExpiry(token) {
  try {
    const part = String(token).split(".")[1];
    if (!part) return null;
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      Array.from(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)), (c) =>
        "%" + c.charCodeAt(0).toString(16).padStart(2, "0"),
      ).join(""),
    );
    const exp = JSON.parse(json).exp;
    return typeof exp === "number" ? exp * 1000 : null;
  } catch {
    return null;
  }
}

function randomId() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  return Math.random().toString(36).slice(2) + Date.now().toString(36);
}

function headerEntries(headers) {
  if (!headers) return [];
  const out = [];
  new Headers(headers).forEach((value, name) => out.push([name, value]));
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** Splits a subscription URL into its shared part and its matchers. */
function splitUrl(href) {
  const url = new URL(href);
  const matchers = [];
  const rest = [];
  for (const [name, value] of url.searchParams) {
    if (MATCHER_PARAMS.has(name)) matchers.push([name, value]);
    else if (!CURSOR_PARAMS.has(name)) rest.push([name, value]);
  }
  url.search = new URLSearchParams(rest).toString();
  return { base: url.href, matchers };
}

/** The URL for `base` with every matcher in `matchers`, each once. */
function unionUrl(base, matcherLists) {
  const url = new URL(base);
  const seen = new Set();
  for (const list of matcherLists) {
    for (const [name, value] of list) {
      const k = name + "\0" + value;
      if (seen.has(k)) continue;
      seen.add(k);
      url.searchParams.append(name, value);
    }
  }
  return url.href;
}

const TRANSIENT = new Set([408, 429, 500, 502, 503, 504]);

// ---------------------------------------------------------------------------
// Stream: one logical stream, reconnecting
// ---------------------------------------------------------------------------

/**
 * A stream over fetch that reconnects with `Last-Event-ID` after a network
 * error or the end of the body, waiting `retry` (the server's `retry:` when
 * it sent one) times `backoffFactor` per failed attempt in a row, capped at
 * `maxRetry`, with jitter. Statuses 204, 4xx (but 408 and 429), and a 200
 * that is not `text/event-stream` are final.
 *
 * `restart()` opens a new connection (a new URL or a fresh token) before
 * closing the current one, resuming from the last id: nothing is lost at
 * the switch, and a repeat is dropped by id.
 *
 * `cfg.prepare()` is called before each attempt and returns `{url, tag}`;
 * the tag is handed back with `on.open(tag)` and `on.fatal(info, tag,
 * wasRestart)`, so a Group knows which subscribers a connection carried.
 */
class Stream {
  constructor(cfg, on) {
    this.cfg = cfg;
    this.on = on;
    this.retry = cfg.retry ?? defaults.retry;
    this.failures = 0;
    this.position = cfg.position || new Position(cfg.lastEventId || "");
    this.active = null; // the attempt events come from
    this.next = null; // a restart's attempt, until it opens
    this.timer = null;
    this.refreshTimer = null;
    this.closed = false;
    this.fetch = cfg.fetch || ((...args) => globalThis.fetch(...args));
  }

  start() {
    this.active = this.attempt();
  }

  get lastEventId() {
    return this.position.lastId;
  }

  /** Reconnects with a new URL or token; the current connection stays until the new one opens. */
  restart() {
    if (this.closed) return;
    if (this.next) this.abort(this.next);
    if (!this.active || !this.active.open) {
      // Nothing is flowing: no need to overlap.
      if (this.active) this.abort(this.active);
      clearTimeout(this.timer);
      this.active = this.attempt();
      this.next = null;
      return;
    }
    this.next = this.attempt();
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.refreshTimer);
    if (this.active) this.abort(this.active);
    if (this.next) this.abort(this.next);
    this.active = this.next = null;
  }

  abort(att) {
    att.aborted = true;
    try {
      att.controller.abort();
    } catch {
      // already done
    }
  }

  attempt() {
    const att = { controller: new AbortController(), aborted: false, open: false, tag: undefined };
    this.run(att);
    return att;
  }

  async run(att) {
    let response;
    try {
      const { url, tag } = this.cfg.prepare();
      att.tag = tag;
      const headers = new Headers(this.cfg.headers || {});
      headers.set("Accept", "text/event-stream");
      if (this.position.lastId) headers.set("Last-Event-ID", this.position.lastId);
      if (this.cfg.token) {
        const token = await this.cfg.token();
        if (att.aborted) return;
        headers.set("Authorization", `Bearer ${token}`);
        this.scheduleRefresh(token);
      }
      response = await this.fetch(url, {
        headers,
        credentials: this.cfg.withCredentials ? "include" : "same-origin",
        cache: "no-store",
        signal: att.controller.signal,
      });
    } catch (error) {
      if (!att.aborted) this.failed(att, { reason: "network", error });
      return;
    }
    if (att.aborted) {
      response.body?.cancel().catch(() => {});
      return;
    }
    const status = response.status;
    const type = response.headers.get("content-type") || "";
    if (status !== 200 || !/^\s*text\/event-stream\s*(;|$)/i.test(type)) {
      response.body?.cancel().catch(() => {});
      if (TRANSIENT.has(status)) {
        const after = Number(response.headers.get("retry-after"));
        this.failed(att, { reason: "status", status, retryAfter: after > 0 ? after * 1000 : 0 });
      } else {
        this.fatal(att, { reason: status === 200 ? "type" : "status", status });
      }
      return;
    }
    this.opened(att);
    const reader = response.body.getReader();
    const parser = new Parser({
      lastEventId: this.position.lastId,
      onRetry: (ms) => {
        if (!att.aborted) this.retry = ms;
      },
      onEvent: (ev) => {
        if (!att.aborted && this.position.take(ev)) this.on.event(ev);
      },
    });
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || att.aborted) break;
        parser.feed(value);
      }
      if (att.aborted) return;
      parser.finish();
    } catch (error) {
      if (!att.aborted) this.failed(att, { reason: "network", error, status });
      return;
    }
    if (!att.aborted) this.failed(att, { reason: "end", status });
  }

  opened(att) {
    att.open = true;
    this.failures = 0;
    if (att === this.next) {
      // The restart is live: the previous connection can go.
      if (this.active) this.abort(this.active);
      this.active = att;
      this.next = null;
    }
    this.on.open(att.tag);
  }

  failed(att, info) {
    if (this.closed) return;
    if (att === this.next) {
      // A restart failed: the current connection carries on, try again later.
      this.next = null;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.restart(), this.delay(info.retryAfter));
      return;
    }
    if (att !== this.active) return;
    // Nothing flows from it any more: a restart need not wait for a successor.
    att.open = false;
    if (this.next) {
      // A restart is under way: it takes over when it opens.
      this.active = this.next;
      this.next = null;
      return;
    }
    const wait = this.delay(info.retryAfter);
    this.on.error({ ...info, fatal: false, delay: wait }, att.tag);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (!this.closed && this.active === att) this.active = this.attempt();
    }, wait);
  }

  fatal(att, info) {
    if (this.closed) return;
    if (att === this.next) {
      this.next = null;
      this.on.fatal({ ...info, fatal: true }, att.tag, true);
      return;
    }
    if (att !== this.active) return;
    if (this.next) {
      this.active = this.next;
      this.next = null;
    } else {
      this.close();
    }
    this.on.fatal({ ...info, fatal: true }, att.tag, false);
  }

  /**
   * The wait before the next attempt: `retry * backoffFactor ** n` for the
   * n-th attempt since the stream was last open (n from 0), capped at
   * `maxRetry`, less up to `jitter` of it at random.
   */
  delay(floor = 0) {
    const factor = this.cfg.backoffFactor ?? defaults.backoffFactor;
    const cap = this.cfg.maxRetry ?? defaults.maxRetry;
    const jitter = Math.min(1, Math.max(0, this.cfg.jitter ?? defaults.jitter));
    const d = Math.min(cap, this.retry * factor ** this.failures);
    this.failures++;
    return Math.max(floor || 0, Math.round(d * (1 - jitter * Math.random())));
  }

  /** Reconnects with a fresh token a little before this one expires. */
  scheduleRefresh(token) {
    clearTimeout(this.refreshTimer);
    const exp = tokenExpiry(token);
    if (exp == null) return;
    const left = exp - Date.now();
    // A quarter of the time left, at most 30 s ahead: a 1-minute token is
    // renewed at 45 s, a 1-hour token 30 s before its end.
    const ahead = Math.min(30000, Math.max(0, left / 4));
    this.refreshTimer = setTimeout(() => this.restart(), Math.max(1000, left - ahead));
  }
}

// ---------------------------------------------------------------------------
// Group and Coordinator: shared streams (in a SharedWorker or the leader tab)
// ---------------------------------------------------------------------------

/**
 * One shared stream: every subscriber with the same endpoint and
 * credentials, on one connection whose URL holds the union of their
 * matchers. A subscriber joins by a restart of the stream (resuming from
 * its last id); it is "open" once a connection that includes its matchers
 * is, and from then on receives every event of the stream.
 */
class Group {
  constructor(coord, key, cfg, position) {
    this.coord = coord;
    this.key = key;
    this.cfg = cfg;
    this.subs = new Map(); // sub id -> { sub, tab, matchers, state }
    this.position = position || new Position();
    this.url = null; // the URL of the connection events come from
    this.stream = null;
  }

  add(entry, lastId) {
    const known = this.subs.get(entry.sub);
    if (known) {
      // A tab re-announcing itself to a new leader: catch it up.
      this.catchUp(entry.tab, lastId);
      return;
    }
    this.subs.set(entry.sub, { ...entry, state: CONNECTING });
    if (!this.stream) {
      this.stream = new Stream(
        {
          ...this.cfg,
          position: this.position,
          prepare: () => {
            const url = unionUrl(this.cfg.base, [...this.subs.values()].map((s) => s.matchers));
            return { url, tag: { url, subs: [...this.subs.keys()] } };
          },
        },
        {
          open: (tag) => this.opened(tag),
          event: (ev) => this.event(ev),
          error: (info) => this.error(info),
          fatal: (info, tag, wasRestart) => this.fatal(info, tag, wasRestart),
        },
      );
      this.stream.start();
    } else if (this.wantedUrl() !== this.url) {
      this.stream.restart();
    } else if (this.url) {
      // Its matchers are in the stream already: open at once.
      this.opened({ url: this.url, subs: [entry.sub] });
    }
    this.coord.changed();
  }

  remove(sub) {
    if (!this.subs.delete(sub)) return;
    if (this.subs.size === 0) {
      this.stream?.close();
      this.coord.groups.delete(this.key);
    } else if (this.wantedUrl() !== this.url) {
      // Fewer matchers: the hub sends fewer events.
      this.stream.restart();
    }
    this.coord.changed();
  }

  wantedUrl() {
    return unionUrl(this.cfg.base, [...this.subs.values()].map((s) => s.matchers));
  }

  catchUp(tab, lastId) {
    if (lastId == null) return;
    const missed = this.position.after(lastId);
    if (missed && missed.length) {
      const subs = [...this.subs.values()].filter((s) => s.tab === tab).map((s) => s.sub);
      for (const ev of missed) this.coord.send(tab, { op: "event", key: this.key, subs, ev });
    }
  }

  openSubs() {
    return [...this.subs.values()].filter((s) => s.state === OPEN);
  }

  opened(tag) {
    this.url = tag.url;
    for (const id of tag.subs) {
      const s = this.subs.get(id);
      if (s && s.state !== OPEN) {
        s.state = OPEN;
        this.coord.send(s.tab, { op: "open", sub: id, lastEventId: this.position.lastId });
      }
    }
    // Someone joined while this connection was being made.
    if (this.wantedUrl() !== this.url) this.stream.restart();
  }

  event(ev) {
    const open = this.openSubs();
    if (open.length === 0) return;
    this.coord.sendAll(
      [...new Set(open.map((s) => s.tab))],
      { op: "event", key: this.key, subs: open.map((s) => s.sub), ev },
    );
  }

  error(info) {
    for (const s of this.subs.values()) {
      if (s.state === OPEN) s.state = CONNECTING;
    }
    this.url = null;
    const subs = [...this.subs.values()];
    this.coord.sendAll(
      [...new Set(subs.map((s) => s.tab))],
      { op: "error", subs: subs.map((s) => s.sub), info: plainInfo(info) },
    );
  }

  fatal(info, tag, wasRestart) {
    // Those the failed connection carried and that no other connection
    // serves are closed: on a restart only the newcomers (a bad matcher
    // must not end the others' stream), else all it carried.
    const failed = tag.subs.filter((id) => {
      const s = this.subs.get(id);
      return s && !(wasRestart && s.state === OPEN);
    });
    for (const id of failed) {
      const s = this.subs.get(id);
      this.subs.delete(id);
      this.coord.send(s.tab, { op: "error", subs: [id], info: plainInfo(info) });
    }
    if (this.subs.size === 0) {
      this.stream.close();
      this.coord.groups.delete(this.key);
    } else if (!wasRestart) {
      // Others joined after the failed attempt began: a new stream for them.
      this.stream.close();
      this.stream = null;
      this.url = null;
      const rest = [...this.subs.values()];
      this.subs.clear();
      for (const s of rest) this.add({ sub: s.sub, tab: s.tab, matchers: s.matchers });
    } else if (this.wantedUrl() !== this.url) {
      this.stream.restart();
    }
    this.coord.changed();
  }

  close() {
    this.stream?.close();
  }
}

function plainInfo(info) {
  // Only what survives postMessage (an Error may not, across browsers).
  return {
    reason: info.reason,
    status: info.status,
    fatal: info.fatal,
    delay: info.delay,
    message: info.error ? String(info.error.message || info.error) : undefined,
  };
}

/**
 * The shared streams of one origin, and who subscribed to them. Runs in
 * the SharedWorker, or in the leader tab; `transport` delivers messages to
 * tabs: `send(tab, msg)` and `sendAll(tabs, msg)`.
 */
class Coordinator {
  constructor(transport) {
    this.transport = transport;
    this.groups = new Map();
    this.watched = new Set();
  }

  send(tab, msg) {
    this.transport.send(tab, msg);
  }

  sendAll(tabs, msg) {
    this.transport.sendAll(tabs, msg);
  }

  changed() {
    this.transport.changed?.();
  }

  /** Starts a group with a known position (a leader taking over). */
  adopt(key, cfg, position) {
    if (!this.groups.has(key)) this.groups.set(key, new Group(this, key, cfg, position));
    return this.groups.get(key);
  }

  handle(msg) {
    switch (msg.op) {
      case "sub": {
        this.watch(msg.tab);
        let group = this.groups.get(msg.key);
        if (!group) {
          const position = this.transport.position?.(msg.key) ?? new Position(msg.lastId || "");
          group = new Group(this, msg.key, msg.cfg, position);
          this.groups.set(msg.key, group);
        }
        group.add({ sub: msg.sub, tab: msg.tab, matchers: msg.matchers }, msg.lastId);
        break;
      }
      case "unsub":
        for (const group of [...this.groups.values()]) group.remove(msg.sub);
        break;
      case "tab-gone":
        this.tabGone(msg.tab);
        break;
      default:
    }
  }

  tabGone(tab) {
    for (const group of [...this.groups.values()]) {
      for (const s of [...group.subs.values()]) if (s.tab === tab) group.remove(s.sub);
    }
  }

  /** Learns of a tab's end, even a crash, by taking the lock it holds while alive. */
  watch(tab) {
    if (this.watched.has(tab) || tab === this.transport.self) return;
    this.watched.add(tab);
    const locks = globalThis.navigator?.locks;
    if (!locks) return;
    locks
      .request(`herald-tab:${tab}`, () => {
        this.watched.delete(tab);
        this.tabGone(tab);
      })
      .catch(() => {});
  }

  /** The subscriptions table, for the tabs to keep (a new leader starts from it). */
  table() {
    const out = [];
    for (const group of this.groups.values()) {
      for (const s of group.subs.values()) {
        out.push({ key: group.key, cfg: group.cfg, sub: s.sub, tab: s.tab, matchers: s.matchers });
      }
    }
    return out;
  }

  close() {
    for (const group of this.groups.values()) group.close();
    this.groups.clear();
  }
}

// ---------------------------------------------------------------------------
// The SharedWorker side: this same module, loaded as a module worker
// ---------------------------------------------------------------------------

const inSharedWorker =
  typeof globalThis.SharedWorkerGlobalScope === "function" &&
  globalThis instanceof globalThis.SharedWorkerGlobalScope;

if (inSharedWorker) {
  const ports = new Map(); // tab -> MessagePort
  const coord = new Coordinator({
    self: null,
    send(tab, msg) {
      ports.get(tab)?.postMessage(msg);
    },
    sendAll(tabs, msg) {
      for (const tab of tabs) ports.get(tab)?.postMessage(msg);
    },
  });
  globalThis.addEventListener("connect", (e) => {
    const port = e.ports[0];
    port.onmessage = ({ data: msg }) => {
      if (msg.op === "hello") {
        ports.set(msg.tab, port);
        coord.watch(msg.tab);
        port.postMessage({ op: "welcome" });
        return;
      }
      if (msg.op === "tab-gone") ports.delete(msg.tab);
      coord.handle(msg);
    };
    port.start();
  });
}

// ---------------------------------------------------------------------------
// TabClient: a tab's side of sharing
// ---------------------------------------------------------------------------

const clients = new Map(); // mode -> TabClient

function tabClient(mode, workerUrl) {
  const name = mode === "worker" ? `worker ${workerUrl}` : mode;
  if (!clients.has(name)) clients.set(name, new TabClient(mode, workerUrl));
  return clients.get(name);
}

/**
 * A tab's subscriptions to shared streams. It holds a Web Lock named after
 * itself while it lives (so the coordinator learns of its end even if it
 * crashes), keeps each stream's position (to resume from, or to take over
 * as leader), and drops an event it has already delivered.
 */
class TabClient {
  constructor(mode, workerUrl) {
    this.mode = mode;
    this.tab = randomId();
    this.sources = new Map(); // sub id -> source internals
    this.positions = new Map(); // key -> Position
    this.table = []; // tabs mode: the leader's last subscriptions table
    this.leaderTab = null;
    this.coord = null; // tabs mode, while this tab leads
    this.ready = this.holdTabLock();
    this.queue = [];
    if (mode === "worker") this.startWorker(workerUrl);
    else this.startTabs();
    globalThis.addEventListener?.("pagehide", () => this.toLeader({ op: "tab-gone", tab: this.tab }));
    globalThis.addEventListener?.("pageshow", (e) => {
      // Back from the back/forward cache: subscribe again.
      if (!e.persisted) return;
      if (this.mode === "worker") this.port?.postMessage({ op: "hello", tab: this.tab });
      for (const src of this.sources.values()) this.announce(src);
    });
  }

  holdTabLock() {
    const locks = globalThis.navigator?.locks;
    if (!locks) return Promise.resolve();
    return new Promise((held) => {
      locks
        .request(`herald-tab:${this.tab}`, () => {
          held();
          return new Promise(() => {}); // held until the tab goes
        })
        .catch(() => held());
    });
  }

  startWorker(workerUrl) {
    const worker = new SharedWorker(workerUrl, { type: "module", name: "herald/1" });
    worker.onerror = () => {
      if (this.welcomed) return;
      // The script did not load as a worker: its sources go another way.
      clients.delete(`worker ${workerUrl}`);
      for (const src of this.sources.values()) src.fallback();
      this.sources.clear();
    };
    this.port = worker.port;
    this.port.onmessage = ({ data }) => this.receive(data);
    this.port.start();
    this.ready.then(() => this.port.postMessage({ op: "hello", tab: this.tab }));
  }

  startTabs() {
    this.channel = new BroadcastChannel("herald/1");
    this.channel.onmessage = ({ data: msg }) => {
      if (msg.to === "leader") {
        if (this.coord) this.coord.handle(msg);
        return;
      }
      if (msg.op === "table") {
        this.table = msg.table;
        this.leaderTab = msg.leader;
        return;
      }
      if (msg.op === "leader") {
        this.leaderTab = msg.leader;
        // A new leader knows the table but not where each tab stands, nor
        // subscriptions made since: tell it.
        for (const src of this.sources.values()) this.announce(src);
        return;
      }
      if (msg.to === this.tab || (Array.isArray(msg.to) && msg.to.includes(this.tab))) this.receive(msg);
    };
    this.ready.then(() =>
      navigator.locks.request("herald-leader/1", () => {
        this.lead();
        return new Promise(() => {}); // leads until the tab goes
      }),
    );
  }

  /** This tab is the leader now: start the shared streams from what it knows. */
  lead() {
    const transport = {
      self: this.tab,
      position: (key) => this.positionFor(key, true),
      send: (tab, msg) => this.post(tab, msg),
      sendAll: (tabs, msg) => this.post(tabs, msg),
      changed: () => {
        this.table = this.coord.table();
        this.channel.postMessage({ op: "table", leader: this.tab, table: this.table });
      },
    };
    this.coord = new Coordinator(transport);
    const old = this.leaderTab;
    // The previous leader's subscriptions went with it; the rest resume
    // from this tab's position (its last delivered id and recent events).
    const byKey = new Map();
    for (const row of this.table) {
      if (row.tab === old || row.tab === this.tab) continue;
      if (!byKey.has(row.key)) byKey.set(row.key, { cfg: row.cfg, rows: [] });
      byKey.get(row.key).rows.push(row);
    }
    for (const [key, { cfg, rows }] of byKey) {
      const group = this.coord.adopt(key, cfg, this.positionFor(key, true));
      for (const row of rows) {
        this.coord.watch(row.tab);
        group.add({ sub: row.sub, tab: row.tab, matchers: row.matchers });
      }
    }
    for (const src of this.sources.values()) this.announce(src);
    this.leaderTab = this.tab;
    this.channel.postMessage({ op: "leader", leader: this.tab });
    transport.changed();
  }

  positionFor(key, copy = false) {
    if (!this.positions.has(key)) this.positions.set(key, new Position());
    const p = this.positions.get(key);
    if (!copy) return p;
    // The group's position starts as this tab's: same id, same recent past.
    const q = new Position(p.lastId);
    for (const id of p.recent.order) q.recent.add(id);
    q.ring = p.ring.slice();
    return q;
  }

  post(to, msg) {
    const mine = to === this.tab || (Array.isArray(to) && to.includes(this.tab));
    const others = Array.isArray(to) ? to.filter((t) => t !== this.tab) : to === this.tab ? [] : [to];
    if (others.length) this.channel.postMessage({ ...msg, to: others });
    if (mine) queueMicrotask(() => this.receive(msg));
  }

  toLeader(msg) {
    if (this.mode === "worker") {
      this.port?.postMessage(msg);
    } else if (this.coord) {
      this.coord.handle(msg);
    } else {
      this.channel?.postMessage({ ...msg, to: "leader" });
    }
  }

  subscribe(src) {
    this.sources.set(src.sub, src);
    if (src.lastEventId && !this.positions.has(src.key)) this.positions.set(src.key, new Position(src.lastEventId));
    this.ready.then(() => this.announce(src));
  }

  announce(src) {
    if (src.closed) return;
    this.toLeader({
      op: "sub",
      to: "leader",
      sub: src.sub,
      tab: this.tab,
      key: src.key,
      cfg: src.cfg,
      matchers: src.matchers,
      lastId: this.positions.get(src.key)?.lastId ?? null,
    });
  }

  unsubscribe(src) {
    this.sources.delete(src.sub);
    this.toLeader({ op: "unsub", sub: src.sub });
  }

  receive(msg) {
    switch (msg.op) {
      case "event": {
        const pos = this.positionFor(msg.key);
        if (!pos.take(msg.ev)) return; // delivered already (a takeover's overlap)
        for (const id of msg.subs) this.sources.get(id)?.deliver(msg.ev);
        break;
      }
      case "welcome":
        this.welcomed = true;
        break;
      case "open":
        this.sources.get(msg.sub)?.opened();
        break;
      case "error":
        for (const id of msg.subs) this.sources.get(id)?.failed(msg.info);
        break;
      default:
    }
  }
}

// ---------------------------------------------------------------------------
// HeraldEventSource
// ---------------------------------------------------------------------------

/** An `error` event: `status` is the HTTP status when there was one; `fatal` means CLOSED, no reconnect. */
export class HeraldErrorEvent extends Event {
  constructor(type, info = {}) {
    super(type);
    this.status = info.status;
    this.fatal = !!info.fatal;
    this.reason = info.reason;
    this.delay = info.delay;
    this.message = info.message ?? (info.error ? String(info.error.message || info.error) : undefined);
  }
}

/** Herald's in-band gap report: the hub did not know `lastEventId`, and replays from `resumedFrom`. */
export class GapEvent extends Event {
  constructor(type, init = {}) {
    super(type);
    this.lastEventId = init.lastEventId ?? "";
    this.resumedFrom = init.resumedFrom ?? "earliest";
    this.data = init.data ?? "";
  }
}

function chooseShare(options, workerUrl) {
  let share = options.share ?? "auto";
  if (share === false) share = "none";
  if (share === true) share = "auto";
  // A token callback and an explicit cursor belong to one subscriber, and
  // a custom fetch to one realm: those streams are not shared.
  if (share === "auto" && (options.token || options.lastEventId || options.fetch)) return "none";
  const hasWorker = typeof globalThis.SharedWorker === "function";
  const hasTabs =
    typeof globalThis.BroadcastChannel === "function" && !!globalThis.navigator?.locks && !!globalThis.document;
  let sameOrigin = false;
  try {
    sameOrigin = !!globalThis.location && new URL(workerUrl).origin === globalThis.location.origin;
  } catch {
    // no location: not a page
  }
  if (share === "auto") return hasWorker && sameOrigin ? "worker" : hasTabs ? "tabs" : "none";
  if (share === "worker" && !(hasWorker && sameOrigin)) return hasTabs ? "tabs" : "none";
  if (share === "tabs" && !hasTabs) return "none";
  return share;
}

/**
 * The `EventSource` API over fetch, with headers, a token callback,
 * backoff, gap events, and one connection per hub shared by all tabs.
 *
 * ```js
 * import { HeraldEventSource as EventSource } from "/herald.js";
 * const source = new EventSource("/.well-known/mercure?match=/books/1", {
 *   headers: { Authorization: `Bearer ${token}` },
 * });
 * source.onmessage = (e) => console.log(e.lastEventId, e.data);
 * source.addEventListener("gap", (e) => refetchEverything());
 * ```
 */
export class HeraldEventSource extends EventTarget {
  static CONNECTING = CONNECTING;
  static OPEN = OPEN;
  static CLOSED = CLOSED;
  CONNECTING = CONNECTING;
  OPEN = OPEN;
  CLOSED = CLOSED;

  #handlers = { open: null, message: null, error: null, gap: null };
  #options;
  #origin;
  #workerUrl;
  #cfg;
  #stream = null;
  #client = null;
  #internals = null;
  #lastEventId = "";

  constructor(url, options = {}) {
    super();
    /** The absolute URL of the stream. */
    this.url = new URL(String(url), globalThis.location?.href).href;
    this.withCredentials = !!options.withCredentials;
    this.readyState = CONNECTING;
    this.#options = options;
    this.#origin = new URL(this.url).origin;
    this.#workerUrl = options.workerUrl
      ? new URL(String(options.workerUrl), globalThis.location?.href).href
      : import.meta.url;
    this.#cfg = {
      headers: headerEntries(options.headers),
      withCredentials: this.withCredentials,
      retry: options.retry ?? defaults.retry,
      maxRetry: options.maxRetry ?? defaults.maxRetry,
      backoffFactor: options.backoffFactor ?? defaults.backoffFactor,
      jitter: options.jitter ?? defaults.jitter,
    };
    this.#start(chooseShare(options, this.#workerUrl));
  }

  #start(mode) {
    /** How this source reaches the hub: "worker", "tabs" or "none" (its own connection). */
    this.share = mode;
    const options = this.#options;
    const cfg = this.#cfg;
    const emit = (ev) => this.#deliver(ev);
    if (mode === "none") {
      this.#lastEventId = options.lastEventId || "";
      this.#stream = new Stream(
        {
          ...cfg,
          token: options.token,
          fetch: options.fetch,
          lastEventId: options.lastEventId || "",
          prepare: () => ({ url: this.url }),
        },
        {
          open: () => this.#opened(),
          event: emit,
          error: (info) => this.#failed(info),
          fatal: (info) => this.#failed(info),
        },
      );
      this.#stream.start();
      return;
    }
    const { base, matchers } = splitUrl(this.url);
    const shared = { ...cfg, base };
    const key = JSON.stringify([base, cfg.headers, cfg.withCredentials, cfg.retry, cfg.maxRetry, cfg.backoffFactor, cfg.jitter]);
    this.#internals = {
      sub: randomId(),
      key,
      cfg: shared,
      matchers,
      lastEventId: options.lastEventId || "",
      closed: false,
      deliver: emit,
      opened: () => this.#opened(),
      failed: (info) => this.#failed(info),
      fallback: () => this.#fallback(),
    };
    this.#client = tabClient(mode, this.#workerUrl);
    this.#client.subscribe(this.#internals);
  }

  /** The SharedWorker could not start (a CSP, a bundled copy): share through tabs, or not at all. */
  #fallback() {
    if (this.readyState === CLOSED) return;
    this.#client = null;
    this.#internals = null;
    this.#start(chooseShare({ ...this.#options, share: "tabs" }, this.#workerUrl));
  }

  /** The id of the last event this source received (not in the EventSource API). */
  get lastEventId() {
    return this.#lastEventId;
  }

  get onopen() {
    return this.#handlers.open?.fn ?? null;
  }
  set onopen(fn) {
    this.#setHandler("open", fn);
  }
  get onmessage() {
    return this.#handlers.message?.fn ?? null;
  }
  set onmessage(fn) {
    this.#setHandler("message", fn);
  }
  get onerror() {
    return this.#handlers.error?.fn ?? null;
  }
  set onerror(fn) {
    this.#setHandler("error", fn);
  }
  get ongap() {
    return this.#handlers.gap?.fn ?? null;
  }
  set ongap(fn) {
    this.#setHandler("gap", fn);
  }

  #setHandler(type, fn) {
    const old = this.#handlers[type];
    if (old) this.removeEventListener(type, old.listener);
    // Like an IDL event handler: one listener per type, set or replaced.
    this.#handlers[type] = typeof fn === "function" ? { fn, listener: (e) => fn.call(this, e) } : null;
    if (this.#handlers[type]) this.addEventListener(type, this.#handlers[type].listener);
  }

  /** Closes the stream for good: no more events, no reconnect. */
  close() {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.#stream?.close();
    if (this.#internals) {
      this.#internals.closed = true;
      this.#client.unsubscribe(this.#internals);
    }
  }

  #opened() {
    if (this.readyState !== CONNECTING) return;
    this.readyState = OPEN;
    this.dispatchEvent(new Event("open"));
  }

  #failed(info) {
    if (this.readyState === CLOSED) return;
    if (info.fatal) {
      this.readyState = CLOSED;
      this.#stream?.close();
      if (this.#internals) {
        this.#internals.closed = true;
        this.#client.unsubscribe(this.#internals);
      }
    } else {
      this.readyState = CONNECTING;
    }
    this.dispatchEvent(new HeraldErrorEvent("error", info));
  }

  #deliver(ev) {
    const origin = this.#origin;
    if (this.readyState === CLOSED) return;
    this.#lastEventId = ev.lastEventId;
    if (ev.type === "mercure") {
      let report = null;
      try {
        report = JSON.parse(ev.data);
      } catch {
        // not a report we know: delivered as a "mercure" event below
      }
      if (report && report.type === "gap") {
        this.dispatchEvent(
          new GapEvent("gap", {
            lastEventId: report.last_event_id,
            resumedFrom: report.resumed_from,
            data: ev.data,
          }),
        );
        return;
      }
    }
    this.dispatchEvent(new MessageEvent(ev.type, { data: ev.data, lastEventId: ev.lastEventId, origin }));
  }
}

export { HeraldEventSource as EventSource };
export default HeraldEventSource;
