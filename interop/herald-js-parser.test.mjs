// herald.js's parser against the project's parser corpus
// (crates/herald-proto/tests/data/parser.jsonl), each case with its own
// chunks, as one chunk, and one byte per chunk: in Node (the package's
// file) and in Chromium (the file the hub serves at /herald.js).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Parser } from "../clients/js/herald.js";
import { startHub } from "./lib/hub.mjs";
import { corpusPath, launchChromium } from "./lib/herald-js.mjs";

const corpus = readFileSync(corpusPath, "utf8")
  .split("\n")
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l));

// Runs every case three ways with `Parser`; returns the failures. Written
// to run unchanged in the page (it is passed there as source text).
function runCorpus(Parser, corpus) {
  const bytes = (c) =>
    c.chunks
      ? c.chunks.map((t) => new TextEncoder().encode(t))
      : c.chunks_b64.map((b) => Uint8Array.from(atob(b), (ch) => ch.charCodeAt(0)));
  const concat = (parts) => {
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    return all;
  };
  const failures = [];
  let runs = 0;
  for (const c of corpus) {
    const own = bytes(c);
    const whole = concat(own);
    const ways = { own, one: [whole], bytewise: Array.from(whole, (b) => Uint8Array.of(b)) };
    for (const [how, chunks] of Object.entries(ways)) {
      runs++;
      const events = [];
      let retry = null;
      const parser = new Parser({
        onEvent: (e) => events.push({ type: e.type, data: e.data, last_event_id: e.lastEventId }),
        onRetry: (ms) => (retry = ms),
      });
      for (const chunk of chunks) parser.feed(chunk);
      parser.finish();
      const got = JSON.stringify({ events, retry, last: parser.lastEventId });
      const want = JSON.stringify({ events: c.events, retry: c.retry, last: c.final_last_event_id });
      if (got !== want) failures.push(`${c.name} (${how}): got ${got}, want ${want}`);
    }
  }
  return { runs, failures };
}

test("the parser corpus passes in Node", () => {
  assert.ok(corpus.length >= 100, "the corpus is complete");
  const { runs, failures } = runCorpus(Parser, corpus);
  assert.equal(runs, corpus.length * 3);
  assert.deepEqual(failures, []);
});

test("the parser corpus passes in Chromium, with the /herald.js the hub serves", { timeout: 60000 }, async () => {
  const hub = await startHub();
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`${hub.base}/`);
    const result = await page.evaluate(
      async ({ source, corpus }) => {
        const { Parser } = await import("/herald.js");
        const run = new Function(`return (${source})`)();
        return run(Parser, corpus);
      },
      { source: runCorpus.toString(), corpus },
    );
    assert.equal(result.runs, corpus.length * 3);
    assert.deepEqual(result.failures, []);
  } finally {
    await browser.close();
    await hub.stop();
  }
});

test("a broken parser fails the corpus (the check can fail)", () => {
  class NoBom extends Parser {
    constructor(init) {
      super(init);
      this.decoder = new TextDecoder("utf-8", { ignoreBOM: true });
    }
  }
  const { failures } = runCorpus(NoBom, corpus);
  assert.ok(failures.some((f) => f.startsWith("bom-")), failures.join("\n"));
});
