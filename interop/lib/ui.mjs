// Helpers for the /ui tests: pages at a given width, screenshots saved as
// artefacts (interop/artifacts/, not committed), the tester's log read
// from its DOM, and a small SSE server on another origin.
import http from "node:http";
import { mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const artifacts = process.env.HERALD_ARTIFACTS || join(here, "..", "artifacts");

// Widths the pages are checked and photographed at: a phone, a desktop.
export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1366, height: 900 };

// A page of `size` on `url` that fails the test on any console error or
// uncaught exception (a CSP violation is a console error) unless `allow`
// matches it.
export async function openPage(browser, url, { size = DESKTOP, allow = null } = {}) {
  const context = await browser.newContext({ viewport: size, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.problems = [];
  page.on("pageerror", (error) => page.problems.push(`uncaught: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const text = message.text();
    if (allow && allow.test(text)) return;
    page.problems.push(`console: ${text}`);
  });
  await page.goto(url);
  await page.waitForFunction(() => document.documentElement.dataset.ready === "true");
  return page;
}

// Saves a full-page screenshot as artifacts/NAME.png; returns its path.
export async function screenshot(page, name) {
  mkdirSync(artifacts, { recursive: true });
  const path = join(artifacts, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

// Layout faults a screenshot would show: content wider than the viewport
// (a phone would scroll sideways), text cut by its box, and controls that
// overlap each other. Returns a list of descriptions (empty: none).
export function layoutProblems(page) {
  return page.evaluate(() => {
    const problems = [];
    const width = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth > width + 1) {
      problems.push(`the page is ${document.documentElement.scrollWidth}px wide in a ${width}px viewport`);
    }
    const visible = (el) => {
      const r = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      return r.width > 0 && r.height > 0 && style.visibility !== "hidden" && !el.closest("[hidden], .sr, .skip");
    };
    const controls = [...document.querySelectorAll("button, input, select, textarea, label, h1, h2, h3, dt, dd, a, summary")].filter(visible);
    for (const el of controls) {
      const r = el.getBoundingClientRect();
      if (r.right > width + 1) problems.push(`${describe(el)} ends at ${Math.round(r.right)}px, past the ${width}px viewport`);
      // Text cut by its own box (overflow hidden with content wider than it).
      const style = getComputedStyle(el);
      if (style.overflowX !== "visible" && el.scrollWidth > el.clientWidth + 1 && el.tagName !== "TEXTAREA" && el.tagName !== "INPUT") {
        problems.push(`${describe(el)} clips its text (${el.scrollWidth} > ${el.clientWidth})`);
      }
    }
    const boxes = [...document.querySelectorAll("button, input, select, textarea")].filter(visible).map((el) => [el, el.getBoundingClientRect()]);
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const [a, ra] = boxes[i];
        const [b, rb] = boxes[j];
        if (a.contains(b) || b.contains(a)) continue;
        const overlapX = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
        const overlapY = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
        if (overlapX > 2 && overlapY > 2) problems.push(`${describe(a)} overlaps ${describe(b)}`);
      }
    }
    return problems;

    function describe(el) {
      const id = el.id ? `#${el.id}` : "";
      const text = (el.textContent || el.value || "").trim().slice(0, 30);
      return `<${el.tagName.toLowerCase()}${id}>${text ? ` "${text}"` : ""}`;
    }
  });
}

// The tester's log, oldest first: {kind, type, id, data, text}.
export function testerLog(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("#events > li")].reverse().map((li) => ({
      kind: [...li.classList].find((c) => c !== "entry"),
      type: li.dataset.type ?? null,
      id: li.dataset.id ?? null,
      hidden: li.hidden,
      data: li.querySelector("pre.data")?.textContent ?? null,
      text: li.textContent,
    })),
  );
}

// A tiny SSE server on its own port (another origin than the hub): GET
// /events sends `events` ({id, type, data}) then holds the stream open;
// with `cors`, `Access-Control-Allow-Origin: *`.
export async function startForeignSse({ cors = true, events = [] } = {}) {
  const open = new Set();
  const server = http.createServer((req, res) => {
    const headers = { "content-type": "text/event-stream", "cache-control": "no-cache" };
    if (cors) headers["access-control-allow-origin"] = "*";
    if (req.method !== "GET" || !req.url.startsWith("/events")) {
      res.writeHead(404, cors ? { "access-control-allow-origin": "*" } : {});
      res.end("not found\n");
      return;
    }
    res.writeHead(200, headers);
    res.write("retry: 1500\n\n");
    for (const e of events) {
      if (e.id) res.write(`id: ${e.id}\n`);
      if (e.type) res.write(`event: ${e.type}\n`);
      res.write(`data: ${e.data}\n\n`);
    }
    open.add(res);
    req.on("close", () => open.delete(res));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    close() {
      for (const res of open) res.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}
