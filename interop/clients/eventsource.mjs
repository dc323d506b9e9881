// npm `eventsource` (the WHATWG EventSource for Node) as a Herald
// subscriber, for the client matrix (../matrix.test.mjs).
//
// Usage: HERALD_TOKEN=… node eventsource.mjs URL TYPE[,TYPE…]
//
// Prints one JSON line per event, {"type", "data", "id"}. EventSource
// reconnects by itself with Last-Event-ID; like the browser's, it only
// dispatches a typed event to a listener for that type. A header (the
// bearer token) goes through its `fetch` option, as its README shows.
import { EventSource } from "eventsource";

const [url, types = "message"] = process.argv.slice(2);
const source = new EventSource(url, {
  fetch: (input, init) =>
    fetch(input, { ...init, headers: { ...init.headers, Authorization: `Bearer ${process.env.HERALD_TOKEN}` } }),
});
source.onopen = () => console.error("open");
source.onerror = (e) => console.error(`error: ${e.message ?? e.type}`);
for (const type of types.split(",")) {
  source.addEventListener(type, (e) => {
    process.stdout.write(JSON.stringify({ type: e.type, data: e.data, id: e.lastEventId }) + "\n");
  });
}
