import { test } from "node:test";
import assert from "node:assert/strict";
import { buildEventTable, hiitrackFunnel, matchesWhere, runFunnel, type FunnelSpec, type RawEvent, type StepResult } from "../src/funnels/engine.js";

const ev = (visitor: string, ts: number, name: string, data?: Record<string, unknown>): RawEvent => ({ visitor, ts, name, data: data ?? null });
const counts = (steps: StepResult[]) => steps.map((s) => s.visitors);

test("event table: columnar, sorted by (visitor, ts, input order), with offsets and dictionaries", () => {
  const t = buildEventTable([ev("b", 5, "x"), ev("a", 3, "y", { k: 1 }), ev("b", 1, "y"), ev("a", 3, "x"), ev("b", 5, "z")]);
  assert.deepEqual(t.visitorIds, ["b", "a"]);
  assert.deepEqual(t.names, ["x", "y", "z"]);
  assert.deepEqual([...t.offsets], [0, 3, 5]);
  assert.equal(t.length, 5);
  assert.deepEqual([...t.ts.subarray(0, t.length)], [1, 5, 5, 3, 3]);
  assert.deepEqual(
    [...t.name.subarray(0, t.length)].map((i) => t.names[i]),
    ["y", "x", "z", "y", "x"],
  );
  assert.deepEqual(t.data(3), { k: 1 });
  assert.ok(t.ts instanceof Float64Array && t.visitor instanceof Uint32Array);
});

test("ordered: other events may come between; first matching event after the previous step", () => {
  const t = buildEventTable([
    ev("v1", 0, "a"),
    ev("v1", 10, "x"),
    ev("v1", 20, "b"),
    ev("v1", 30, "c"),
    ev("v2", 0, "a"),
    ev("v2", 5, "c"),
    ev("v2", 6, "b"),
    ev("v3", 0, "b"),
    ev("v3", 1, "c"),
  ]);
  const r = runFunnel(t, { steps: [{ name: "a" }, { name: "b" }, { name: "c" }], order: "ordered" });
  assert.deepEqual(counts(r.steps), [2, 2, 1]);
  assert.equal(r.steps[1].conversion_from_previous, 1);
  assert.equal(r.steps[2].conversion_from_previous, 0.5);
  assert.equal(r.steps[2].conversion_from_first, 0.5);
  assert.deepEqual(r.steps[2].dropped_off_sample, ["v2"]);
  assert.deepEqual(r.steps[0].dropped_off_sample, []);
  assert.equal(r.steps[0].median_ms_to_convert, null);
});

test("strict: the next step must be the visitor's very next event", () => {
  const t = buildEventTable([
    ev("v1", 0, "a"),
    ev("v1", 1, "x"),
    ev("v1", 2, "b"),
    ev("v2", 0, "a"),
    ev("v2", 1, "b"),
    ev("v3", 0, "a"),
    ev("v3", 1, "a"),
    ev("v3", 2, "b"),
  ]);
  const spec: FunnelSpec = { steps: [{ name: "a" }, { name: "b" }], order: "strict" };
  const r = runFunnel(t, spec);
  assert.deepEqual(counts(r.steps), [3, 2]);
  assert.deepEqual(r.steps[1].dropped_off_sample, ["v1"]);
  assert.deepEqual(counts(runFunnel(t, { ...spec, order: "ordered" }).steps), [3, 3]);
});

test("any: steps in any order within the window from the attempt's first event; each event serves one step", () => {
  const t = buildEventTable([
    ev("v1", 0, "c"),
    ev("v1", 5, "b"),
    ev("v1", 9, "a"),
    ev("v2", 0, "b"),
    ev("v2", 100, "a"),
    ev("v3", 0, "a"), // one event cannot serve two steps that both match it
    ev("v4", 0, "a"),
    ev("v4", 1, "a"),
  ]);
  const steps = [{ name: "a" }, { name: "b" }, { name: "c" }];
  assert.deepEqual(counts(runFunnel(t, { steps, order: "any" }).steps), [4, 2, 1]);
  assert.deepEqual(counts(runFunnel(t, { steps, order: "any", window_ms: 50 }).steps), [4, 1, 1]);
  // ordered needs a first: nobody has b after a
  assert.deepEqual(counts(runFunnel(t, { steps, order: "ordered" }).steps), [4, 0, 0]);
  const dup = runFunnel(t, { steps: [{ name: "a" }, { name: "a" }], order: "any" });
  assert.deepEqual(counts(dup.steps), [4, 1]); // only v4 has two a events
  // augmenting path: the first event matches both steps, the second only step 0 → both steps reached
  const t2 = buildEventTable([ev("v", 0, "p", { k: 1 }), ev("v", 1, "p", { k: 2 })]);
  const r2 = runFunnel(t2, { steps: [{ name: "p" }, { name: "p", where: { k: 1 } }], order: "any" });
  assert.deepEqual(counts(r2.steps), [1, 1]);
});

test("window from the first step and step window between consecutive steps (inclusive)", () => {
  const t = buildEventTable([
    ev("v1", 0, "a"),
    ev("v1", 100, "b"),
    ev("v1", 200, "c"),
    ev("v2", 0, "a"),
    ev("v2", 50, "b"),
    ev("v2", 250, "c"),
    ev("v3", 0, "a"),
    ev("v3", 500, "a"),
    ev("v3", 600, "b"),
  ]);
  const steps = [{ name: "a" }, { name: "b" }, { name: "c" }];
  assert.deepEqual(counts(runFunnel(t, { steps, order: "ordered" }).steps), [3, 3, 2]);
  assert.deepEqual(counts(runFunnel(t, { steps, order: "ordered", window_ms: 200 }).steps), [3, 3, 1]);
  assert.deepEqual(counts(runFunnel(t, { steps, order: "ordered", window_ms: 199 }).steps), [3, 3, 0]);
  // v3 converts through its second attempt (start 500) only
  assert.deepEqual(counts(runFunnel(t, { steps, order: "ordered", window_ms: 100 }).steps), [3, 3, 0]);
  assert.deepEqual(counts(runFunnel(t, { steps, order: "ordered", step_window_ms: 100 }).steps), [3, 3, 1]);
  assert.deepEqual(counts(runFunnel(t, { steps, order: "ordered", step_window_ms: 99 }).steps), [3, 1, 0]);
});

test("exclusions: an exclusion event between the steps disqualifies the attempt", () => {
  const t = buildEventTable([
    ev("v1", 0, "a"),
    ev("v1", 1, "x"),
    ev("v1", 2, "b"),
    ev("v1", 3, "c"),
    ev("v2", 0, "a"),
    ev("v2", 1, "b"),
    ev("v2", 2, "x"),
    ev("v2", 3, "c"),
    ev("v3", 0, "a"),
    ev("v3", 1, "x"),
    ev("v3", 2, "a"),
    ev("v3", 3, "b"),
    ev("v4", 0, "a"),
    ev("v4", 1, "b"),
    ev("v4", 2, "x"), // after the last reached step: no effect
  ]);
  const steps = [{ name: "a" }, { name: "b" }, { name: "c" }];
  // whole funnel: v1, v2 disqualified; v3 converts through its second attempt
  assert.deepEqual(counts(runFunnel(t, { steps, order: "ordered", exclusions: [{ name: "x" }] }).steps), [2, 2, 0]);
  // only between step 1 and step 2 (0-based): v1 is fine, v2 out
  assert.deepEqual(counts(runFunnel(t, { steps, order: "ordered", exclusions: [{ name: "x", between: [1, 2] }] }).steps), [3, 3, 1]);
  // any: an attempt may start at any step event, so v1 converts b → c (start 2) and v2 reaches c alone
  assert.deepEqual(counts(runFunnel(t, { steps, order: "any", exclusions: [{ name: "x" }] }).steps), [4, 3, 0]);
  assert.throws(() => runFunnel(t, { steps, order: "ordered", exclusions: [{ name: "x", between: [2, 1] }] }), RangeError);
});

test("time range: the first step must be in [from, to)", () => {
  const t = buildEventTable([ev("v1", 5, "a"), ev("v1", 50, "b"), ev("v2", 10, "a"), ev("v2", 11, "b"), ev("v3", 20, "a"), ev("v3", 21, "b")]);
  const steps = [{ name: "a" }, { name: "b" }];
  assert.deepEqual(counts(runFunnel(t, { steps, order: "ordered", from: 10, to: 20 }).steps), [1, 1]);
  assert.deepEqual(counts(runFunnel(t, { steps, order: "ordered", from: 0, to: 10 }).steps), [1, 1]);
});

test("step filters on event data and breakdown by a data field with first-touch attribution", () => {
  const t = buildEventTable([
    ev("v1", 0, "view", { src: "mail", plan: 1 }),
    ev("v1", 1, "signup", { plan: "pro" }),
    ev("v2", 0, "view", { src: "ads" }),
    ev("v2", 5, "view", { src: "mail" }),
    ev("v2", 6, "signup", { plan: "free" }),
    ev("v3", 0, "view"),
    ev("v4", 0, "view", { src: "ads" }),
  ]);
  const steps = [{ name: "view" }, { name: "signup" }];
  const r = runFunnel(t, { steps, order: "ordered", breakdown: { kind: "data", field: "src" } });
  assert.deepEqual(counts(r.steps), [4, 2]);
  assert.deepEqual(
    r.breakdown!.map((g) => [g.value, counts(g.steps)]),
    [
      ["ads", [2, 1]], // v2's best attempt starts at its first view (ads)
      ["mail", [1, 1]],
      [null, [1, 0]],
    ],
  );
  const filtered = runFunnel(t, {
    steps: [
      { name: "view", where: { src: "mail" } },
      { name: "signup", where: { plan: "pro" } },
    ],
    order: "ordered",
  });
  assert.deepEqual(counts(filtered.steps), [2, 1]);
  assert.equal(matchesWhere({ plan: 1 }, { plan: "1" }), false);
  assert.equal(matchesWhere(null, { plan: 1 }), false);
});

test("median and p90 time to convert (nearest rank) and the drop-off sample size", () => {
  const events: RawEvent[] = [];
  for (let i = 1; i <= 10; i++) {
    events.push(ev(`v${i}`, 0, "a"), ev(`v${i}`, i * 1000, "b"));
  }
  for (let i = 11; i <= 15; i++) events.push(ev(`v${i}`, 0, "a"));
  const t = buildEventTable(events);
  const r = runFunnel(t, { steps: [{ name: "a" }, { name: "b" }], order: "ordered", dropoff_sample: 3 });
  assert.equal(r.steps[1].median_ms_to_convert, 5000);
  assert.equal(r.steps[1].p90_ms_to_convert, 9000);
  assert.deepEqual(r.steps[1].dropped_off_sample, ["v11", "v12", "v13"]);
  assert.equal(r.steps[1].conversion_from_previous, 10 / 15);
});

test("HiiTrack funnel: the reference example numbers, unique and non-unique, with retroactive properties", () => {
  const seq: [string, string][] = [
    ["V1", "E3"],
    ["V1", "E3"],
    ["V1", "E1"],
    ["V1", "E1"],
    ["V2", "E1"],
    ["V3", "E1"],
    ["V1", "E2"],
    ["V2", "E2"],
    ["V1", "E2"],
    ["V1", "E3"],
    ["V1", "E3"],
  ];
  const t = buildEventTable(seq.map(([v, e], i) => ev(v, 1000 + i, e)));
  const props = {
    P1: new Map([["V1", ["A"]]]),
    P2: new Map([
      ["V1", ["B"]],
      ["V2", ["B"]],
    ]),
  };
  const f = hiitrackFunnel(t, ["E1", "E2", "E3"]);
  assert.deepEqual(f.funnel, [
    ["E1", 4],
    ["E2", 3],
    ["E3", 2],
  ]);
  assert.deepEqual(
    f.unique_funnel.map((x) => x[1]),
    [3, 2, 1],
  );
  const p1 = hiitrackFunnel(t, ["E1", "E2", "E3"], { property: props.P1 }).segments!;
  assert.deepEqual(
    p1.map((s) => [s.value, s.funnel.map((x) => x[1]), s.unique_funnel.map((x) => x[1])]),
    [["A", [2, 2, 2], [1, 1, 1]]],
  );
  const p2 = hiitrackFunnel(t, ["E1", "E2", "E3"], { property: props.P2 }).segments!;
  assert.deepEqual(
    p2.map((s) => [s.value, s.funnel.map((x) => x[1]), s.unique_funnel.map((x) => x[1])]),
    [["B", [3, 3, 2], [2, 2, 1]]],
  );
  // each step needs only the previous one at any earlier time: counts can rise; zero steps omitted per segment
  const t2 = buildEventTable([ev("a", 0, "E2"), ev("a", 1, "E3"), ev("a", 2, "E3"), ev("b", 0, "E1"), ev("c", 0, "E1"), ev("c", 1, "E1")]);
  const g = hiitrackFunnel(t2, ["E1", "E2", "E3"], {
    property: new Map([
      ["a", ["x"]],
      ["c", [1, "1"]],
    ]),
  });
  assert.deepEqual(
    g.funnel.map((x) => x[1]),
    [3, 0, 2],
  );
  assert.deepEqual(
    g.segments!.map((s) => [s.value, s.funnel]),
    [
      ["x", [["E3", 2]]],
      [1, [["E1", 2]]],
      ["1", [["E1", 2]]],
    ],
  );
  assert.deepEqual(
    hiitrackFunnel(t2, ["E1", "E1"]).funnel.map((x) => x[1]),
    [3, 1],
  );
});

// ---------- property-based comparison with a plain reference implementation ----------

function mulberry32(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Max number of steps that can each be given a distinct event (brute force). */
function maxMatching(evMatches: number[][], S: number): number {
  let best = 0;
  const used = new Set<number>();
  const go = (k: number, got: number) => {
    if (got + (S - k) <= best) return;
    if (k === S) {
      best = Math.max(best, got);
      return;
    }
    go(k + 1, got);
    for (let e = 0; e < evMatches.length; e++) {
      if (!used.has(e) && evMatches[e].includes(k)) {
        used.add(e);
        go(k + 1, got + 1);
        used.delete(e);
      }
    }
  };
  go(0, 0);
  return best;
}

function reference(events: RawEvent[], spec: FunnelSpec): { counts: number[]; times: number[][]; firstVals: unknown[] } {
  const S = spec.steps.length;
  const W = spec.window_ms ?? Infinity;
  const SW = spec.step_window_ms ?? Infinity;
  const byVisitor = new Map<string, { e: RawEvent; i: number }[]>();
  events.forEach((e, i) => {
    if (!byVisitor.has(e.visitor)) byVisitor.set(e.visitor, []);
    byVisitor.get(e.visitor)!.push({ e, i });
  });
  const resCounts = new Array(S).fill(0);
  const times: number[][] = Array.from({ length: S }, () => []);
  const firstVals: unknown[] = [];
  for (const list of byVisitor.values()) {
    list.sort((x, y) => x.e.ts - y.e.ts || x.i - y.i);
    const evs = list.map((x) => x.e);
    const matches = (e: RawEvent, k: number) => e.name === spec.steps[k].name && matchesWhere(e.data, spec.steps[k].where);
    const stepsOf = (e: RawEvent) => spec.steps.map((_, k) => k).filter((k) => matches(e, k));
    const isExcl = (e: RawEvent, x: number) => e.name === spec.exclusions![x].name && stepsOf(e).length === 0;
    let best = { reached: 0, times: [] as number[], start: -1 };
    for (let s = 0; s < evs.length; s++) {
      const t0 = evs[s].ts;
      if (t0 < (spec.from ?? -Infinity) || t0 >= (spec.to ?? Infinity)) continue;
      let reached = 0;
      const tms: number[] = [];
      const pos: number[] = [];
      if (spec.order === "any") {
        if (stepsOf(evs[s]).length === 0) continue;
        let last = t0;
        for (let j = s; j < evs.length; j++) {
          if (evs[j].ts - t0 > W || evs[j].ts - last > SW) break;
          const m = maxMatching(evs.slice(s, j + 1).map(stepsOf), S);
          if (m > reached) {
            reached = m;
            tms.push(evs[j].ts);
            pos.push(j);
            last = evs[j].ts;
          }
        }
        for (let x = 0; x < (spec.exclusions ?? []).length; x++) {
          for (let j = s + 1; reached > 0 && j < pos[reached - 1]; j++) if (isExcl(evs[j], x)) reached = 0;
        }
      } else {
        if (!matches(evs[s], 0)) continue;
        reached = 1;
        tms.push(t0);
        pos.push(s);
        while (reached < S) {
          const p = pos[reached - 1];
          let q = -1;
          if (spec.order === "strict") {
            if (p + 1 < evs.length && matches(evs[p + 1], reached)) q = p + 1;
          } else {
            for (let j = p + 1; j < evs.length; j++) {
              if (matches(evs[j], reached)) {
                q = j;
                break;
              }
            }
          }
          if (q < 0 || evs[q].ts - t0 > W || evs[q].ts - tms[reached - 1] > SW) break;
          pos.push(q);
          tms.push(evs[q].ts);
          reached++;
        }
        (spec.exclusions ?? []).forEach((x, xi) => {
          const [a, b] = x.between ?? [0, S - 1];
          if (reached === 0 || reached - 1 <= a) return;
          for (let j = pos[a] + 1; j < pos[Math.min(b, reached - 1)]; j++) if (isExcl(evs[j], xi)) reached = 0;
        });
      }
      if (reached > best.reached) best = { reached, times: tms.slice(0, reached), start: s };
    }
    for (let k = 0; k < best.reached; k++) {
      resCounts[k]++;
      if (k > 0) times[k].push(best.times[k] - best.times[k - 1]);
    }
    if (best.reached > 0) firstVals.push(evs[best.start].data?.src ?? null);
  }
  return { counts: resCounts, times: times.map((x) => x.sort((a, b) => a - b)), firstVals };
}

test("property: the engine agrees with a plain reference implementation on 2,000 random logs", () => {
  const rnd = mulberry32(20240607);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const names = ["a", "b", "c", "x"];
  let compared = 0;
  for (let iter = 0; iter < 2000; iter++) {
    const events: RawEvent[] = [];
    const nv = 1 + Math.floor(rnd() * 4);
    const ne = Math.floor(rnd() * 14);
    for (let i = 0; i < ne; i++) {
      const data = rnd() < 0.5 ? { src: pick(["m", "n"]) } : null;
      events.push({ visitor: `v${Math.floor(rnd() * nv)}`, ts: Math.floor(rnd() * 20), name: pick(names), data });
    }
    const S = 2 + Math.floor(rnd() * 2);
    const steps = Array.from({ length: S }, () =>
      rnd() < 0.2 ? { name: pick(names.slice(0, 3)), where: { src: "m" } } : { name: pick(names.slice(0, 3)) },
    );
    const table = buildEventTable(events);
    for (const order of ["ordered", "strict", "any"] as const) {
      for (const windows of [false, true]) {
        const spec: FunnelSpec = { steps, order, breakdown: { kind: "data", field: "src" } };
        if (windows) {
          spec.window_ms = Math.floor(rnd() * 15);
          if (rnd() < 0.5) spec.step_window_ms = Math.floor(rnd() * 8);
          if (rnd() < 0.5) spec.exclusions = [rnd() < 0.5 ? { name: "x" } : { name: "x", between: [S - 2, S - 1] }];
          if (rnd() < 0.3) {
            spec.from = 3;
            spec.to = 15;
          }
        }
        const got = runFunnel(table, spec);
        const want = reference(events, spec);
        const ctx = JSON.stringify({ events, spec });
        assert.deepEqual(counts(got.steps), want.counts, ctx);
        for (let k = 1; k < S; k++) {
          const d = want.times[k];
          assert.equal(got.steps[k].median_ms_to_convert, d.length ? d[Math.ceil(0.5 * d.length) - 1] : null, ctx);
          assert.equal(got.steps[k].p90_ms_to_convert, d.length ? d[Math.ceil(0.9 * d.length) - 1] : null, ctx);
        }
        const byVal = new Map<string, number>();
        for (const v of want.firstVals) byVal.set(JSON.stringify(v), (byVal.get(JSON.stringify(v)) ?? 0) + 1);
        assert.deepEqual(new Map(got.breakdown!.map((g) => [JSON.stringify(g.value), g.steps[0].visitors])), byVal, ctx);
        compared++;
      }
    }
  }
  assert.equal(compared, 12000);
});

test("performance self-check: 200,000 events, 20,000 visitors, 3-step funnel (time is logged, not asserted)", () => {
  const rnd = mulberry32(7);
  const names = ["view", "click", "signup", "other"];
  const events: RawEvent[] = [];
  for (let i = 0; i < 200_000; i++) {
    events.push({ visitor: `v${Math.floor(rnd() * 20_000)}`, ts: Math.floor(rnd() * 86_400_000), name: names[Math.floor(rnd() * 4)], data: null });
  }
  let t = performance.now();
  const table = buildEventTable(events);
  const buildMs = performance.now() - t;
  const steps = [{ name: "view" }, { name: "click" }, { name: "signup" }];
  for (const order of ["ordered", "strict", "any"] as const) {
    t = performance.now();
    const r = runFunnel(table, { steps, order, window_ms: 3_600_000 * 6 });
    const ms = performance.now() - t;
    console.log(`# funnel ${order}: build ${buildMs.toFixed(0)} ms, run ${ms.toFixed(0)} ms, steps ${counts(r.steps).join("/")}`);
    assert.ok(r.steps[0].visitors > 0);
  }
});
