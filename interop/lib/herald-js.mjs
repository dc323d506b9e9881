// Helpers for the herald.js tests: Chromium, tabs that load /herald.js from
// the hub and record what their sources dispatch, tokens minted by
// `herald token`, and the hub's subscriber gauge (the TCP proxy that cuts,
// refuses and times connections is proxy.mjs's).
import { execFileSync } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const corpusPath = join(here, "..", "..", "crates", "herald-proto", "tests", "data", "parser.jsonl");

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

// A tab on `base` (the hub's origin) with herald.js imported as `window.hj`
// and `window.listen(name, url, options)`, which opens a HeraldEventSource
// and records into `window.logs[name]`: `events` ({type, data, id}),
// `opens`, `errors` ({status, fatal, readyState}), `gaps`.
export async function openTab(context, base) {
  const page = await context.newPage();
  await page.goto(`${base}/`);
  await page.evaluate(async () => {
    window.hj = await import("/herald.js");
    window.logs = {};
    window.sources = {};
    window.listen = (name, url, options = {}) => {
      const log = { events: [], opens: 0, errors: [], gaps: [], share: null };
      const source = new window.hj.HeraldEventSource(url, options);
      log.share = source.share;
      source.onopen = () => log.opens++;
      source.onmessage = (e) => log.events.push({ type: e.type, data: e.data, id: e.lastEventId });
      source.onerror = (e) => log.errors.push({ status: e.status ?? null, fatal: e.fatal, readyState: source.readyState });
      source.addEventListener("gap", (e) => log.gaps.push({ lastEventId: e.lastEventId, resumedFrom: e.resumedFrom }));
      window.logs[name] = log;
      window.sources[name] = source;
      return log.share;
    };
  });
  return page;
}

// The page's log `name` (see openTab).
export function log(page, name) {
  return page.evaluate((n) => window.logs[n], name);
}

// One unlabelled sample of the hub's /metrics.
export async function metric(hub, name) {
  const text = await hub.metrics();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no ${name} in:\n${text}`);
  return Number(line.split(" ")[1]);
}

// The hub's `herald_subscribers` gauge: subscribers connected now.
export function subscribers(hub) {
  return metric(hub, "herald_subscribers");
}

// A token from `herald token --data DIR ARGS…`, signed with the test hub's
// own key (its path is in the hub's log).
export function mintToken(hub, args) {
  const keyLine = hub.stderr.find((l) => /path=\S+\/hub\.key/.test(l));
  if (!keyLine) throw new Error(`no key path in the hub's log:\n${hub.stderr.join("\n")}`);
  const dir = keyLine.match(/path=(\S+)\/hub\.key/)[1];
  const bin = process.env.HERALD_BIN || join(here, "..", "..", "target", "debug", "herald");
  return execFileSync(bin, ["token", "--data", dir, "--hub", hub.url, ...args], { encoding: "utf8" }).trim();
}
