// The client matrix: the SSE clients people use, each against one real hub
// through its own TCP proxy. Every client receives the same events (plain,
// multi-line, typed, JSON, Unicode, an AI-token stream ending in [DONE]),
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
import { launchChromium, metric } from "./lib/herald-js.mjs";
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
  ...tokens(["Hel", "lo", ",", " how", " can", " I", " help", " today", "?", " 👋", " 你好", "\n\n", "**bold**"]),
];
const WHILE_AWAY = [
  msg("missed while away 1", [["type", "update"]]),
  msg("missed while away 2\nwith a second line"),
  msg("離線 🚫 offline", [["type", "status"]]),
];
const LIVE = [msg("live again"), ...tokens(["The", " answer", " is", " 42", "."])];
// A second cut lands in the middle of this burst, whatever each client had
// received by then.
const BURST = tokens(Array.from({ length: 24 }, (_, i) => ` t${i}`));
const CUT_AFTER = 8;

const HEARTBEAT_SECS = 1;

// name → how to start it, given its base URL (the proxy in front of the hub).
function clients(browser) {
  const py = (script) => (base) => processClient(venvPython, [join("clients", script), base + PATH]);
  return {
    "Chromium EventSource": (base) =>
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
    "herald.js in Chromium": (base) =>
      browserClient(browser, base, (page) =>
        page.evaluate(
          async ([url, types]) => {
            window.got = [];
            const { HeraldEventSource } = await import("/herald.js");
            const source = new HeraldEventSource(url);
            for (const type of types) {
              source.addEventListener(type, (e) => window.got.push({ type: e.type, data: e.data, id: e.lastEventId }));
            }
          },
          [PATH, TYPES],
        ),
      ),
    "@microsoft/fetch-event-source in Chromium": (base) =>
      browserClient(browser, base, async (page) => {
        await serveFetchEventSource(page, base);
        await page.evaluate(async (url) => {
          window.got = [];
          const { fetchEventSource } = await import("/vendor/fetch-event-source/index.js");
          // As its README shows: no onerror means "retry after the
          // server's retry: interval".
          fetchEventSource(url, {
            onmessage(m) {
              window.got.push({ type: m.event || "message", data: m.data, id: m.id });
            },
          });
        }, PATH);
      }),
    "eventsource (npm) in Node": (base) =>
      processClient(process.execPath, [join("clients", "eventsource.mjs"), base + PATH, TYPES.join(",")]),
    "eventsource-parser over Node's fetch": (base) =>
      processClient(process.execPath, [join("clients", "eventsource-parser.mjs"), base + PATH]),
    "httpx-sse (Python)": py("httpx_sse_client.py"),
    "sseclient-py over requests (Python)": py("sseclient_py_client.py"),
    "aiohttp-sse-client (Python)": py("aiohttp_sse_client_client.py"),
    "reqwest-eventsource (Rust)": (base) => processClient(rustClient, [base + PATH]),
    "curl -N": (base) =>
      processClient("bash", [join("clients", "curl.sh"), base + PATH, curlRaw], {
        env: { HERALD_BIN: heraldBin },
        map: (e) => ({ type: e.type, data: e.data, id: e.last_event_id }),
      }),
  };
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
        for (const [name, start] of Object.entries(clients(browser))) {
          const proxy = await startProxy(hub.port);
          const client = await start(proxy.base);
          running.push({ name, proxy, client });
        }
        const lagging = () => running.filter((r) => r.proxy.connections() === 0).map((r) => r.name);
        // Subscribed before the first publish: the first connection has no
        // Last-Event-ID, so it only gets what is published after it.
        await until(
          `every client to subscribe (no connection yet: ${lagging().join(", ") || "none"})`,
          async () => (await metric(hub, "herald_subscribers")) >= running.length && lagging().length === 0,
          60000,
        );

        const publish = async (batch) => {
          for (const [fields, data] of batch) {
            const all = [["topic", TOPIC], ...fields];
            const id = await hub.publish(all);
            const type = fields.find(([k]) => k === "type")?.[1] ?? "message";
            expected.push({ type, data, id });
          }
        };
        const settle = async (count, ms) => {
          const deadline = Date.now() + ms;
          while (Date.now() < deadline) {
            const counts = await Promise.all(running.map(async (r) => (await r.client.snapshot()).length));
            if (counts.every((n) => n >= count)) return;
            await new Promise((r) => setTimeout(r, 100));
          }
          // Each client's own test reports what it is missing.
        };

        await publish(FIRST);
        await settle(expected.length, 20000);

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
        await settle(expected.length, 30000);

        // Cut again mid-burst: events in flight, some delivered, some not.
        await publish(BURST.slice(0, CUT_AFTER));
        for (const r of running) r.proxy.cut();
        await publish(BURST.slice(CUT_AFTER));
        for (const r of running) r.proxy.release();
        await settle(expected.length, 30000);
        // One more heartbeat: anything spurious after the last event shows.
        await new Promise((r) => setTimeout(r, HEARTBEAT_SECS * 1000 + 500));

        for (const r of running) {
          results.set(r.name, { events: await r.client.snapshot(), log: r.client.log });
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
      const diff = describeDifference(result.events, expected);
      if (diff) {
        const log = result.log.slice(-30).join("\n    ");
        assert.fail(`${name}: ${diff}\n  its log (last lines):\n    ${log}`);
      }
    });
  }
});


