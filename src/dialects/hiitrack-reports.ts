import { hiitrackFunnel } from "../funnels/engine.js";
import type { ProjectData } from "../funnels/source.js";
import { eventReport, jsonKey, nameId, propertyReport, series, sum, valueId, type Buckets, type Counts } from "./hiitrack-counts.js";
import { HtError, type Params } from "./hiitrack-http.js";

/**
 * The HiiTrack dialect's reports (seed-apis.md §5): the bodies of the event, property and funnel reports of a bucket,
 * from its project's in-memory event table with HiiTrack's semantics (hiitrack-counts.ts, hiitrackFunnel).
 */

/** Most steps in a funnel. */
export const HT_MAX_STEPS = 20;

// ---- reports ---------------------------------------------------------------------------------------------------

/** name → its id, for the event names and property names of a project (ids are resolved against known names). */
export function eventByIdOf(p: ProjectData, id: string): string | null {
  for (const n of p.table.names) if (nameId(n) === id) return n;
  return null;
}

export function propertyByIdOf(p: ProjectData, id: string): string | null {
  for (const n of p.propertyNames.keys()) if (nameId(n) === id) return n;
  return null;
}

function intParam(params: Params, name: string): number | undefined {
  const v = params.get(name)?.[0];
  if (v === undefined) return undefined;
  if (!/^\s*-?\d{1,15}\s*$/.test(v)) throw new HtError(400, `Parameter '${name}' must be an integer.`, "ValueError");
  return Number(v);
}

/** Property names a visitor holds (ever), for the `properties` of an event report. */
const namesOf = (p: ProjectData) => (v: number) => {
  const out = new Set<string>();
  for (const c of p.changesOf(v)) if (c.op !== "unset") out.add(c.name);
  return out;
};

export function eventBody(p: ProjectData, name: string, params: Params) {
  const t = p.table;
  const start = intParam(params, "start");
  let step: number | undefined;
  let finish = 0;
  if (start !== undefined) {
    const interval = params.get("interval")?.[0];
    if (interval !== undefined && interval !== "hour" && interval !== "day") throw new HtError(400, "Interval must be 'hour' or 'day'", "ValueError");
    step = interval === "hour" ? 3600 : 86_400;
    finish = intParam(params, "finish") ?? Math.floor(Date.now() / 1000);
  }
  const property = params.get("property")?.[0] || null;
  const r = eventReport(t, name, {
    step,
    valuesOf: property ? (v) => p.valuesOf(v, property, "ever", 0) : undefined,
    propertyNamesOf: namesOf(p),
  });
  const idOf = (ni: number) => nameId(t.names[ni]!);
  const isSeries = step !== undefined;
  const val = (b: Buckets | undefined) => (isSeries ? series(b, start!, finish) : sum(b));
  const nonEmpty = (x: unknown) => !(Array.isArray(x) && x.length === 0);
  const byPrev = (m: Map<number, Buckets>) =>
    Object.fromEntries([...m].map(([prev, b]) => [idOf(prev), val(b)] as const).filter(([, x]) => nonEmpty(x)));
  const out: Record<string, unknown> = { id: nameId(name), name };
  if (!property) {
    const seen = r.visitors > 0;
    // a never-seen event: HiiTrack's empty counters ({}), not 0
    out.total = seen || isSeries ? val(r.all.total) : {};
    out.unique_total = seen || isSeries ? val(r.all.unique) : {};
    out.path = byPrev(r.all.path);
    out.unique_path = byPrev(r.all.uniquePath);
  } else {
    const segs = [...r.segments.values()];
    // with a series, values and paths without a count in the range are left out
    const empty = (x: unknown) => isSeries && (Array.isArray(x) ? x.length === 0 : !!x && typeof x === "object" && Object.keys(x).length === 0);
    const per = (f: (c: Counts) => unknown) =>
      Object.fromEntries(segs.map((g) => [valueId(property, g.value), f(g.counts)] as const).filter(([, x]) => !empty(x)));
    out.values = Object.fromEntries(segs.map((g) => [valueId(property, g.value), g.value]));
    out.totals = per((c) => val(c.total));
    out.unique_totals = per((c) => val(c.unique));
    out.paths = per((c) => byPrev(c.path));
    out.unique_paths = per((c) => byPrev(c.uniquePath));
  }
  out.properties = Object.fromEntries([...r.properties].map((n) => [nameId(n), n]));
  return out;
}

export function propertyBody(p: ProjectData, name: string) {
  const t = p.table;
  const r = propertyReport(t, p.props.keys(), (v) => p.valuesOf(v, name, "ever", 0));
  const events: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  for (const g of r.values()) {
    const total: Record<string, number> = {};
    for (const [e, n] of g.totals) {
      const id = nameId(t.names[e]!);
      total[id] = n;
      events[id] = t.names[e]!;
    }
    values[valueId(name, g.value)] = { value: g.value, total };
  }
  return { id: nameId(name), name, values, events };
}

/** The steps a funnel request names: `event_id` (≥2) or `event` (≥2), in order. */
export function stepsOf(p: ProjectData, params: Params): string[] {
  const ids = params.get("event_id");
  const names = params.get("event");
  let steps: string[];
  if (ids && ids.length >= 2) steps = ids.map((id) => stepName(p, id));
  else if (names && names.length >= 2) steps = names;
  else if (ids) throw new HtError(403, "Parameter 'event_id' requires at least two values.", "MissingParameterException");
  else if (names) throw new HtError(403, "Parameter 'event' requires at least two values.", "MissingParameterException");
  else throw new HtError(403, "Parameters 'event' or 'event_id' required.", "MissingParameterException");
  if (steps.length > HT_MAX_STEPS) throw new HtError(400, `A funnel has at most ${HT_MAX_STEPS} steps.`, "ValueError");
  return steps;
}

function stepName(p: ProjectData, id: string): string {
  const n = eventByIdOf(p, id);
  if (n === null) throw new HtError(404, `Event ${id} does not exist.`, "NotFoundException");
  return n;
}

export function funnelBody(p: ProjectData, steps: string[], property: string | null) {
  const t = p.table;
  const valuesOf = property ? (v: number) => p.valuesOf(v, property, "ever", 0) : undefined;
  const reports = new Map(steps.map((n) => [n, eventReport(t, n, { valuesOf })]));
  const idOf = (ni: number) => nameId(t.names[ni]!);
  const byPrev = (m: Map<number, Buckets>) => Object.fromEntries([...m].map(([prev, b]) => [idOf(prev), sum(b)]));
  const perStep = (f: (c: Counts) => unknown, c: (n: string) => Counts | undefined) =>
    Object.fromEntries([...reports.keys()].flatMap((n) => (c(n) ? [[nameId(n), f(c(n)!)]] : [])));
  const all = (n: string) => reports.get(n)!.all;
  let propMap: Map<string, readonly unknown[]> | undefined;
  if (valuesOf) {
    propMap = new Map();
    for (let v = 0; v < t.offsets.length - 1; v++) {
      const vals = valuesOf(v);
      if (vals.length) propMap.set(t.visitorIds[v]!, vals);
    }
  }
  const f = hiitrackFunnel(t, steps, { property: propMap });
  const ids = (l: [string, number][]) => l.map(([n, c]) => [nameId(n), c]);
  const out: Record<string, unknown> = {
    event_ids: steps.map(nameId),
    total: perStep((c) => sum(c.total), all),
    unique_total: perStep((c) => sum(c.unique), all),
    path: perStep((c) => byPrev(c.path), all),
    unique_path: perStep((c) => byPrev(c.uniquePath), all),
    funnel: ids(f.funnel),
    unique_funnel: ids(f.unique_funnel),
  };
  if (property) {
    const segs = f.segments ?? [];
    const vid = (value: unknown) => valueId(property, value);
    const seg = (value: unknown) => (n: string) => reports.get(n)!.segments.get(jsonKey(value))?.counts;
    const perValue = (g: (c: Counts) => unknown) => Object.fromEntries(segs.map((s) => [vid(s.value), perStep(g, seg(s.value))]));
    out.property = { name: property, id: nameId(property), values: Object.fromEntries(segs.map((s) => [vid(s.value), s.value])) };
    out.funnels = Object.fromEntries(segs.map((s) => [vid(s.value), ids(s.funnel)]));
    out.unique_funnels = Object.fromEntries(segs.map((s) => [vid(s.value), ids(s.unique_funnel)]));
    out.totals = perValue((c) => sum(c.total));
    out.unique_totals = perValue((c) => sum(c.unique));
    out.paths = perValue((c) => byPrev(c.path));
    out.unique_paths = perValue((c) => byPrev(c.uniquePath));
  }
  return out;
}
