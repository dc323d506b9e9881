// Starts a real `herald serve` on a free loopback port, with its own data
// directory, and gives the tests its URL, its publisher token and a
// publish helper.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const here = dirname(fileURLToPath(import.meta.url));
const defaultBin = join(here, "..", "..", "target", "debug", "herald");

export async function startHub({ retryMs = 200 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "herald-interop-"));
  const config = join(dir, "herald.toml");
  writeFileSync(config, `[server]\nretry_ms = ${retryMs}\n[hub]\nheartbeat_secs = 1\n`);
  const bin = process.env.HERALD_BIN || defaultBin;
  const child = spawn(bin, ["serve", "--config", config, "--listen", "127.0.0.1:0", "--data", join(dir, "data")], {
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
      const m = line.match(/listening on (http:\/\/\S+)/);
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
      const res = await fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${bearer}` },
        body,
      });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`publish: ${res.status} ${text}`);
      return text;
    },
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
