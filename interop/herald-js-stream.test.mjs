// herald.js as one stream: a bearer token in `headers` where EventSource
// cannot send one, a token callback that renews before `exp`, the gap
// report as a `gap` event, reconnect delays that follow `retry:`, the
// backoff and its cap, and the statuses that end a stream for good.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startHub } from "./lib/hub.mjs";
import { startProxy, until } from "./lib/proxy.mjs";
import { launchChromium, openTab, log, metric, mintToken } from "./lib/herald-js.mjs";

async function withBrowser(fn, hubOptions = {}) {
  const hub = await startHub({ retryMs: 200, ...hubOptions });
  const browser = await launchChromium();
  try {
    await fn(hub, await browser.newContext());
  } finally {
    await browser.close();
    await hub.stop();
  }
}

const sub = (topic) => `/.well-known/mercure?match=${encodeURIComponent(topic)}`;

test("a bearer token in headers reads private updates; EventSource without it does not", { timeout: 60000 }, async () => {
  await withBrowser(async (hub, context) => {
    const page = await openTab(context, hub.base);
    const token = mintToken(hub, ["--subscribe", "/secret/*", "--match-type", "urlpattern"]);
    await page.evaluate(
      ([u, t]) => {
        window.listen("h", u, { headers: { Authorization: `Bearer ${t}` } });
        window.plain = [];
        window.plainOpen = false;
        const es = new EventSource(u);
        es.onopen = () => (window.plainOpen = true);
        es.onmessage = (e) => window.plain.push(e.data);
      },
      [sub("/secret/1"), token],
    );
    await until("both open", () =>
      page.evaluate(() => window.logs.h.opens === 1 && window.plainOpen),
    );
    const hidden = await hub.publish([["topic", "/secret/1"], ["data", "private"], ["private", "on"]]);
    const shown = await hub.publish([["topic", "/secret/1"], ["data", "public"]]);
    await until("the public event at EventSource", () => page.evaluate(() => window.plain.length === 1));
    await until("both events at herald.js", async () => (await log(page, "h")).events.length === 2);
    const h = await log(page, "h");
    assert.deepEqual(h.events.map((e) => [e.id, e.data]), [[hidden, "private"], [shown, "public"]]);
    assert.deepEqual(await page.evaluate(() => window.plain), ["public"]);
  });
});

test("a token callback renews the token before exp: no error, no event lost", { timeout: 60000 }, async () => {
  await withBrowser(async (hub, context) => {
    const page = await openTab(context, hub.base);
    let minted = 0;
    await page.exposeFunction("mint", () => {
      minted++;
      return mintToken(hub, ["--subscribe", "*", "--ttl", "4"]);
    });
    await page.evaluate((u) => window.listen("t", u, { token: () => window.mint() }), sub("/private/1"));
    await until("open", async () => (await log(page, "t")).opens === 1);
    // Seven seconds of private updates: the first token ends at 4 s.
    const ids = [];
    const end = Date.now() + 7000;
    while (Date.now() < end) {
      ids.push(await hub.publish([["topic", "/private/1"], ["data", `p${ids.length}`], ["private", "on"]]));
      await new Promise((r) => setTimeout(r, 100));
    }
    await until("every event", async () => (await log(page, "t")).events.length >= ids.length);
    const t = await log(page, "t");
    assert.deepEqual(t.events.map((e) => e.id), ids);
    assert.deepEqual(t.errors, [], "renewed before the hub ended the stream");
    assert.ok(minted >= 2, `${minted} tokens minted`);
    const text = await hub.metrics();
    assert.ok(!/herald_disconnects_total\{reason="token_expired"\} [1-9]/.test(text), "no stream outlived its token");
  });
});

test("an unknown Last-Event-ID is reported as a gap event, then the replay", { timeout: 60000 }, async () => {
  await withBrowser(async (hub, context) => {
    const page = await openTab(context, hub.base);
    const first = await hub.publish([["topic", "/g"], ["data", "retained"]]);
    await page.evaluate((u) => window.listen("g", u, { lastEventId: "urn:uuid:not-here" }), sub("/g"));
    await until("the replay", async () => (await log(page, "g")).events.length === 1);
    const g = await log(page, "g");
    assert.deepEqual(g.gaps, [{ lastEventId: "urn:uuid:not-here", resumedFrom: "earliest" }]);
    assert.deepEqual(g.events.map((e) => [e.type, e.id]), [["message", first]], "the report is not a message");
  });
});

// Mean of the delays between connection attempts, from the cut on.
function delaysAfter(attempts, from) {
  const times = [from, ...attempts.filter((t) => t > from)];
  return times.slice(1).map((t, i) => t - times[i]);
}

test("reconnects wait retry: (200 ms from the hub), doubling, capped at maxRetry", { timeout: 60000 }, async () => {
  await withBrowser(async (hub, context) => {
    const gate = await startProxy(hub.port);
    try {
      // The page comes through the gate too, so its stream is same-origin.
      const page = await openTab(context, gate.base);
      await page.evaluate((u) => window.listen("b", u, { maxRetry: 1000, jitter: 0.2 }), sub("/b"));
      await until("open", async () => (await log(page, "b")).opens === 1);

      const expected = [200, 400, 800, 1000, 1000];
      gate.refuse();
      const cut = Date.now();
      gate.cut({ hold: false });
      await until("six attempts", () => gate.attempts.filter((t) => t > cut).length >= 6, 15000);
      const delays = delaysAfter(gate.attempts, cut).slice(0, expected.length);
      for (const [i, want] of expected.entries()) {
        // Jitter takes up to 20% off; timers and connects add a little.
        assert.ok(
          delays[i] >= want * 0.8 - 30 && delays[i] <= want + 300,
          `delay ${i}: ${delays[i]} ms, want ${want * 0.8}..${want} (all: ${delays})`,
        );
      }

      // Back: the stream opens again, and the backoff starts over.
      gate.accept();
      await until("open again", async () => (await log(page, "b")).opens === 2, 5000);
      const id = await hub.publish([["topic", "/b"], ["data", "back"]]);
      await until("the event", async () => (await log(page, "b")).events.length === 1);
      assert.equal((await log(page, "b")).events[0].id, id);
      gate.refuse();
      const again = Date.now();
      gate.cut({ hold: false });
      await until("two attempts", () => gate.attempts.filter((t) => t > again).length >= 2, 5000);
      const [d0, d1] = delaysAfter(gate.attempts, again);
      assert.ok(d0 >= 130 && d0 <= 500, `first delay after a good connection: ${d0} ms`);
      assert.ok(d1 >= 290 && d1 <= 700, `second: ${d1} ms`);
      const b = await log(page, "b");
      assert.ok(b.errors.every((e) => !e.fatal && e.readyState === 0), JSON.stringify(b.errors));
    } finally {
      await gate.close();
    }
  });
});

// A server answering every request with one status (and counting them),
// open to any origin.
async function startStatusServer() {
  const counts = {};
  const server = http.createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    counts[path] = (counts[path] || 0) + 1;
    const headers = { "access-control-allow-origin": "*" };
    const m = path.match(/^\/status\/(\d+)$/);
    if (m) {
      res.writeHead(Number(m[1]), headers);
      res.end(Number(m[1]) === 204 ? undefined : "no");
    } else if (path === "/html") {
      res.writeHead(200, { ...headers, "content-type": "text/html" });
      res.end("<p>not a stream</p>");
    } else {
      res.writeHead(404, headers);
      res.end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { base: `http://127.0.0.1:${server.address().port}`, counts, close: () => new Promise((r) => server.close(r)) };
}

for (const share of ["none", "worker", "tabs"]) {
  test(`${share}: 204, 401, 403, 404 and a 200 that is not a stream end the source; 503 is retried`, { timeout: 60000 }, async () => {
    const server = await startStatusServer();
    try {
      await withBrowser(async (hub, context) => {
        const page = await openTab(context, hub.base);
        const cases = {
          s204: `${server.base}/status/204`,
          s401: `${server.base}/status/401`,
          s403: `${server.base}/status/403`,
          s404: `${server.base}/status/404`,
          html: `${server.base}/html`,
          hub401: sub("/x"),
          s503: `${server.base}/status/503`,
        };
        await page.evaluate(
          ([cases, share]) => {
            for (const [name, url] of Object.entries(cases)) {
              const headers = name === "hub401" ? { Authorization: "Bearer not-a-token" } : {};
              window.listen(name, url, { share, headers, retry: 100, maxRetry: 100 });
            }
          },
          [cases, share],
        );
        const want = { s204: 204, s401: 401, s403: 403, s404: 404, html: 200, hub401: 401 };
        for (const name of Object.keys(want)) {
          await until(`${name}: an error`, async () => (await log(page, name)).errors.length >= 1);
        }
        await until("503 retried", () => (server.counts["/status/503"] || 0) >= 4);
        // Time for reconnects that must not happen.
        await new Promise((r) => setTimeout(r, 1000));
        for (const [name, status] of Object.entries(want)) {
          const l = await log(page, name);
          assert.equal(l.share, share);
          assert.deepEqual(l.errors, [{ status, fatal: true, readyState: 2 }], name);
          assert.equal(l.opens, 0);
          assert.equal(await page.evaluate((n) => window.sources[n].readyState, name), 2);
        }
        for (const path of ["/status/204", "/status/401", "/status/403", "/status/404", "/html"]) {
          assert.equal(server.counts[path], 1, `${path} asked once`);
        }
        const s503 = await log(page, "s503");
        assert.ok(s503.errors.length >= 3 && s503.errors.every((e) => e.status === 503 && !e.fatal && e.readyState === 0));
        assert.equal(await metric(hub, "herald_subscribers"), 0);
      });
    } finally {
      await server.close();
    }
  });
}

test("a page on another origin imports /herald.js (ACAO *) and shares through tabs", { timeout: 60000 }, async () => {
  await withBrowser(async (hub, context) => {
    // The gate is the same hub on another port: another origin.
    const gate = await startProxy(hub.port);
    try {
      const page = await context.newPage();
      await page.goto(`${hub.base}/`);
      const share = await page.evaluate(async ([src, u]) => {
        const { HeraldEventSource } = await import(src);
        window.got = [];
        const source = new HeraldEventSource(u);
        source.onmessage = (e) => window.got.push(e.lastEventId);
        await new Promise((r) => (source.onopen = r));
        return source.share;
      }, [`${gate.base}/herald.js`, sub("/x")]);
      assert.equal(share, "tabs", "no SharedWorker from a script on another origin");
      const id = await hub.publish([["topic", "/x"], ["data", "hi"]]);
      await until("the event", () => page.evaluate(() => window.got.length === 1));
      assert.deepEqual(await page.evaluate(() => window.got), [id]);
    } finally {
      await gate.close();
    }
  });
});
