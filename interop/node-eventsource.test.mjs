// Node's `eventsource` package (the WHATWG EventSource for Node) against
// the hub: it reconnects with Last-Event-ID after a cut and misses nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventSource } from "eventsource";
import { startHub } from "./lib/hub.mjs";
import { startProxy, until } from "./lib/proxy.mjs";

test("Node eventsource resumes across a cut connection without missing anything", { timeout: 60000 }, async () => {
  const hub = await startHub({ retryMs: 200 });
  const proxy = await startProxy(hub.port);
  const got = [];
  let opens = 0;
  const source = new EventSource(`${proxy.base}/.well-known/mercure?match=/feed`);
  source.onopen = () => opens++;
  source.onmessage = (e) => got.push({ type: "message", data: e.data, id: e.lastEventId });
  source.addEventListener("update", (e) => got.push({ type: "update", data: e.data, id: e.lastEventId }));
  try {
    await until("the first open", () => opens === 1);
    const ids = [];
    ids.push(await hub.publish([["topic", "/feed"], ["type", "update"], ["data", "a\nb"]]));
    await until("one event", () => got.length === 1);
    proxy.cut();
    await until("a reconnect attempt", () => proxy.waiting() > 0);
    ids.push(await hub.publish([["topic", "/feed"], ["data", "while away"]]));
    proxy.release();
    await until("the reconnect", () => opens === 2);
    ids.push(await hub.publish([["topic", "/feed"], ["data", "live"]]));
    await until("three events", () => got.length >= 3);
    assert.deepEqual(got.map((e) => [e.type, e.data]), [
      ["update", "a\nb"],
      ["message", "while away"],
      ["message", "live"],
    ]);
    assert.deepEqual(got.map((e) => e.id), ids);
  } finally {
    source.close();
    await proxy.close();
    await hub.stop();
  }
});
