// The clients of the client matrix (../matrix.test.mjs), each behind one
// interface: `snapshot()` resolves to the events it has dispatched so far,
// as {type, data, id}; `log` holds what it said about itself (opens,
// errors, reconnects) for a failure message; `stop()` ends it.
//
// A process client is a script or binary that prints one JSON line per
// event (see ../clients/); a browser client is a Chromium page that pushes
// each event into `window.got`.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { readFileSync } from "node:fs";
import { join, dirname, basename } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const interopDir = join(here, "..");
export const heraldBin = process.env.HERALD_BIN || join(interopDir, "..", "target", "debug", "herald");
export const venvPython = join(interopDir, ".venv", "bin", "python");
export const rustClient = join(interopDir, "rust-client", "target", "debug", "herald-interop-rust-client");

// Starts `cmd args…` in its own process group (so `stop` ends its children
// too: curl.sh's curl and `herald decode`). `map` turns a parsed stdout
// line into {type, data, id}.
export function processClient(cmd, args, { map = (e) => e, env = {} } = {}) {
  const events = [];
  const log = [];
  const child = spawn(cmd, args, {
    cwd: interopDir,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    env: { ...process.env, PYTHONUNBUFFERED: "1", ...env },
  });
  let exited = false;
  child.on("error", (e) => {
    exited = true;
    log.push(`could not start ${cmd}: ${e.message} (scripts/test builds it: interop/clients/setup.sh)`);
  });
  child.on("exit", (code, signal) => {
    exited = true;
    log.push(`exited: ${code ?? signal}`);
  });
  createInterface({ input: child.stdout }).on("line", (line) => {
    try {
      const e = map(JSON.parse(line));
      events.push({ type: e.type, data: e.data, id: e.id });
    } catch {
      log.push(`stdout, not an event: ${line}`);
    }
  });
  createInterface({ input: child.stderr }).on("line", (line) => log.push(line));
  return {
    log,
    snapshot: async () => events.slice(),
    async stop() {
      if (exited) return;
      const gone = new Promise((r) => child.once("exit", r));
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        return;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {}
      }, 3000);
      await gone;
      clearTimeout(timer);
    },
  };
}

// A fresh browser context (its own SharedWorkers and connection pool) with
// one page on `base`, the hub's origin through the client's proxy; `setup`
// opens the client in the page, which pushes events into `window.got`.
export async function browserClient(browser, base, setup) {
  const log = [];
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("console", (m) => log.push(`console.${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => log.push(`page error: ${e.message}`));
  await page.goto(`${base}/`);
  await setup(page);
  let last = [];
  return {
    log,
    async snapshot() {
      try {
        last = await page.evaluate(() => window.got.slice());
      } catch (e) {
        log.push(`could not read the page: ${e.message}`);
      }
      return last;
    },
    stop: () => context.close(),
  };
}

// Serves @microsoft/fetch-event-source's ESM build to `page` under
// /vendor/fetch-event-source/ on the page's own origin (no CDN, no
// bundler): its modules import './fetch' and './parse' without the `.js`
// that a browser needs, so the route adds it.
export async function serveFetchEventSource(page, base) {
  const dir = join(interopDir, "node_modules", "@microsoft", "fetch-event-source", "lib", "esm");
  await page.route(`${base}/vendor/fetch-event-source/**`, (route) => {
    let file = basename(new URL(route.request().url()).pathname);
    if (!file.endsWith(".js")) file += ".js";
    route.fulfill({ status: 200, contentType: "text/javascript", body: readFileSync(join(dir, file)) });
  });
}

// The first place two event lists differ, for a failure message.
export function describeDifference(got, want) {
  const show = (e) => (e === undefined ? "nothing" : JSON.stringify(e));
  for (let i = 0; i < Math.max(got.length, want.length); i++) {
    const g = got[i];
    const w = want[i];
    if (!g || !w || g.type !== w.type || g.data !== w.data || g.id !== w.id) {
      return `got ${got.length} events, want ${want.length}; first difference at event ${i}:\n  got  ${show(g)}\n  want ${show(w)}`;
    }
  }
  return null;
}
