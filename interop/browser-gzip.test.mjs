// gzip on event streams (`compression = "gzip"`) as Chromium takes it: its
// EventSource asks for gzip on its own, inflates the stream as it comes,
// and dispatches each event as soon as it is published, over HTTP/1.1 and
// over HTTP/2 with TLS. Heartbeats are off: had the hub's compressor held
// an event back, nothing would push it out.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { startHub } from "./lib/hub.mjs";
import { makeCerts } from "./lib/certs.mjs";
import { until } from "./lib/proxy.mjs";

const launch = () =>
  chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--ignore-certificate-errors"],
  });

for (const scheme of ["http", "https"]) {
  test(`over ${scheme}, Chromium's EventSource gets a gzip stream and every event at once`, { timeout: 60000 }, async () => {
    const certs = scheme === "https" ? makeCerts() : null;
    const hub = await startHub({ tls: certs, compression: "gzip", heartbeatSecs: 0 });
    const browser = await launch();
    try {
      const page = await browser.newPage();
      const streamResponse = page.waitForResponse((r) => r.url().includes("/.well-known/mercure?match="));
      await page.goto(`${scheme}://localhost:${hub.port}/`);
      await page.evaluate(() => {
        window.got = [];
        window.opened = false;
        const source = new EventSource("/.well-known/mercure?match=/zipped");
        source.onopen = () => (window.opened = true);
        source.onmessage = (e) => window.got.push({ id: e.lastEventId, data: e.data });
      });
      const response = await streamResponse;
      const headers = await response.allHeaders();
      assert.equal(headers["content-encoding"], "gzip", JSON.stringify(headers));
      await until("the stream opens", () => page.evaluate(() => window.opened));
      const sent = [];
      for (let n = 1; n <= 5; n++) {
        const data = JSON.stringify({ type: "price", symbol: "ACME", price: 100 + n, currency: "EUR", n });
        const id = await hub.publish([["topic", "/zipped"], ["data", data]]);
        sent.push({ id, data });
        // Each one before the next is published.
        await until(`event ${n}`, () => page.evaluate((n) => window.got.length === n, n), 10000);
      }
      assert.deepEqual(await page.evaluate(() => window.got), sent);
    } finally {
      await browser.close();
      await hub.stop();
      certs?.remove();
    }
  });
}
