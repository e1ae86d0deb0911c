/**
 * HiiTrack's counting model (reference §5.4), computed from a project's in-memory event table instead of counters kept
 * at write time. Pure: no HTTP, no store. For an event E and each visitor, in time order:
 *   - every E counts in `total`; a visitor's first E counts in `unique`;
 *   - for every event `prev` the visitor did at any earlier position (E itself included when repeated), the E counts in
 *     `path[prev]`, and the visitor's first E-after-prev in `uniquePath[prev]`;
 *   - with a property, a visitor's whole history counts in every value it ever held (HiiTrack's retroactive properties).
 * Counts are kept per time bucket (bucket 0 when no series is asked for): a unique count falls in the bucket of the
 * visitor's first occurrence, as HiiTrack's hourly and daily counters did.
 */
import { createHash } from "node:crypto";
import type { EventTable } from "../funnels/table.js";

// ---- ids -------------------------------------------------------------------------------------------------------

/** 16 bytes standing in for HiiTrack's CityHash128: the first 16 bytes of SHA-256. */
export function hash16(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest().subarray(0, 16);
}

/** base64url without padding, as HiiTrack exposed its binary ids. */
export const b64id = (b: Buffer): string => b.toString("base64url");

/** The id of an event name, or of a property name (22 characters). */
export const nameId = (name: string): string => b64id(hash16(name));

/** The id of a property value: the property name's 16 bytes, then 16 of the value's JSON (43 characters). */
export const valueId = (property: string, value: unknown): string => b64id(Buffer.concat([hash16(property), hash16(jsonKey(value))]));

/** A value's JSON text: its identity (1 and "1" differ). */
export const jsonKey = (value: unknown): string => JSON.stringify(value) ?? "null";

// ---- counts ------------------------------------------------------------------------------------------------------

/** bucket start (epoch seconds, or 0 without a series) → count */
export type Buckets = Map<number, number>;

export interface Counts {
  total: Buckets;
  unique: Buckets;
  /** prev event's name index → buckets */
  path: Map<number, Buckets>;
  uniquePath: Map<number, Buckets>;
}

export interface EventReport {
  all: Counts;
  /** per property value, keyed by the value's JSON */
  segments: Map<string, { value: unknown; counts: Counts }>;
  /** names of the properties held by visitors who did the event */
  properties: Set<string>;
  /** visitors who did the event */
  visitors: number;
}

export interface ReportOptions {
  /** bucket width in seconds (3600 or 86400); none: one bucket, 0 */
  step?: number;
  /** the values of the segmenting property a visitor (table index) ever held */
  valuesOf?: (v: number) => readonly unknown[];
  /** the property names a visitor (table index) holds */
  propertyNamesOf?: (v: number) => Iterable<string>;
}

const emptyCounts = (): Counts => ({ total: new Map(), unique: new Map(), path: new Map(), uniquePath: new Map() });

function inc(m: Buckets, b: number): void {
  m.set(b, (m.get(b) ?? 0) + 1);
}

function inc2(m: Map<number, Buckets>, prev: number, b: number): void {
  let x = m.get(prev);
  if (!x) m.set(prev, (x = new Map()));
  inc(x, b);
}

/** The counts of event `name` (undefined: never seen, everything empty). */
export function eventReport(table: EventTable, name: string, opts: ReportOptions = {}): EventReport {
  const out: EventReport = { all: emptyCounts(), segments: new Map(), properties: new Set(), visitors: 0 };
  const e = table.nameIndex.get(name);
  if (e === undefined) return out;
  const step = opts.step;
  const nv = table.offsets.length - 1;
  for (let v = 0; v < nv; v++) {
    const a = table.offsets[v];
    const b = table.offsets[v + 1];
    let has = false;
    for (let i = a; i < b && !has; i++) if (table.name[i] === e) has = true;
    if (!has) continue;
    out.visitors++;
    if (opts.propertyNamesOf) for (const p of opts.propertyNamesOf(v)) out.properties.add(p);
    const targets: Counts[] = [out.all];
    if (opts.valuesOf) {
      const seen = new Set<string>();
      for (const value of opts.valuesOf(v)) {
        const key = jsonKey(value);
        if (seen.has(key)) continue;
        seen.add(key);
        let g = out.segments.get(key);
        if (!g) out.segments.set(key, (g = { value, counts: emptyCounts() }));
        targets.push(g.counts);
      }
    }
    const before = new Set<number>();
    const pairs = new Set<number>();
    let first = true;
    for (let i = a; i < b; i++) {
      const nm = table.name[i];
      if (nm === e) {
        const bucket = step ? Math.floor(table.ts[i] / 1000 / step) * step : 0;
        for (const t of targets) inc(t.total, bucket);
        if (first) {
          first = false;
          for (const t of targets) inc(t.unique, bucket);
        }
        for (const prev of before) {
          for (const t of targets) inc2(t.path, prev, bucket);
          if (!pairs.has(prev)) {
            pairs.add(prev);
            for (const t of targets) inc2(t.uniquePath, prev, bucket);
          }
        }
      }
      before.add(nm);
    }
  }
  return out;
}

/** The sum of a bucket map (no series: its one bucket). */
export const sum = (m: Buckets | undefined): number => {
  let n = 0;
  if (m) for (const c of m.values()) n += c;
  return n;
};

/** A bucket map as HiiTrack's series: [[bucket start, n], …] in time order, buckets in [start, finish] only. */
export function series(m: Buckets | undefined, start: number, finish: number): [number, number][] {
  if (!m) return [];
  return [...m]
    .filter(([b]) => b >= start && b <= finish)
    .sort((x, y) => x[0] - y[0])
    .map(([b, n]) => [b, n]);
}

/**
 * A property's values with, per value, how many visitors holding it did each event (HiiTrack's P.total[E]). Every
 * visitor with a property change is looked at, also one without events.
 */
export function propertyReport(
  table: EventTable,
  visitors: Iterable<number>,
  valuesOf: (v: number) => readonly unknown[],
): Map<string, { value: unknown; totals: Map<number, number> }> {
  const out = new Map<string, { value: unknown; totals: Map<number, number> }>();
  const nv = table.offsets.length - 1;
  for (const v of visitors) {
    const values = valuesOf(v);
    if (values.length === 0) continue;
    const did = new Set<number>();
    if (v < nv) for (let i = table.offsets[v]; i < table.offsets[v + 1]; i++) did.add(table.name[i]);
    const seen = new Set<string>();
    for (const value of values) {
      const key = jsonKey(value);
      if (seen.has(key)) continue;
      seen.add(key);
      let g = out.get(key);
      if (!g) out.set(key, (g = { value, totals: new Map() }));
      for (const e of did) g.totals.set(e, (g.totals.get(e) ?? 0) + 1);
    }
  }
  return out;
}
