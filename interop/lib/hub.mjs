// Starts a real `herald serve` on a free loopback port, with its own data
// directory, and gives the tests its URL, its publisher token and a
// publish helper.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";

const here = dirname(fileURLToPath(import.meta.url));
const defaultBin = join(here, "..", "..", "target", "debug", "herald");

// `tls`: `{ cert, key, pem }` (see certs.mjs) to serve HTTPS; the test's
// own requests (publish, metrics) then trust that certificate only.
// `compression`: the `[server] compression` setting ("gzip").
// `heartbeatSecs`: 0 for none.
export async function startHub({ retryMs = 200, tls = null, compression = "none", heartbeatSecs = 1 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "herald-interop-"));
  const config = join(dir, "herald.toml");
  writeFileSync(
    config,
    `[server]\nretry_ms = ${retryMs}\ncompression = "${compression}"\n[hub]\nheartbeat_secs = ${heartbeatSecs}\n`,
  );
  const bin = process.env.HERALD_BIN || defaultBin;
  const args = ["serve", "--config", config, "--listen", "127.0.0.1:0", "--data", join(dir, "data")];
  if (tls) args.push("--tls-cert", tls.cert, "--tls-key", tls.key);
  const child = spawn(bin, args, {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stderr = [];
  const token = new Promise((resolve) => {
    createInterface({ input: child.stdout }).once("line", (line) => resolve(line.trim()));
  });
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`herald did not start:\n${stderr.join("\n")}`)), 20000);
    createInterface({ input: child.stderr }).on("line", (line) => {
      stderr.push(line);
      const m = line.match(/listening on (https?:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once("exit", (code) => reject(new Error(`herald exited with ${code}:\n${stderr.join("\n")}`)));
  });
  const url = `${base}/.well-known/mercure`;
  const bearer = await token;
  return {
    base,
    url,
    port: Number(new URL(base).port),
    token: bearer,
    stderr,
    async publish(fields) {
      const body = new URLSearchParams();
      for (const [k, v] of fields) body.append(k, v);
      const res = await send(url, {
        method: "POST",
        headers: {
          authorization: `Bearer ${bearer}`,
          "content-type": "application/x-www-form-urlencoded",
        },
        body: body.toString(),
        ca: tls?.pem,
      });
      if (res.status !== 200) throw new Error(`publish: ${res.status} ${res.text}`);
      return res.text;
    },
    // The hub's /metrics text.
    async metrics() {
      const res = await send(`${base}/metrics`, { method: "GET", ca: tls?.pem });
      return res.text;
    },
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// One HTTP(S) request with node:http(s), trusting `ca` when given (the
// global fetch cannot be told to trust one certificate).
function send(url, { method, headers = {}, body = "", ca }) {
  const target = new URL(url);
  const request = target.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      { method, headers: { ...headers, "content-length": Buffer.byteLength(body) }, ca, servername: "localhost" },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode, text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}
