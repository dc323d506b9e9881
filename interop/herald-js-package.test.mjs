// clients/js is a publishable package: its exports resolve to the module,
// the module exports what herald.d.ts declares, and the file the hub embeds
// is this one (crates/herald-server/src/routes/assets.rs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..", "clients", "js");
const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));

test("package.json names an ES module with types", () => {
  assert.equal(pkg.type, "module");
  assert.equal(pkg.exports["."].default, "./herald.js");
  assert.equal(pkg.exports["."].types, "./herald.d.ts");
  for (const file of pkg.files) assert.ok(existsSync(join(pkgDir, file)), file);
});

test("the module exports what herald.d.ts declares", async () => {
  const mod = await import(pathToFileURL(join(pkgDir, pkg.exports["."].default)));
  const dts = readFileSync(join(pkgDir, "herald.d.ts"), "utf8");
  const declared = new Set([...dts.matchAll(/^export declare (?:const|class|function) (\w+)/gm)].map((m) => m[1]));
  declared.add("EventSource");
  declared.add("default");
  assert.deepEqual(new Set(Object.keys(mod)), declared);
  assert.equal(mod.EventSource, mod.HeraldEventSource);
  assert.equal(mod.default, mod.HeraldEventSource);
});

test("a source in Node (no tabs to share with) has its own connection, and ends on a 404", async () => {
  const { HeraldEventSource } = await import(pathToFileURL(join(pkgDir, "herald.js")));
  let asked = 0;
  const fetch = async () => {
    asked++;
    return new Response("no", { status: 404 });
  };
  const source = new HeraldEventSource("http://127.0.0.1:9/.well-known/mercure?match=x", { fetch, retry: 10 });
  assert.equal(source.share, "none");
  assert.equal(source.readyState, HeraldEventSource.CONNECTING);
  const error = await new Promise((resolve) => (source.onerror = resolve));
  assert.equal(error.status, 404);
  assert.equal(error.fatal, true);
  assert.equal(source.readyState, HeraldEventSource.CLOSED);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(asked, 1);
});
