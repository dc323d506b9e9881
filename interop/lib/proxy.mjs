// A TCP proxy in front of the hub, so a test can cut a client's connection
// mid-stream (as a flaky network would) and hold its reconnection until
// the test is ready.
import net from "node:net";

export async function startProxy(targetPort) {
  const sockets = new Set();
  let held = null; // while set: new connections wait here
  const server = net.createServer((client) => {
    const connect = () => {
      const upstream = net.connect(targetPort, "127.0.0.1");
      sockets.add(client);
      sockets.add(upstream);
      client.pipe(upstream);
      upstream.pipe(client);
      const close = () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on("error", close);
      upstream.on("error", close);
      client.on("close", close);
      upstream.on("close", close);
    };
    if (held) held.push(connect);
    else connect();
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const port = server.address().port;
  return {
    base: `http://127.0.0.1:${port}`,
    connections: () => sockets.size / 2,
    // Drops every open connection and holds new ones until `release`.
    cut() {
      held = [];
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    waiting: () => (held ? held.length : 0),
    release() {
      const waiting = held || [];
      held = null;
      for (const connect of waiting) connect();
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

export async function until(what, check, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
