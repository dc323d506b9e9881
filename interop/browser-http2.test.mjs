// Why a hub needs HTTP/2: Chromium opens at most six HTTP/1.1 connections
// per origin, and each EventSource holds one. Over HTTPS the hub speaks
// HTTP/2 (ALPN), and twenty EventSources share one connection; over plain
// HTTP/1.1 (the control) the seventh waits.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { startHub } from "./lib/hub.mjs";
import { makeCerts } from "./lib/certs.mjs";
import { until } from "./lib/proxy.mjs";

const launch = () =>
  chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    // The test's certificate is self-signed.
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--ignore-certificate-errors"],
  });

// Opens `count` EventSources on the page; window.opens counts their
// opens, window.got[i] what source i received.
const openSources = (page, count) =>
  page.evaluate((count) => {
    window.opens = 0;
    window.got = Array.from({ length: count }, () => []);
    for (let i = 0; i < count; i++) {
      const source = new EventSource("/.well-known/mercure?match=/tabs");
      source.onopen = () => window.opens++;
      source.onmessage = (e) => window.got[i].push(e.data);
    }
  }, count);

test("over HTTPS, twenty EventSources share one HTTP/2 connection and all get every event", { timeout: 60000 }, async () => {
  const certs = makeCerts();
  const hub = await startHub({ tls: certs });
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await page.goto(`https://localhost:${hub.port}/`);
    await openSources(page, 20);
    await until("twenty opens", () => page.evaluate(() => window.opens === 20));
    for (const n of [1, 2, 3]) await hub.publish([["topic", "/tabs"], ["data", `event ${n}`]]);
    await until("every source has every event", () =>
      page.evaluate(() => window.got.every((events) => events.length === 3)),
    );
    const got = await page.evaluate(() => window.got);
    for (const events of got) assert.deepEqual(events, ["event 1", "event 2", "event 3"]);
    // The page and its twenty streams: one TLS connection, HTTP/2.
    const metrics = await hub.metrics();
    const h2 = metrics.match(/^herald_connections_total\{[^}]*protocol="h2"[^}]*tls="true"[^}]*\} (\d+)/m);
    assert.ok(h2, `no HTTP/2 TLS connection counted in:\n${metrics}`);
    assert.equal(Number(h2[1]), 1, metrics);
  } finally {
    await browser.close();
    await hub.stop();
    certs.remove();
  }
});

test("over plain HTTP/1.1 (the control), the seventh EventSource waits for a connection", { timeout: 60000 }, async () => {
  const hub = await startHub();
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await page.goto(`${hub.base}/`);
    await openSources(page, 7);
    await until("six opens", () => page.evaluate(() => window.opens === 6));
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(await page.evaluate(() => window.opens), 6, "the seventh stream is stalled");
  } finally {
    await browser.close();
    await hub.stop();
  }
});
