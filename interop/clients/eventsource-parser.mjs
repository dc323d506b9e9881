// npm `eventsource-parser` over Node's fetch as a Herald subscriber, for
// the client matrix (../matrix.test.mjs).
//
// Usage: HERALD_TOKEN=… node eventsource-parser.mjs URL
//
// Prints one JSON line per event, {"type", "data", "id"}. The parser only
// parses: this loop fetches, feeds it the decoded body, and after a cut or
// an end reconnects with the last id as Last-Event-ID, after the server's
// retry: delay.
import { createParser } from "eventsource-parser";

const [url] = process.argv.slice(2);
let lastEventId = "";
let retryMs = 1000;

const parser = createParser({
  onEvent(event) {
    // `event.id` is this event's own id field (undefined without one); the
    // last event id carries over, as EventSource's does.
    if (event.id !== undefined) lastEventId = event.id;
    const line = { type: event.event || "message", data: event.data, id: lastEventId };
    process.stdout.write(JSON.stringify(line) + "\n");
  },
  onRetry(ms) {
    retryMs = ms;
  },
});

for (;;) {
  try {
    const headers = { accept: "text/event-stream", authorization: `Bearer ${process.env.HERALD_TOKEN}` };
    if (lastEventId) headers["last-event-id"] = lastEventId;
    const res = await fetch(url, { headers });
    if (res.status !== 200) throw new Error(`status ${res.status}`);
    console.error("open");
    const decoder = new TextDecoder();
    for await (const chunk of res.body) parser.feed(decoder.decode(chunk, { stream: true }));
    console.error("end of stream");
  } catch (e) {
    // A cut chunked body rejects the read with "terminated".
    console.error(`error: ${e.message}${e.cause ? ` (${e.cause.message ?? e.cause})` : ""}`);
  }
  // A new connection starts a new stream: drop any half-received event.
  parser.reset({ consume: false });
  await new Promise((r) => setTimeout(r, retryMs));
}
