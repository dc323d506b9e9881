// The hub's /ui/dashboard in Chromium against a real `herald serve`: it
// says in words why it shows nothing without the admin grant, and with
// `herald token --admin` its figures and plots move while `herald bench`
// publishes; screenshots at phone and desktop widths go to
// interop/artifacts/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { startHub } from "./lib/hub.mjs";
import { until } from "./lib/proxy.mjs";
import { launchChromium, mintToken } from "./lib/herald-js.mjs";
import { DESKTOP, PHONE, layoutProblems, openPage, screenshot } from "./lib/ui.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const bin = process.env.HERALD_BIN || join(here, "..", "target", "debug", "herald");

function bench(args) {
  return new Promise((resolve, reject) => {
    execFile(bin, ["bench", ...args], { timeout: 60000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`herald bench failed: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

async function connect(page, token) {
  await page.fill("#token", token);
  await page.click("#connect");
}

const number = (text) => {
  const m = /^([\d.]+)([kMG]?)/.exec(text.trim());
  if (!m) return NaN;
  return Number(m[1]) * ({ "": 1, k: 1e3, M: 1e6, G: 1e9 }[m[2]]);
};

test("the dashboard refuses in words without the admin grant, and its plots move under herald bench", { timeout: 90000 }, async () => {
  const hub = await startHub({ heartbeatSecs: 5 });
  const browser = await launchChromium();
  try {
    const page = await openPage(browser, `${hub.base}/ui/dashboard`, { allow: /status of 40[13]/ });

    await connect(page, "");
    await until("the 401", () => page.isVisible("#error"));
    let error = await page.textContent("#error");
    assert.match(error, /HTTP 401/);
    assert.match(error, /WWW-Authenticate: Bearer/);
    assert.match(error, /herald token --admin/);

    await connect(page, mintToken(hub, ["--subscribe", "demo"]));
    await until("the 403", async () => /403/.test(await page.textContent("#error")));
    error = await page.textContent("#error");
    assert.match(error, /insufficient_scope/);
    assert.match(error, /lacks the admin grant/);

    await connect(page, mintToken(hub, ["--admin"]));
    await until("the first figures", async () => (await page.textContent("#tile-subscribers")) === "1");
    assert.equal(await page.isVisible("#error"), false);
    assert.equal(await page.getAttribute("#state", "data-state"), "open");
    const pointsBefore = Number(await page.getAttribute("#plot-publishes", "data-points"));
    // The store as the hub reads it: nothing yet, and the binary's default
    // retention (docs/configuration.md: [store] max_events = 100000).
    const retained = async () => Number(await page.getAttribute("#tile-retained", "data-value"));
    assert.equal(await retained(), 0);
    assert.equal(await page.textContent("#tile-retention"), "100k");
    assert.equal(await page.textContent("#tile-retention-note"), "events, any age");

    // Load: 50 subscribers on 5 topics, 200 publishes a second, 4 seconds.
    const seen = { publishes: 0, deliveries: 0, subscribers: 0 };
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        seen.publishes = Math.max(seen.publishes, number(await page.textContent("#tile-publishes")) || 0);
        seen.deliveries = Math.max(seen.deliveries, number(await page.textContent("#tile-deliveries")) || 0);
        seen.subscribers = Math.max(seen.subscribers, number(await page.textContent("#tile-subscribers")) || 0);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    await bench([`${hub.url}?match=/bench/{i}`, "--subscribers", "50", "--topics", "5", "--rate", "200", "--duration", "4", "--token", hub.token]);
    await new Promise((r) => setTimeout(r, 1500));
    watching = false;
    await watcher;

    assert.ok(seen.publishes >= 50, `publishes/s seen: ${seen.publishes}`);
    assert.ok(seen.deliveries >= 500, `deliveries/s seen: ${seen.deliveries}`);
    assert.ok(seen.subscribers >= 51, `subscribers seen: ${seen.subscribers}`);
    const pointsAfter = Number(await page.getAttribute("#plot-publishes", "data-points"));
    assert.ok(pointsAfter >= pointsBefore + 4, `${pointsBefore} -> ${pointsAfter} points`);
    for (const plot of ["plot-publishes", "plot-deliveries", "plot-bytes", "plot-clients", "plot-latency"]) {
      const max = Number(await page.getAttribute(`#${plot}`, "data-max"));
      assert.ok(max > 0, `${plot} stayed flat`);
    }
    assert.ok(number(await page.textContent("#tile-published")) >= 400);
    // Every publish is retained (well under 100k): the store tile grew with them.
    await until("the store tile to count the publishes", async () => (await retained()) >= 400);
    const kept = await retained();
    const shown = number(await page.textContent("#tile-retained"));
    assert.ok(Math.abs(shown - kept) <= kept * 0.05, `the tile shows ${shown} for ${kept}`);
    assert.match(await page.textContent("#tile-retained-note"), /^positions 1–[\d,]+$/);
    assert.match(await page.textContent("#tile-latency"), /ms$/);
    assert.match(await page.textContent("#reasons"), /client_gone/);

    assert.deepEqual(page.problems, []);
    for (const [name, size] of [["dashboard-desktop", DESKTOP], ["dashboard-phone", PHONE]]) {
      await page.setViewportSize(size);
      await page.waitForTimeout(300);
      assert.deepEqual(await layoutProblems(page), [], name);
      await screenshot(page, name);
    }
  } finally {
    await browser.close();
    await hub.stop();
  }
});
