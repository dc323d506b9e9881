// Publishes events to a hub three ways and prints one JSON line per way:
// one POST per event (sequential, keep-alive: the peer), and one streaming
// publish carrying every event, as text/event-stream and as NDJSON.
//
//   node bench/stream-publish.mjs URL TOKEN POSTS EVENTS
//
// URL is the hub's /.well-known/mercure; POSTS events go one request each,
// EVENTS in each streaming request. Every event is ~100 bytes of JSON, an
// AI-token chunk. Events/s count from the first byte sent to the answer.
import { request as httpRequest, Agent } from "node:http";

const [url, token, posts, events] = process.argv.slice(2);
if (!url || !token || !posts || !events) {
  console.error("usage: node bench/stream-publish.mjs URL TOKEN POSTS EVENTS");
  process.exit(2);
}
const target = new URL(url);
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const payload = (n) => JSON.stringify({ choices: [{ index: 0, delta: { content: ` token${n}` } }], n });

function send({ path, headers, body }) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: target.hostname, port: target.port, path, method: "POST", agent, headers: { authorization: `Bearer ${token}`, ...headers } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode, text }));
      },
    );
    req.on("error", reject);
    body(req);
  });
}

async function perPost(count) {
  const started = performance.now();
  for (let n = 0; n < count; n++) {
    const form = new URLSearchParams({ topic: "/bench/posts", data: payload(n) }).toString();
    const res = await send({
      path: target.pathname,
      headers: { "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(form) },
      body: (req) => req.end(form),
    });
    if (res.status !== 200) throw new Error(`POST ${n}: ${res.status} ${res.text}`);
  }
  const seconds = (performance.now() - started) / 1000;
  return { way: "one POST per event", events: count, seconds, events_per_sec: count / seconds };
}

async function streaming(count, format) {
  const sse = format === "text/event-stream";
  const started = performance.now();
  const res = await send({
    path: `${target.pathname}?topic=/bench/stream`,
    headers: { "content-type": format },
    body: async (req) => {
      // 64 KiB writes, waiting for the socket to drain like any producer.
      let chunk = "";
      for (let n = 0; n < count; n++) {
        chunk += sse ? `data: ${payload(n)}\n\n` : `${JSON.stringify({ data: payload(n) })}\n`;
        if (chunk.length >= 65536) {
          if (!req.write(chunk)) await new Promise((r) => req.once("drain", r));
          chunk = "";
        }
      }
      req.end(chunk);
    },
  });
  const seconds = (performance.now() - started) / 1000;
  const last = res.text.trim().split("\n").pop();
  const summary = JSON.parse(last);
  if (res.status !== 200 || summary.published !== count) throw new Error(`${format}: ${res.status} ${res.text.slice(-300)}`);
  return { way: `one streaming publish (${format})`, events: count, seconds, events_per_sec: count / seconds };
}

for (const result of [
  await perPost(Number(posts)),
  await streaming(Number(events), "text/event-stream"),
  await streaming(Number(events), "application/x-ndjson"),
]) {
  console.log(JSON.stringify(result));
}
agent.destroy();
