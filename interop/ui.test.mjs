// The hub's /ui tester in Chromium against a real `herald serve`:
// subscribe, publish from the form and see the event with its id; a cut
// connection shown with its reconnect and the id it resumed from; a
// private update seen only with a token that grants it; a foreign SSE URL
// watched (and one without CORS refused in words); screenshots at phone
// and desktop widths saved to interop/artifacts/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startHub } from "./lib/hub.mjs";
import { startProxy, until } from "./lib/proxy.mjs";
import { launchChromium, mintToken } from "./lib/herald-js.mjs";
import { DESKTOP, PHONE, layoutProblems, openPage, screenshot, startForeignSse, testerLog } from "./lib/ui.mjs";

async function connectTo(page, topics, { token = "", lastEventId = "" } = {}) {
  await page.fill("#topics", topics);
  await page.fill("#sub-token", token);
  await page.fill("#last-id", lastEventId);
  await page.click("#connect");
  await until("the stream to open", () => page.evaluate(() => document.getElementById("state").dataset.state === "open"));
}

async function publishFromForm(page, { topics, data, type = "", id = "", isPrivate = false, token }) {
  await page.fill("#pub-topics", topics);
  await page.fill("#pub-data", data);
  await page.fill("#pub-type", type);
  await page.fill("#pub-id", id);
  await page.setChecked("#pub-private", isPrivate);
  await page.fill("#pub-token", token);
  const before = await page.textContent("#pub-result");
  await page.click("#publish");
  await until("the publish answer", async () => {
    const text = await page.textContent("#pub-result");
    return text !== before && text !== "Publishing…" && text;
  });
  return page.textContent("#pub-result");
}

const events = async (page) => (await testerLog(page)).filter((e) => e.kind === "event" || e.kind === "gap");

test("the tester subscribes, publishes from its form and shows the event with its id", { timeout: 60000 }, async () => {
  const hub = await startHub();
  const browser = await launchChromium();
  try {
    // The refused publishes below are logged by Chromium as failed loads.
    const page = await openPage(browser, `${hub.base}/ui`, { allow: /status of 40[01]/ });
    await connectTo(page, "demo");
    const answer = await publishFromForm(page, { topics: "demo", data: '{"hello": "world", "n": [1, 2]}', type: "greeting", token: hub.token });
    const match = /^Published: id (urn:uuid:\S+)$/.exec(answer);
    assert.ok(match, answer);
    await until("the event in the log", async () => (await events(page)).length === 1);
    const [event] = await events(page);
    assert.equal(event.type, "greeting");
    assert.equal(event.id, match[1]);
    assert.match(event.data, /"hello": "world"/, "pretty-printed JSON");

    // A refused publish shows the hub's words verbatim.
    const refused = await publishFromForm(page, { topics: "demo", data: "x", type: "mercure", token: hub.token });
    assert.match(refused, /^HTTP 400 Bad Request: /);
    const noToken = await publishFromForm(page, { topics: "demo", data: "x", token: "" });
    assert.match(noToken, /^HTTP 401 Unauthorized.*an access token is required/);

    // Filters, pause, and the command lines.
    await publishFromForm(page, { topics: "demo", data: "plain text", token: hub.token });
    await until("two events", async () => (await events(page)).length === 2);
    await page.fill("#filter-type", "greet");
    let shown = (await events(page)).filter((e) => !e.hidden);
    assert.deepEqual(shown.map((e) => e.type), ["greeting"]);
    await page.fill("#filter-type", "");
    await page.fill("#filter-text", "plain");
    shown = (await events(page)).filter((e) => !e.hidden);
    assert.deepEqual(shown.map((e) => e.data), ["plain text"]);
    await page.fill("#filter-text", "");
    await page.click("#pause");
    await publishFromForm(page, { topics: "demo", data: "while paused", token: hub.token });
    await until("the held count", async () => /1 waiting/.test(await page.textContent("#counts")));
    assert.equal((await events(page)).length, 2, "held while paused");
    await page.click("#pause");
    assert.equal((await events(page)).length, 3);
    await page.click("#copy-curl");
    assert.equal(await page.textContent("#command"), `curl -N '${hub.base}/.well-known/mercure?match=demo'`);
    await page.click("#copy-tail");
    assert.equal(await page.textContent("#command"), `herald tail --hub ${hub.base}/.well-known/mercure --topic demo`);

    // Export: an NDJSON download, one line per entry.
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export")]);
    const lines = (await streamText(await download.createReadStream())).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.filter((l) => l.kind === "event").map((l) => l.data), ['{"hello": "world", "n": [1, 2]}', "plain text", "while paused"]);

    // Keyboard only: tab to the Disconnect button and press it.
    await page.focus("#connect");
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.id), "disconnect");
    await page.keyboard.press("Enter");
    assert.equal(await page.textContent("#state"), "Not connected.");

    assert.deepEqual(page.problems, []);
    for (const [name, size] of [["tester-desktop", DESKTOP], ["tester-phone", PHONE]]) {
      await page.setViewportSize(size);
      await page.waitForTimeout(100);
      assert.deepEqual(await layoutProblems(page), [], name);
      await screenshot(page, name);
    }
  } finally {
    await browser.close();
    await hub.stop();
  }
});

test("a cut connection shows the reconnect and the id it resumed from, and nothing is missed", { timeout: 60000 }, async () => {
  const hub = await startHub({ retryMs: 200 });
  const proxy = await startProxy(hub.port);
  const browser = await launchChromium();
  try {
    const page = await openPage(browser, `${proxy.base}/ui`, { allow: /ERR_CONNECTION|Failed to load resource|network/i });
    await connectTo(page, "/books/1");
    const first = await hub.publish([["topic", "/books/1"], ["data", "before the cut"]]);
    await until("the first event", async () => (await events(page)).length === 1);

    proxy.cut();
    await until("the tester to try again", () => proxy.waiting() > 0);
    const missed = await hub.publish([["topic", "/books/1"], ["data", "while away"]]);
    proxy.release();
    await until("the missed event", async () => (await events(page)).length === 2);
    const log = await testerLog(page);
    const texts = log.filter((e) => e.kind === "info").map((e) => e.text);
    assert.ok(texts.some((t) => /Disconnected: (the connection was lost|the server ended the stream); reconnecting/.test(t)), texts.join("\n"));
    assert.ok(texts.some((t) => t.includes(`Reconnecting (attempt 2) with Last-Event-ID: ${first}`)), texts.join("\n"));
    assert.ok(texts.some((t) => t.includes(`resumed after ${first} (Mercure-Last-Event-ID: ${first})`)), texts.join("\n"));
    assert.deepEqual((await events(page)).map((e) => e.id), [first, missed]);
    assert.equal(await page.textContent("#state"), `Open, resumed after ${first}.`);
    await screenshot(page, "tester-reconnect");
  } finally {
    await browser.close();
    await proxy.close();
    await hub.stop();
  }
});

test("a private update shows only in a tester whose token grants it", { timeout: 60000 }, async () => {
  const hub = await startHub();
  const browser = await launchChromium();
  try {
    const anonymous = await openPage(browser, `${hub.base}/ui`);
    const granted = await openPage(browser, `${hub.base}/ui`);
    const other = await openPage(browser, `${hub.base}/ui`);
    await connectTo(anonymous, "/orders/1");
    await connectTo(granted, "/orders/1", { token: mintToken(hub, ["--subscribe", "/orders/1"]) });
    await connectTo(other, "/orders/1", { token: mintToken(hub, ["--subscribe", "/orders/2"]) });

    const answer = await publishFromForm(anonymous, { topics: "/orders/1", data: "secret", isPrivate: true, token: hub.token });
    const secret = answer.replace("Published: id ", "");
    const publicId = await hub.publish([["topic", "/orders/1"], ["data", "public"]]);
    for (const page of [anonymous, granted, other]) {
      await until("the public update", async () => (await events(page)).some((e) => e.id === publicId));
    }
    assert.deepEqual((await events(granted)).map((e) => e.data), ["secret", "public"]);
    assert.deepEqual((await events(anonymous)).map((e) => e.data), ["public"]);
    assert.deepEqual((await events(other)).map((e) => e.data), ["public"]);
    assert.ok(secret.startsWith("urn:uuid:"));

    // Resuming from the private id without a grant: a gap, highlighted.
    await anonymous.click("#clear");
    await connectTo(anonymous, "/orders/1", { lastEventId: secret });
    await until("the gap report", async () => (await events(anonymous)).some((e) => e.kind === "gap"));
    const gap = (await testerLog(anonymous)).find((e) => e.kind === "gap");
    assert.match(gap.text, new RegExp(`Gap: the hub no longer had ${secret}`));
    assert.equal(await anonymous.textContent("#state"), `Open; the hub did not have ${secret} and replays from earliest.`);
    await screenshot(anonymous, "tester-gap");

    // A token the hub refuses: the reason, in words.
    await anonymous.fill("#sub-token", "not.a.token");
    await anonymous.click("#connect");
    await until("the refusal", () => anonymous.isVisible("#sub-error"));
    const error = await anonymous.textContent("#sub-error");
    assert.match(error, /HTTP 401/);
    assert.match(error, /invalid_token/);
    assert.match(error, /the token was refused/);
    for (const page of [anonymous, granted, other]) assert.deepEqual(page.problems.filter((p) => !/status of 401/.test(p)), []);
  } finally {
    await browser.close();
    await hub.stop();
  }
});

test("the tester watches a foreign SSE URL, and says so when CORS or the network refuses", { timeout: 60000 }, async () => {
  const hub = await startHub();
  const withCors = await startForeignSse({
    events: [
      { id: "1", type: "tick", data: "one" },
      { id: "2", data: '{"n": 2}' },
    ],
  });
  const withoutCors = await startForeignSse({ cors: false });
  const browser = await launchChromium();
  try {
    const page = await openPage(browser, `${hub.base}/ui`, { allow: /CORS|Failed to load resource|ERR_/i });
    await page.check('input[name="mode"][value="url"]');
    await page.fill("#url", `${withCors.base}/events`);
    await page.click("#connect");
    await until("two foreign events", async () => (await events(page)).length === 2);
    assert.deepEqual(
      (await events(page)).map((e) => [e.type, e.id]),
      [
        ["tick", "1"],
        ["message", "2"],
      ],
    );
    assert.match(await page.textContent("#headers"), /retry:\s*1500 ms/);
    await page.click("#copy-tail");
    assert.equal(await page.textContent("#command"), `herald tail ${withCors.base}/events`);

    await page.fill("#url", `${withoutCors.base}/events`);
    await page.click("#connect");
    await until("the CORS refusal", async () => /CORS refused/.test((await page.textContent("#sub-error")) || ""));
    assert.match(await page.textContent("#sub-error"), new RegExp(`${withoutCors.base} answered, but does not let this page`));

    const closed = await startForeignSse();
    const deadBase = closed.base;
    await closed.close();
    await page.fill("#url", `${deadBase}/events`);
    await page.click("#connect");
    await until("the network error", async () => /network error/.test((await page.textContent("#sub-error")) || ""));
    assert.match(await page.textContent("#sub-error"), /cannot be reached/);
    await page.click("#disconnect");
    await page.setViewportSize(PHONE);
    await page.waitForTimeout(100);
    assert.deepEqual(await layoutProblems(page), []);
    await screenshot(page, "tester-foreign-phone");
  } finally {
    await browser.close();
    await withCors.close();
    await withoutCors.close();
    await hub.stop();
  }
});

async function streamText(stream) {
  let text = "";
  for await (const chunk of stream) text += chunk;
  return text;
}
