// Chromium's own EventSource against the hub: typed and multi-line events,
// a cut connection, the automatic reconnect with Last-Event-ID, and no
// event missed or repeated.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { startHub } from "./lib/hub.mjs";
import { startProxy, until } from "./lib/proxy.mjs";

test("Chromium EventSource resumes across a cut connection without missing anything", { timeout: 60000 }, async () => {
  const hub = await startHub({ retryMs: 200 });
  const proxy = await startProxy(hub.port);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`${proxy.base}/`);
    await page.evaluate(() => {
      window.got = [];
      window.opens = 0;
      const source = new EventSource("/.well-known/mercure?match=/books/1&match_urlpattern=/authors/:id");
      source.onopen = () => window.opens++;
      source.onmessage = (e) => window.got.push({ type: "message", data: e.data, id: e.lastEventId });
      source.addEventListener("update", (e) => window.got.push({ type: "update", data: e.data, id: e.lastEventId }));
    });
    await until("the first open", () => page.evaluate(() => window.opens === 1));

    const ids = [];
    ids.push(await hub.publish([["topic", "/books/1"], ["type", "update"], ["data", "line one\nline two\r\nline three"]]));
    ids.push(await hub.publish([["topic", "/authors/7"], ["data", "plain"]]));
    await until("two events", () => page.evaluate(() => window.got.length === 2));

    // Cut the connection; publish while the browser is away.
    proxy.cut();
    await until("the browser to try to reconnect", () => proxy.waiting() > 0);
    for (const n of [3, 4, 5]) ids.push(await hub.publish([["topic", "/books/1"], ["data", `missed ${n}`]]));
    proxy.release();
    await until("the reconnect", () => page.evaluate(() => window.opens === 2));
    ids.push(await hub.publish([["topic", "/books/1"], ["data", "live again"]]));
    await until("six events", () => page.evaluate(() => window.got.length >= 6));

    const got = await page.evaluate(() => window.got);
    assert.deepEqual(got.map((e) => [e.type, e.data]), [
      ["update", "line one\nline two\nline three"],
      ["message", "plain"],
      ["message", "missed 3"],
      ["message", "missed 4"],
      ["message", "missed 5"],
      ["message", "live again"],
    ]);
    assert.deepEqual(got.map((e) => e.id), ids);
  } finally {
    await browser.close();
    await proxy.close();
    await hub.stop();
  }
});
