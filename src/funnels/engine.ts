// Pure funnel engine: a compact, columnar, per-visitor time-ordered event table (typed arrays) and funnel
// computations over it. No HTTP, no store: callers build the table once from whatever source and run many funnels.
//
// Semantics of runFunnel (all positions are positions in a visitor's events sorted by (ts, input order)):
// - An event matches a step when its name equals the step's name and, for every `where` field, data[field] === value
//   (strict equality: 1 !== "1"; missing data never matches a filter), and it comes from the step's `source` and is a
//   click on the step's `link_id` when the step names them.
// - Range: an attempt may only start at an event with from <= ts < to (both optional). Later steps may lie after `to`.
// - Windows are inclusive: a step at ts t is allowed when t - ts(start) <= window_ms and t - ts(previous step) <=
//   step_window_ms.
// - "ordered": step k+1 is the FIRST event after step k's event that matches step k+1; if that event is outside a
//   window the attempt stops at step k (later matches would be further out). Other events may come between.
// - "strict": step k+1 must be the visitor's very next event (any name), matching step k+1 and inside the windows.
// - "any": an attempt starts at any in-range event matching ANY step. Events are then read in order from the start
//   while ts <= ts(start) + window_ms and ts <= ts(last completion) + step_window_ms. Each event may satisfy at most one
//   step; the number of distinct steps reached after reading an event is the size of a maximum matching between the
//   steps and the events read so far (an event matches the steps it matches by name and filter). "Reached k steps" is
//   reported on step k (1-based) of the output, and the completion time of the k-th step is the ts of the event after
//   which the matching first had size k. `between` is ignored: exclusions apply to the attempt's whole span.
// - Exclusions: an exclusion event is an event whose name equals an exclusion's name and that matches none of the
//   funnel's steps (so a step's own event is never an exclusion). For "ordered"/"strict", exclusion [a, b] (0-based
//   step indices, default [0, last]) disqualifies an attempt that reached some step m > a when an exclusion event lies
//   strictly between step a's event and step min(b, m)'s event; exclusion events after the last reached step do not
//   matter. For "any" the span is from the start event to the event of the last completion. Disqualified attempts are
//   discarded entirely (the visitor may still be counted through another attempt, or not at all).
// - Best attempt per visitor: the non-disqualified attempt that reaches the most steps; ties: the earliest start.
// - Output per step k: visitors whose best attempt reached step k; conversion_from_previous = visitors_k /
//   visitors_{k-1} (step 0: 1 when it has visitors), conversion_from_first = visitors_k / visitors_0 (0 when 0/0);
//   median/p90 of ms from step k-1's completion to step k's completion over those visitors (nearest rank; null for
//   step 0 or no visitors); dropped_off_sample: up to dropoff_sample (default 10) ids of visitors who reached step k-1
//   but not k, in table visitor order (order of first appearance in the input).
// - Breakdown by data field: the value of data[field] on the best attempt's start event (attribution "first", the
//   default) or on the event of the last step it reached ("last"); null when missing. Breakdown by values: the values
//   a callback gives for (visitor, that event's ts), e.g. a visitor property then; a visitor with several values is
//   counted in each group, one with none in null's. The best attempt is chosen over all attempts, then the visitor is
//   counted in its groups. Groups are keyed by JSON (1 and "1" differ) and sorted by visitors at step 0 descending,
//   then by key.

import { buildEventTable, EventTable, type RawEvent } from "./table.js";

export { buildEventTable, EventTable, type RawEvent };

export type OrderMode = "ordered" | "strict" | "any";

export interface FunnelStep {
  name: string;
  where?: Record<string, string | number | boolean>;
  /** only events from this source (link, campaign, tracking, api, …) */
  source?: string;
  /** only clicks on this link */
  link_id?: number;
}

export interface FunnelSpec {
  steps: FunnelStep[];
  window_ms?: number;
  step_window_ms?: number;
  order: OrderMode;
  exclusions?: { name: string; between?: [number, number] }[];
  from?: number;
  to?: number;
  /**
   * Groups visitors by a field of the attributed event's data, or by values a callback gives for (visitor, the
   * attributed event's ts), e.g. a visitor property at that time (a visitor with several values is in each group).
   */
  breakdown?: { kind: "data"; field: string } | { kind: "values"; valuesOf: (visitor: number, ts: number) => readonly unknown[] };
  /** which event of the best attempt a breakdown reads: its first step (default) or the last step it reached */
  attribution?: "first" | "last";
  dropoff_sample?: number;
}

export interface StepResult {
  name: string;
  visitors: number;
  conversion_from_previous: number;
  conversion_from_first: number;
  median_ms_to_convert: number | null;
  p90_ms_to_convert: number | null;
  dropped_off_sample: string[];
}

export interface FunnelResult {
  steps: StepResult[];
  breakdown?: { value: unknown; steps: StepResult[] }[];
}

export const MAX_STEPS = 31;

/** Visitors covered by the table's sorted rows (visitors first seen in the unsorted tail come later). */
export const sortedVisitors = (t: EventTable) => t.offsets.length - 1;

/**
 * Which steps each row matches, as a bit mask per row. Steps without a filter match by name alone (a mask per name);
 * a filter is evaluated once per distinct data value (the table interns data), not once per row.
 */
function stepMasks(table: EventTable, steps: FunnelStep[]): Uint32Array {
  const byName = new Uint32Array(table.names.length);
  const filtered: { k: number; ni: number; cache: Int8Array | null; source: number; link: number }[] = [];
  steps.forEach((s, k) => {
    const ni = table.nameIndex.get(s.name);
    if (ni === undefined) return;
    const source = s.source === undefined ? -1 : table.sources.indexOf(s.source);
    if (s.source !== undefined && source < 0) return; // no event from that source: the step matches nothing
    if (s.where || s.source !== undefined || s.link_id !== undefined)
      filtered.push({ k, ni, cache: s.where ? new Int8Array(table.dataCount).fill(-1) : null, source, link: s.link_id ?? -1 });
    else byName[ni] |= 1 << k;
  });
  const n = table.length;
  const masks = new Uint32Array(n);
  const names = table.name;
  for (let i = 0; i < n; i++) masks[i] = byName[names[i]];
  if (filtered.length > 0) {
    const dataIdx = table.dataIdx;
    for (let i = 0; i < n; i++) {
      for (const f of filtered) {
        if (names[i] !== f.ni || (f.source >= 0 && table.source[i] !== f.source) || (f.link >= 0 && table.link[i] !== f.link)) continue;
        if (f.cache) {
          const d = dataIdx[i];
          let hit = f.cache[d];
          if (hit < 0) f.cache[d] = hit = matchesWhere(table.data(i), steps[f.k].where) ? 1 : 0;
          if (!hit) continue;
        }
        masks[i] |= 1 << f.k;
      }
    }
  }
  return masks;
}

export function matchesWhere(data: Record<string, unknown> | null | undefined, where: FunnelStep["where"]): boolean {
  if (!where) return true;
  for (const key of Object.keys(where)) {
    if (!data || !Object.prototype.hasOwnProperty.call(data, key) || data[key] !== where[key]) return false;
  }
  return true;
}

export function validateSpec(spec: FunnelSpec): void {
  const s = spec.steps.length;
  if (s < 1 || s > MAX_STEPS) throw new RangeError(`a funnel needs 1 to ${MAX_STEPS} steps`);
  if (!["ordered", "strict", "any"].includes(spec.order)) throw new RangeError("order must be ordered, strict or any");
  for (const x of spec.exclusions ?? []) {
    if (x.between) {
      const [a, b] = x.between;
      if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b >= s || a >= b) {
        throw new RangeError("exclusion between must be two step indices a < b");
      }
    }
  }
}

/** Every visitor's best attempt, in typed arrays (one entry per visitor; `times` holds S completion times each). */
interface Bests {
  /** steps reached (0: no valid attempt) */
  reached: Uint8Array;
  /** row of the attempt's first step, and of the last step it reached */
  start: Int32Array;
  last: Int32Array;
  times: Float64Array;
}

export function runFunnel(table: EventTable, spec: FunnelSpec): FunnelResult {
  validateSpec(spec);
  const S = spec.steps.length;
  const W = spec.window_ms ?? Infinity;
  const SW = spec.step_window_ms ?? Infinity;
  const from = spec.from ?? -Infinity;
  const to = spec.to ?? Infinity;
  const masks = stepMasks(table, spec.steps);
  const step0 = 1;
  // exclusion events as a per-event bitmask over exclusions, then prefix counts per exclusion
  const excl = spec.exclusions ?? [];
  const exclNames = excl.map((x) => table.nameIndex.get(x.name));
  const anyExcl = exclNames.some((x) => x !== undefined);
  const exclPrefix: Uint32Array[] = [];
  if (anyExcl) {
    for (const ni of exclNames) {
      const p = new Uint32Array(table.length + 1);
      for (let i = 0; i < table.length; i++) p[i + 1] = p[i] + (ni !== undefined && table.name[i] === ni && masks[i] === 0 ? 1 : 0);
      exclPrefix.push(p);
    }
  }
  // count of exclusion events of exclusion x strictly between positions p < q
  const exclBetween = (x: number, p: number, q: number) => (q - 1 > p ? exclPrefix[x][q] - exclPrefix[x][p + 1] : 0);

  const nv = sortedVisitors(table);
  const bests: Bests = { reached: new Uint8Array(nv), start: new Int32Array(nv), last: new Int32Array(nv), times: new Float64Array(nv * S) };
  const pos = new Int32Array(S);
  const tms: number[] = new Array(S);
  const ts = table.ts;
  // scratch for "next position >= p matching step k" in ordered mode, sized lazily
  let next = new Int32Array(0);
  for (let v = 0; v < nv; v++) {
    const a = table.offsets[v];
    const b = table.offsets[v + 1];
    const n = b - a;
    // a visitor without an event that may start an attempt has none (most visitors of a narrow funnel)
    let first = -1;
    for (let s = a; s < b; s++) {
      if ((spec.order === "any" ? masks[s] !== 0 : (masks[s] & step0) !== 0) && ts[s] >= from && ts[s] < to) {
        first = s;
        break;
      }
    }
    if (first < 0) continue;
    let bestReached = 0;
    if (spec.order === "ordered") {
      if (next.length < S * (n + 1)) next = new Int32Array(S * (n + 1) * 2);
      for (let k = 0; k < S; k++) next[k * (n + 1) + n] = -1;
      for (let i = n - 1; i >= 0; i--) {
        const m = masks[a + i];
        for (let k = 0; k < S; k++) next[k * (n + 1) + i] = m & (1 << k) ? a + i : next[k * (n + 1) + i + 1];
      }
    }
    for (let s = first; s < b && bestReached < S; s++) {
      const t0 = ts[s];
      if (t0 < from || t0 >= to) continue;
      let reached: number;
      if (spec.order === "any") {
        if (masks[s] === 0) continue;
        reached = anyAttempt(table, masks, s, b, S, W, SW, tms, pos);
        if (anyExcl && reached > 0) {
          for (let x = 0; x < excl.length && reached > 0; x++) if (exclNames[x] !== undefined && exclBetween(x, s, pos[reached - 1]) > 0) reached = 0;
        }
      } else {
        if ((masks[s] & step0) === 0) continue;
        pos[0] = s;
        tms[0] = t0;
        reached = 1;
        while (reached < S) {
          const prev = pos[reached - 1];
          let q: number;
          if (spec.order === "strict") q = prev + 1 < b && masks[prev + 1] & (1 << reached) ? prev + 1 : -1;
          else q = prev + 1 < b ? next[reached * (n + 1) + (prev + 1 - a)] : -1;
          if (q < 0) break;
          const t = ts[q];
          if (t - t0 > W || t - tms[reached - 1] > SW) break;
          pos[reached] = q;
          tms[reached] = t;
          reached++;
        }
        if (anyExcl) {
          for (let x = 0; x < excl.length && reached > 0; x++) {
            if (exclNames[x] === undefined) continue;
            const [ea, eb] = excl[x].between ?? [0, S - 1];
            if (reached - 1 <= ea) continue;
            if (exclBetween(x, pos[ea], pos[Math.min(eb, reached - 1)]) > 0) reached = 0;
          }
        }
      }
      if (reached > bestReached) {
        bestReached = reached;
        bests.reached[v] = reached;
        bests.start[v] = s;
        bests.last[v] = pos[reached - 1];
        for (let k = 0; k < reached; k++) bests.times[v * S + k] = tms[k];
      }
    }
  }

  const sample = spec.dropoff_sample ?? 10;
  const result: FunnelResult = { steps: summarize(table, spec, bests, null, sample) };
  if (spec.breakdown) {
    const bd = spec.breakdown;
    // each visitor joins the groups of its values; members are collected in visitor order (the drop-off samples' order)
    const groups = new Map<string, { value: unknown; members: number[] }>();
    const join = (v: number, value: unknown) => {
      const key = JSON.stringify(value) ?? "null";
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { value: value === undefined ? null : value, members: [] }));
      if (g.members[g.members.length - 1] !== v) g.members.push(v);
    };
    for (let v = 0; v < nv; v++) {
      if (bests.reached[v] === 0) continue;
      const at = spec.attribution === "last" ? bests.last[v] : bests.start[v];
      if (bd.kind === "data") {
        const d = table.data(at);
        join(v, d && Object.prototype.hasOwnProperty.call(d, bd.field) ? d[bd.field] : null);
      } else {
        const values = bd.valuesOf(v, table.ts[at]);
        if (values.length === 0) join(v, null);
        for (const value of values) join(v, value);
      }
    }
    const list = [...groups.entries()].map(([key, g]) => ({ key, value: g.value, steps: summarize(table, spec, bests, g.members, sample) }));
    list.sort((x, y) => y.steps[0].visitors - x.steps[0].visitors || (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
    result.breakdown = list.map(({ value, steps }) => ({ value, steps }));
  }
  return result;
}

/** One "any" attempt from start s: returns distinct steps reached; fills tms (completion ts) and pos (positions). */
function anyAttempt(
  table: EventTable,
  masks: Uint32Array,
  s: number,
  b: number,
  S: number,
  W: number,
  SW: number,
  tms: number[],
  pos: Int32Array,
): number {
  // incremental maximum bipartite matching (Kuhn): matchOf[k] = event position matched to step k, or -1
  const matchOf = new Array<number>(S).fill(-1);
  const t0 = table.ts[s];
  let size = 0;
  let last = t0;
  for (let i = s; i < b; i++) {
    const t = table.ts[i];
    if (t - t0 > W || t - last > SW) break;
    if (masks[i] === 0) continue;
    const seen = new Uint8Array(S);
    const augment = (ev: number): boolean => {
      const m = masks[ev];
      for (let k = 0; k < S; k++) {
        if (!(m & (1 << k)) || seen[k]) continue;
        seen[k] = 1;
        if (matchOf[k] < 0 || augment(matchOf[k])) {
          matchOf[k] = ev;
          return true;
        }
      }
      return false;
    };
    if (augment(i)) {
      tms[size] = t;
      pos[size] = i;
      size++;
      last = t;
      if (size === S) break;
    }
  }
  return size;
}

function nearestRank(sorted: ArrayLike<number>, p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];
}

/** The steps' figures over some visitors (all when `members` is null; else these, ascending). */
function summarize(table: EventTable, spec: FunnelSpec, bests: Bests, members: number[] | null, sample: number): StepResult[] {
  const S = spec.steps.length;
  const counts = new Array<number>(S).fill(0);
  const nv = bests.reached.length;
  const total = members ? members.length : nv;
  const dropped: string[][] = Array.from({ length: S }, () => []);
  for (let j = 0; j < total; j++) {
    const v = members ? members[j] : j;
    const r = bests.reached[v];
    for (let k = 0; k < r; k++) counts[k]++;
    if (r > 0 && r < S && dropped[r].length < sample) dropped[r].push(table.visitorIds[v]);
  }
  const durations = counts.map((c) => new Float64Array(c));
  const filled = new Array<number>(S).fill(0);
  for (let j = 0; j < total; j++) {
    const v = members ? members[j] : j;
    const r = bests.reached[v];
    for (let k = 1; k < r; k++) durations[k][filled[k]++] = bests.times[v * S + k] - bests.times[v * S + k - 1];
  }
  return spec.steps.map((st, k) => {
    const d = durations[k].sort();
    return {
      name: st.name,
      visitors: counts[k],
      conversion_from_previous: k === 0 ? (counts[0] > 0 ? 1 : 0) : counts[k - 1] > 0 ? counts[k] / counts[k - 1] : 0,
      conversion_from_first: counts[0] > 0 ? counts[k] / counts[0] : 0,
      median_ms_to_convert: k === 0 ? null : nearestRank(d, 0.5),
      p90_ms_to_convert: k === 0 ? null : nearestRank(d, 0.9),
      dropped_off_sample: dropped[k],
    };
  });
}

// HiiTrack's funnel (reference section 5.5): step 0 counts every event e0 (and unique visitors who did e0); step k
// counts every event e_k that has an e_{k-1} at any EARLIER position of the same visitor (earlier in (ts, input order);
// when e_k = e_{k-1} that means every repeat after the first), and unique visitors with at least one such event. Earlier
// steps are not required and there is no window, so counts may rise. With `property` (visitor id → the values that
// visitor holds; properties apply retroactively, so a visitor's whole history counts in every value it holds):
// segments are the values (keyed by JSON, so 1 and "1" differ) held by a visitor who did any step event; a step whose
// count is 0 in a segment is omitted from that segment's list, as HiiTrack does.
export interface HiiTrackFunnel {
  funnel: [string, number][];
  unique_funnel: [string, number][];
  segments?: { value: unknown; funnel: [string, number][]; unique_funnel: [string, number][] }[];
}

export function hiitrackFunnel(table: EventTable, names: string[], opts: { property?: Map<string, readonly unknown[]> } = {}): HiiTrackFunnel {
  const S = names.length;
  const ids = names.map((nm) => table.nameIndex.get(nm) ?? -1);
  const total = new Array<number>(S).fill(0);
  const uniq = new Array<number>(S).fill(0);
  const seg = new Map<string, { value: unknown; total: number[]; uniq: number[] }>();
  const per = new Array<number>(S);
  for (let v = 0; v < sortedVisitors(table); v++) {
    const a = table.offsets[v];
    const b = table.offsets[v + 1];
    per.fill(0);
    let any = false;
    for (let k = 0; k < S; k++) {
      const e = ids[k];
      if (e < 0) continue;
      if (k === 0) {
        for (let i = a; i < b; i++) if (table.name[i] === e) per[0]++;
      } else {
        const prev = ids[k - 1];
        let seenPrev = false;
        for (let i = a; i < b; i++) {
          const nm = table.name[i];
          if (nm === e && seenPrev) per[k]++;
          if (nm === prev) seenPrev = true;
        }
      }
    }
    for (let i = a; i < b && !any; i++) if (ids.includes(table.name[i])) any = true;
    for (let k = 0; k < S; k++) {
      total[k] += per[k];
      if (per[k] > 0) uniq[k]++;
    }
    const values = opts.property?.get(table.visitorIds[v]);
    if (values && any) {
      const keys = new Set<string>();
      for (const value of values) {
        const key = JSON.stringify(value) ?? "null";
        if (keys.has(key)) continue;
        keys.add(key);
        let g = seg.get(key);
        if (!g) seg.set(key, (g = { value, total: new Array<number>(S).fill(0), uniq: new Array<number>(S).fill(0) }));
        for (let k = 0; k < S; k++) {
          g.total[k] += per[k];
          if (per[k] > 0) g.uniq[k]++;
        }
      }
    }
  }
  const out: HiiTrackFunnel = {
    funnel: names.map((nm, k) => [nm, total[k]]),
    unique_funnel: names.map((nm, k) => [nm, uniq[k]]),
  };
  if (opts.property) {
    out.segments = [...seg.values()].map((g) => ({
      value: g.value,
      funnel: names.flatMap((nm, k): [string, number][] => (g.total[k] > 0 ? [[nm, g.total[k]]] : [])),
      unique_funnel: names.flatMap((nm, k): [string, number][] => (g.uniq[k] > 0 ? [[nm, g.uniq[k]]] : [])),
    }));
  }
  return out;
}
