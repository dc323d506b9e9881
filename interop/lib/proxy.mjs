// A TCP proxy in front of the hub, so a test can cut a client's connection
// mid-stream (as a flaky network would), hold its reconnection until the
// test is ready, or refuse it (a network error for the client); it notes
// when each connection was tried (`attempts`, ms timestamps).
import net from "node:net";

export async function startProxy(targetPort) {
  const sockets = new Set();
  const attempts = [];
  let held = null; // while set: new connections wait here
  let refusing = false;
  const server = net.createServer((client) => {
    attempts.push(Date.now());
    if (refusing) {
      client.destroy();
      return;
    }
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
    attempts,
    connections: () => sockets.size / 2,
    // Drops every open connection and (unless `hold: false`) holds new
    // ones until `release`.
    cut({ hold = true } = {}) {
      if (hold) held = [];
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    // Closes new connections at once until `accept`.
    refuse() {
      refusing = true;
    },
    accept() {
      refusing = false;
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
