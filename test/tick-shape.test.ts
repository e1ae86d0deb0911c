import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/**
 * src/util/tick-shape.ts: a full garbage collection while no `process.nextTick` entry is queued must not leave
 * nextTick's object literal megamorphic (every later nextTick through V8's runtime, ~0.3 µs each, several per HTTP
 * request). Read from V8 itself: `%DebugPrint(process.nextTick)` lists the state of each of its feedback slots.
 */
const CHILD = `
if (process.env.LOAD) await import(process.env.LOAD);
const pause = () => new Promise((r) => setTimeout(r, 20));
for (let i = 0; i < 300; i++) process.nextTick(() => {});
await pause();
gc();
gc();
await pause();
for (let i = 0; i < 300; i++) process.nextTick(() => {}, i);
await pause();
%DebugPrint(process.nextTick);
`;

/** The states of nextTick's computed-key literal slots after the collection, loading `load` first. */
function literalSlots(load: string | null): string[] {
  const out = execFileSync(process.execPath, ["--allow-natives-syntax", "--expose-gc", "--input-type=module", "-e", CHILD], {
    env: { ...process.env, LOAD: load ?? "" },
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  return [...out.matchAll(/slot #\d+ DefineKeyedOwnPropertyInLiteral (\w+)/g)].map((m) => m[1]!);
}

test("every entry point imports the tick shape's keeper before anything else", () => {
  for (const file of ["main.js", "app.js", "events/writer-worker.js", "store/sqlite/checkpointer.js"]) {
    const source = readFileSync(new URL(`../src/${file}`, import.meta.url), "utf8");
    const first = /^import\s[^;]*;/m.exec(source)?.[0];
    assert.match(first ?? "", /util\/tick-shape\.js"/, `dist/src/${file}: its first import is ${first}`);
  }
});

test("nextTick's queue entries keep their shape through a full garbage collection once Clicktrail is loaded", async (t) => {
  const control = literalSlots(null);
  if (!control.includes("MEGAMORPHIC")) {
    t.skip(`this Node (${process.version}) keeps nextTick's shape without help (slots: ${control.join(", ") || "none listed"}): nothing to check`);
    return;
  }
  // the library's entry, which loads most of Clicktrail (and collects garbage on the way, as a server starting does)
  const slots = literalSlots(new URL("../src/app.js", import.meta.url).href);
  assert.ok(slots.length >= 4, `nextTick's literal slots not found in V8's output (${slots.join(", ")})`);
  assert.deepEqual(
    slots.filter((s) => s !== "MONOMORPHIC"),
    [],
    `with dist/src/app.js loaded, nextTick's literal went ${slots.join(", ")} (without it: ${control.join(", ")})`,
  );
});
