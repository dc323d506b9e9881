// A chat page in Chromium renders a token stream that `herald relay`
// copies from a fake LLM into a topic, reloads mid-stream, resumes from
// the last id it saved (sessionStorage), and ends with exactly the
// generated text: no token lost, none twice.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startHub } from "./lib/hub.mjs";
import { startFakeLlm } from "./lib/fake-llm.mjs";
import { until } from "./lib/proxy.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const bin = process.env.HERALD_BIN || join(here, "..", "target", "debug", "herald");

// The page of docs/streams.md, as a chat front end writes it: the text
// and the last id are saved together after every event, so a reload
// renders what it had and asks the hub for the rest only.
const chatPage = (topic) => `<!doctype html>
<meta charset="utf-8">
<title>chat</title>
<pre id="answer"></pre>
<script>
  const topic = ${JSON.stringify(topic)};
  const key = "herald-chat:" + topic;
  const saved = JSON.parse(sessionStorage.getItem(key) || '{"text": "", "last": "earliest", "done": false}');
  const answer = document.getElementById("answer");
  answer.textContent = saved.text;
  document.body.dataset.done = saved.done;
  window.opened = 0;
  if (!saved.done) {
    const url = new URL("/.well-known/mercure", location.href);
    url.searchParams.append("match", topic);
    url.searchParams.append("last_event_id", saved.last);
    const source = new EventSource(url);
    source.onopen = () => window.opened++;
    source.onmessage = (e) => {
      if (e.data === "[DONE]") {
        saved.done = true;
        source.close();
      } else {
        saved.text += JSON.parse(e.data).choices[0].delta.content ?? "";
      }
      saved.last = e.lastEventId;
      sessionStorage.setItem(key, JSON.stringify(saved));
      answer.textContent = saved.text;
      document.body.dataset.done = saved.done;
    };
  }
</script>`;

test("a chat page reloaded mid-stream renders exactly the generated text", { timeout: 90000 }, async () => {
  const hub = await startHub({ retryMs: 200 });
  const llm = await startFakeLlm({ count: 150, maxPauseMs: 25 });
  const dir = mkdtempSync(join(tmpdir(), "herald-streams-"));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  let relay;
  try {
    const topic = "chat/7";
    const page = await browser.newPage();
    // The page comes from the hub's origin (as a same-origin app would
    // serve it); the stream is the hub's.
    await page.route(`${hub.base}/chat`, (route) =>
      route.fulfill({ contentType: "text/html; charset=utf-8", body: chatPage(topic) }),
    );
    await page.goto(`${hub.base}/chat`);
    await until("the page to subscribe", () => page.evaluate(() => window.opened === 1));

    const request = join(dir, "request.json");
    writeFileSync(request, JSON.stringify({ model: "fake", stream: true, messages: [{ role: "user", content: "hi" }] }));
    relay = spawn(bin, ["relay", llm.url, topic, "--hub", hub.url, "--token", hub.token, "-q",
      "-H", "Authorization: Bearer sk-test", "--json", request], { stdio: ["ignore", "pipe", "pipe"] });
    const relayOut = [];
    relay.stdout.on("data", (d) => relayOut.push(d));
    relay.stderr.on("data", (d) => relayOut.push(d));
    const relayed = new Promise((resolve) => relay.once("exit", (code) => resolve(code)));

    // Mid-stream: some text, not all of it.
    await until("part of the answer", () =>
      page.evaluate(() => document.getElementById("answer").textContent.length > 200), 30000);
    const before = await page.evaluate(() => document.getElementById("answer").textContent);
    assert.ok(before.length < llm.text.length, "the reload must come mid-stream");
    await page.reload();
    await until("the end marker", () => page.evaluate(() => document.body.dataset.done === "true"), 60000);

    const rendered = await page.evaluate(() => document.getElementById("answer").textContent);
    assert.equal(rendered, llm.text);
    assert.equal(await relayed, 0, Buffer.concat(relayOut).toString());
    assert.equal(llm.requests.length, 1);
    assert.equal(llm.requests[0].method, "POST");
    assert.equal(llm.requests[0].headers["authorization"], "Bearer sk-test");
    assert.equal(llm.requests[0].headers["content-type"], "application/json");

    // A page opened after the end replays the whole answer and stops.
    const late = await browser.newPage();
    await late.route(`${hub.base}/chat`, (route) =>
      route.fulfill({ contentType: "text/html; charset=utf-8", body: chatPage(topic) }),
    );
    await late.goto(`${hub.base}/chat`);
    await until("the late page's end", () => late.evaluate(() => document.body.dataset.done === "true"));
    assert.equal(await late.evaluate(() => document.getElementById("answer").textContent), llm.text);
  } finally {
    if (relay && relay.exitCode === null) relay.kill("SIGTERM");
    await browser.close();
    await llm.close();
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
