// herald.js shares one connection among the tabs of an origin: three
// Chromium tabs are one subscriber on the hub; closing the tab that holds
// the stream loses and repeats nothing; a tab's new topic joins the shared
// stream. Each runs twice: through the SharedWorker (Chromium's default)
// and through BroadcastChannel with a Web Locks leader.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startHub } from "./lib/hub.mjs";
import { until } from "./lib/proxy.mjs";
import { launchChromium, openTab, log, metric, subscribers } from "./lib/herald-js.mjs";

const TOPIC = "/books/1";
const SUB = `/.well-known/mercure?match=${encodeURIComponent(TOPIC)}`;

async function withHub(fn) {
  const hub = await startHub({ retryMs: 200 });
  const browser = await launchChromium();
  try {
    await fn(hub, await browser.newContext());
  } finally {
    await browser.close();
    await hub.stop();
  }
}

// Opens `n` tabs, each listening as "a" to `url`; the first is open before
// the second starts (so in tabs mode it leads).
async function tabs(hub, context, n, url, share) {
  const pages = [];
  for (let i = 0; i < n; i++) {
    const page = await openTab(context, hub.base);
    const mode = await page.evaluate(([u, s]) => window.listen("a", u, { share: s }), [url, share]);
    assert.equal(mode, share, "the sharing mode asked for is available");
    await until(`tab ${i} open`, async () => (await log(page, "a")).opens === 1);
    pages.push(page);
  }
  return pages;
}

for (const share of ["worker", "tabs"]) {
  test(`${share}: three tabs are one subscriber on the hub, and each gets every event`, { timeout: 60000 }, async () => {
    await withHub(async (hub, context) => {
      const pages = await tabs(hub, context, 3, SUB, share);
      await until("one subscriber on the hub", async () => (await subscribers(hub)) === 1);
      const ids = [];
      for (let i = 0; i < 5; i++) ids.push(await hub.publish([["topic", TOPIC], ["data", `event ${i}`]]));
      for (const page of pages) {
        await until("five events", async () => (await log(page, "a")).events.length >= 5);
      }
      for (const page of pages) {
        const got = await log(page, "a");
        assert.deepEqual(got.events.map((e) => e.id), ids);
        assert.deepEqual(got.events.map((e) => e.data), ids.map((_, i) => `event ${i}`));
        assert.deepEqual(got.errors, []);
      }
      assert.equal(await subscribers(hub), 1);
    });
  });

  test(`${share}: closing the first tab mid-stream loses nothing and repeats nothing`, { timeout: 60000 }, async () => {
    await withHub(async (hub, context) => {
      const [first, ...others] = await tabs(hub, context, 3, SUB, share);
      await until("one subscriber", async () => (await subscribers(hub)) === 1);
      const opened = await metric(hub, "herald_subscriptions_total");
      const ids = [];
      let closed = false;
      // Publish 60 events; close the first tab (the leader, in tabs mode)
      // after the 20th and publish the next 20 back to back while it goes
      // (concurrently, so the takeover happens during the burst).
      let closing = null;
      for (let i = 0; i < 60; i++) {
        ids.push(await hub.publish([["topic", TOPIC], ["data", `n${i}`]]));
        if (i === 20) {
          await until("the first tab got some events", async () => (await log(first, "a")).events.length >= 5);
          closing = first.close().then(() => (closed = true));
        }
        if (i < 20 || i >= 40) await new Promise((r) => setTimeout(r, 15));
        if (i === 40) await closing;
      }
      assert.ok(closed);
      for (const page of others) {
        await until("all 60 events", async () => (await log(page, "a")).events.length >= 60, 20000);
      }
      // Late repeats would show up here.
      await new Promise((r) => setTimeout(r, 500));
      for (const page of others) {
        const got = await log(page, "a");
        assert.deepEqual(got.events.map((e) => e.id), ids, "every event once, in order");
        assert.deepEqual(got.errors, [], "a takeover is not an error");
      }
      await until("one subscriber again", async () => (await subscribers(hub)) === 1);
      const reopened = (await metric(hub, "herald_subscriptions_total")) - opened;
      if (share === "worker") {
        assert.equal(reopened, 0, "the worker's stream outlives the tab that started it");
      } else {
        // The leader's stream went with it: a new leader resumed.
        assert.ok(reopened >= 1 && reopened <= 2, `${reopened} new subscriptions`);
      }
    });
  });

  test(`${share}: a tab's second topic joins the shared stream`, { timeout: 60000 }, async () => {
    await withHub(async (hub, context) => {
      const pages = await tabs(hub, context, 2, SUB, share);
      const before = await hub.publish([["topic", TOPIC], ["data", "before"]]);
      for (const page of pages) await until("the first event", async () => (await log(page, "a")).events.length === 1);

      await pages[1].evaluate(
        ([u, s]) => window.listen("b", u, { share: s }),
        [`/.well-known/mercure?match=${encodeURIComponent("/authors/7")}`, share],
      );
      await until("the second topic open", async () => (await log(pages[1], "b")).opens === 1);
      await until("still one subscriber", async () => (await subscribers(hub)) === 1);

      const author = await hub.publish([["topic", "/authors/7"], ["data", "by the author"]]);
      const book = await hub.publish([["topic", TOPIC], ["data", "after"]]);
      await until("the author's event", async () => (await log(pages[1], "b")).events.length >= 1);
      for (const page of pages) await until("three events", async () => (await log(page, "a")).events.length >= 3);

      const b = await log(pages[1], "b");
      assert.equal(b.events[0].id, author);
      assert.equal(b.events[0].data, "by the author");
      for (const page of pages) {
        // Documented: every source of a shared stream sees the union of its
        // topics (an SSE event does not say which topic it was published to).
        const a = await log(page, "a");
        assert.deepEqual(a.events.map((e) => e.id), [before, author, book]);
        assert.deepEqual(a.errors, []);
      }
      assert.equal(await subscribers(hub), 1);
    });
  });
}
