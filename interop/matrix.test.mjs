// The client matrix: the SSE clients people use, each against one real hub
// through its own TCP proxy. Every client receives the same events (plain,
// multi-line, typed, JSON, Unicode, an AI-token stream ending in [DONE],
// private updates for the clients that can send a bearer token),
// sits through heartbeats, is cut off (on a quiet stream, then in the
// middle of a burst), misses events while away, resumes with
// Last-Event-ID, and must have dispatched exactly the published
// sequence (type, data, id): no gap, no duplicate, no empty or spurious
// event. One test per client says which one differed, and how.
//
// What each client needs (the Python venv, the Rust client) is built by
// clients/setup.sh, which scripts/test runs first. docs/clients.md shows
// how to use each of them with Herald.
import { describe, before, after, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startHub } from "./lib/hub.mjs";
import { startProxy, until } from "./lib/proxy.mjs";
import { launchChromium, metric, mintToken } from "./lib/herald-js.mjs";
import {
  processClient,
  browserClient,
  serveFetchEventSource,
  describeDifference,
  heraldBin,
  venvPython,
  rustClient,

} from "./lib/matrix.mjs";

const TOPIC = "/matrix/chat";
const PATH = `/.well-known/mercure?match=${encodeURIComponent(TOPIC)}`;
// Browsers and the eventsource package dispatch a typed event only to a
// listener for its type: these are all the types published below.
const TYPES = ["message", "update", "status"];

// [fields, the data every client must see]
const msg = (data, extra = []) => [[["data", data], ...extra], data.replace(/\r\n|\r/g, "\n")];
const tokens = (words) => [
  ...words.map((w) => msg(JSON.stringify({ choices: [{ index: 0, delta: { content: w } }] }))),
  msg("[DONE]"),
];
const FIRST = [
  msg("hello, world"),
  msg("line one\nline two\r\nline three"),
  msg("book 1 is back in stock", [["type", "update"]]),
  msg('{"title":"Dune","tags":["sf","classic"],"stock":{"count":3,"price":9.5}}'),
  msg("héllo wörld — naïve café ✓ ½ €"),
  msg("emoji 🎉🦀👍🏽 family 👨‍👩‍👧 flag 🇫🇷"),
  msg("中文 日本語のテキスト 한국어 ✈ 𠜎𠜱", [["type", "status"]]),
  msg("private: for token holders only", [["private", "on"]]),
  ...tokens(["Hel", "lo", ",", " how", " can", " I", " help", " today", "?", " 👋", " 你好", "\n\n", "**bold**"]),
];
const WHILE_AWAY = [
  msg("missed while away 1", [["type", "update"]]),
  msg("missed while away 2\nwith a second line"),
  msg("private, missed while away", [["type", "update"], ["private", "on"]]),
  msg("離線 🚫 offline", [["type", "status"]]),
];
const LIVE = [msg("live again"), ...tokens(["The", " answer", " is", " 42", "."])];
// A second cut lands in the middle of this burst, whatever each client had
// received by then.
const BURST = tokens(Array.from({ length: 24 }, (_, i) => ` t${i}`));
const CUT_AFTER = 8;

const HEARTBEAT_SECS = 1;

// name → { bearer: whether it sends the subscriber token (and so must get
// the private updates too), start(base, token) }, `base` being the proxy in
// front of the hub. Process clients take the token from HERALD_TOKEN.
function clients(browser) {
  const proc = (cmd, args, options = {}) => ({
    bearer: true,
    start: (base, token) =>
      processClient(cmd, args(base + PATH), { ...options, env: { ...options.env, HERALD_TOKEN: token } }),
  });
  const py = (script) => proc(venvPython, (url) => [join("clients", script), url]);
  return {
    // EventSource cannot send a header: it reads public updates only here
    // (a cookie carries its token, see docs/clients.md).
    "Chromium EventSource": {
      bearer: false,
      start: (base) =>
        browserClient(browser, base, (page) =>
          page.evaluate(
            ([url, types]) => {
              window.got = [];
              const source = new EventSource(url);
              for (const type of types) {
                source.addEventListener(type, (e) => window.got.push({ type: e.type, data: e.data, id: e.lastEventId }));
              }
            },
            [PATH, TYPES],
          ),
        ),
    },
    "herald.js in Chromium": {
      bearer: true,
      start: (base, token) =>
        browserClient(browser, base, (page) =>
          page.evaluate(
            async ([url, types, token]) => {
              window.got = [];
              const { HeraldEventSource } = await import("/herald.js");
              const source = new HeraldEventSource(url, { headers: { Authorization: `Bearer ${token}` } });
              for (const type of types) {
                source.addEventListener(type, (e) => window.got.push({ type: e.type, data: e.data, id: e.lastEventId }));
              }
            },
            [PATH, TYPES, token],
          ),
        ),
    },
    "@microsoft/fetch-event-source in Chromium": {
      bearer: true,
      start: (base, token) =>
        browserClient(browser, base, async (page) => {
          await serveFetchEventSource(page, base);
          await page.evaluate(
            async ([url, token]) => {
              window.got = [];
              const { fetchEventSource, EventStreamContentType } = await import("/vendor/fetch-event-source/index.js");
              // As docs/clients.md shows (its README's pattern): a bad
              // answer is fatal, a clean end is retried like an error,
              // and an error is retried after the server's retry: delay.
              class Fatal extends Error {}
              fetchEventSource(url, {
                headers: { Authorization: `Bearer ${token}` },
                async onopen(res) {
                  const type = res.headers.get("content-type") ?? "";
                  if (!res.ok || !type.startsWith(EventStreamContentType)) throw new Fatal(`status ${res.status}`);
                },
                onmessage(m) {
                  window.got.push({ type: m.event || "message", data: m.data, id: m.id });
                },
                onclose() {
                  throw new Error("the hub ended the stream");
                },
                onerror(err) {
                  console.log(`onerror: ${err.message}`);
                  if (err instanceof Fatal) throw err;
                },
              });
            },
            [PATH, token],
          );
        }),
    },
    "eventsource (npm) in Node": proc(process.execPath, (url) => [join("clients", "eventsource.mjs"), url, TYPES.join(",")]),
    "eventsource-parser over Node's fetch": proc(process.execPath, (url) => [join("clients", "eventsource-parser.mjs"), url]),
    "httpx-sse (Python)": py("httpx_sse_client.py"),
    "sseclient-py over requests (Python)": py("sseclient_py_client.py"),
    "aiohttp-sse-client (Python)": py("aiohttp_sse_client_client.py"),
    "reqwest-eventsource (Rust)": proc(rustClient, (url) => [url]),
    "curl -N": proc("bash", (url) => [join("clients", "curl.sh"), url, curlRaw], {
      env: { HERALD_BIN: heraldBin },
      map: (e) => ({ type: e.type, data: e.data, id: e.last_event_id }),
    }),
  };
}

// What a client must dispatch: every update, less the private ones when it
// sends no token.
function want(published, bearer) {
  return published.filter((e) => bearer || !e.private).map(({ type, data, id }) => ({ type, data, id }));
}

let curlDir;
let curlRaw;

describe("client matrix: every client gets exactly the published events across heartbeats and a cut", () => {
  const results = new Map(); // name -> {events, log}
  let expected = [];
  let heartbeatsSeen = 0;
  const names = Object.keys(clients(null));

  before(
    async () => {
      curlDir = mkdtempSync(join(tmpdir(), "herald-matrix-"));
      curlRaw = join(curlDir, "curl.raw");
      const hub = await startHub({ retryMs: 200, heartbeatSecs: HEARTBEAT_SECS });
      const browser = await launchChromium();
      const running = []; // {name, proxy, client}
      try {
        const token = mintToken(hub, ["--subscribe", TOPIC]);
        for (const [name, { bearer, start }] of Object.entries(clients(browser))) {
          const proxy = await startProxy(hub.port);
          const client = await start(proxy.base, token);
          running.push({ name, bearer, proxy, client });
        }
        // Subscribed before the first publish: the first connection has no
        // Last-Event-ID, so it only gets what is published after it.
        const lagging = () => running.filter((r) => r.proxy.connections() === 0).map((r) => r.name);
        await until(
          "every client to subscribe",
          async () => (await metric(hub, "herald_subscribers")) >= running.length && lagging().length === 0,
          60000,
        ).catch((e) => {
          throw new Error(`${e.message}; not connected: ${lagging().join(", ") || "none"}`);
        });

        const publish = async (batch) => {
          for (const [fields, data] of batch) {
            const all = [["topic", TOPIC], ...fields];
            const id = await hub.publish(all);
            const type = fields.find(([k]) => k === "type")?.[1] ?? "message";
            expected.push({ type, data, id, private: fields.some(([k]) => k === "private") });
          }
        };
        // Until every client has as many events as it should have.
        const settle = async (ms) => {
          const deadline = Date.now() + ms;
          while (Date.now() < deadline) {
            const counts = await Promise.all(running.map(async (r) => (await r.client.snapshot()).length));
            if (counts.every((n, i) => n >= want(expected, running[i].bearer).length)) return;
            await new Promise((r) => setTimeout(r, 100));
          }
          // Each client's own test reports what it is missing.
        };

        await publish(FIRST);
        await settle(20000);

        // A few heartbeats on an otherwise quiet stream: nothing to dispatch.
        await new Promise((r) => setTimeout(r, (HEARTBEAT_SECS * 3 + 0.5) * 1000));

        // Cut every client off, publish while they are away, let them back.
        for (const r of running) r.proxy.cut();
        await until(
          "every client to try to reconnect",
          () => running.every((r) => r.proxy.waiting() > 0),
          10000,
        ).catch(() => {}); // a client that never tries is reported by its own test
        await publish(WHILE_AWAY);
        for (const r of running) r.proxy.release();
        await until("every client to be connected again", () => running.every((r) => r.proxy.connections() > 0), 15000).catch(
          () => {},
        );
        await publish(LIVE);
        await settle(30000);

        // Cut again mid-burst: events in flight, some delivered, some not.
        await publish(BURST.slice(0, CUT_AFTER));
        for (const r of running) r.proxy.cut();
        await publish(BURST.slice(CUT_AFTER));
        for (const r of running) r.proxy.release();
        await settle(30000);
        // One more heartbeat: anything spurious after the last event shows.
        await new Promise((r) => setTimeout(r, HEARTBEAT_SECS * 1000 + 500));

        for (const r of running) {
          results.set(r.name, { events: await r.client.snapshot(), log: r.client.log, bearer: r.bearer });
          if (process.env.HERALD_MATRIX_VERBOSE === "1") {
            console.error(`--- ${r.name}: ${results.get(r.name).events.length} events\n${r.client.log.join("\n")}`);
          }
        }
      } finally {
        for (const r of running) await r.client.stop().catch(() => {});
        for (const r of running) await r.proxy.close();
        await browser.close();
        await hub.stop();
      }
      if (existsSync(curlRaw)) {
        heartbeatsSeen = readFileSync(curlRaw, "utf8").split("\n").filter((l) => l.startsWith(":")).length;
      }
    },
    { timeout: 150000 },
  );

  after(() => {
    if (curlDir) rmSync(curlDir, { recursive: true, force: true });
  });

  it("the hub sent heartbeats while the clients sat idle (as curl saw them)", () => {
    assert.ok(heartbeatsSeen >= 3, `curl saw ${heartbeatsSeen} heartbeat comments`);
  });

  for (const name of names) {
    it(name, () => {
      const result = results.get(name);
      assert.ok(result, `${name} did not run`);
      const diff = describeDifference(result.events, want(expected, result.bearer));
      if (diff) {
        const log = result.log.slice(-30).join("\n    ");
        assert.fail(`${name}: ${diff}\n  its log (last lines):\n    ${log}`);
      }
    });
  }
});


